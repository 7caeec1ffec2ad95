// The pure fraud checks other referral modules (bargain helpers, distribution) call too.
import { inviteCycle, ipRange, samePhone, selfInvite, velocity } from '../fraud';

test('SELF_INVITE refuses a member acting through themselves, and says why', () => {
  expect(selfInvite('m1', 'm1')).toEqual({ rule: 'SELF_INVITE', reason: 'A member cannot invite, help or buy through themselves' });
  expect(selfInvite('m1', 'm2')).toBeNull();
});

test('VELOCITY holds only above the threshold, naming the count', () => {
  expect(velocity(3, 3)).toBeNull();
  expect(velocity(4, 3, 'helps from this device within an hour')).toEqual({
    rule: 'VELOCITY',
    reason: '4 helps from this device within an hour (more than 3)',
  });
});

test('SAME_PHONE holds when another account has the phone', () => {
  expect(samePhone(0)).toBeNull();
  expect(samePhone(2)).toEqual({ rule: 'SAME_PHONE', reason: 'The same phone is on 2 other accounts' });
});

test('CYCLE finds A → B → A and longer rings, and stops on chains that do not come back', async () => {
  const inviters: Record<string, string> = { b: 'c', c: 'a', x: 'y', y: 'x' };
  const of = async (id: string) => inviters[id] ?? null;
  expect(await inviteCycle('a', 'b', of)).toEqual({ rule: 'CYCLE', reason: 'Invitations go round in a ring: a → b → c → a' });
  expect(await inviteCycle('a', 'c', of)).toEqual({ rule: 'CYCLE', reason: 'Invitations go round in a ring: a → c → a' });
  expect(await inviteCycle('z', 'x', of)).toBeNull(); // a ring that does not include the invitee
  expect(await inviteCycle('a', 'q', of)).toBeNull();
  expect(await inviteCycle('a', 'b', of, 1)).toBeNull(); // deeper than the walk
});

test('ipRange puts helpers of one network together (IPv4 /24, IPv6 /48 by default)', () => {
  expect(ipRange('203.0.113.77')).toBe('203.0.113.0/24');
  expect(ipRange('::ffff:203.0.113.9')).toBe('203.0.113.0/24');
  expect(ipRange('203.0.113.77', 16)).toBe('203.0.0.0/16');
  expect(ipRange('2001:db8:abcd:12::1')).toBe('2001:db8:abcd:0:0:0:0:0/48');
  expect(ipRange('2001:db8::1', 24, 32)).toBe('2001:db8:0:0:0:0:0:0/32');
  expect(ipRange('not an ip')).toBeNull();
});
