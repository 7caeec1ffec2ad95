// Referral leaderboards against the real FerretDB: counted from the records the campaigns,
// groupbuy and distribution modules decide once, per Shanghai week or month, ranked with ties to
// whoever got there first; virtual and late group outcomes and refusals count nothing.
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningReferral } from '../../main';
import { periodOf, rank } from '../service';

let nats: InfraProcess;
let svc: RunningReferral;
beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)), { sweepers: false });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const newId = () => new Types.ObjectId().toHexString();
const BOARD =
  'query($b: ReferralBoard!, $p: ReferralBoardPeriod!, $at: DateTime, $f: Int) { referralLeaderboard(board: $b, period: $p, at: $at, first: $f) { from to standings { rank score member { id } } } }';
const board = (b: string, p: string, at: string, f = 10, viewer: string | null = newId()) =>
  gql(svc.url, BOARD, { b, p, at, f }, asGateway('referral', viewer ? customer(viewer) : null));

test('periods: Monday-first weeks and calendar months in Asia/Shanghai', () => {
  // 2026-12-06 is a Sunday; 23:30 on Sunday in Shanghai is 15:30Z.
  expect(periodOf('WEEK', new Date('2026-12-06T15:30:00Z'), 'Asia/Shanghai')).toEqual({
    from: new Date('2026-11-29T16:00:00Z'),
    to: new Date('2026-12-06T16:00:00Z'),
  });
  // Monday 00:30 in Shanghai is still Sunday in UTC: already the next week.
  expect(periodOf('WEEK', new Date('2026-12-06T16:30:00Z'), 'Asia/Shanghai').from).toEqual(new Date('2026-12-06T16:00:00Z'));
  expect(periodOf('MONTH', new Date('2026-12-31T17:00:00Z'), 'Asia/Shanghai')).toEqual({
    from: new Date('2026-12-31T16:00:00Z'),
    to: new Date('2027-01-31T16:00:00Z'),
  });
  const scores = new Map([
    ['b', { score: 3, last: 20 }],
    ['a', { score: 3, last: 10 }],
    ['c', { score: 5, last: 30 }],
    ['z', { score: 0, last: 1 }],
  ]);
  expect(rank(scores, 10).map((s) => [s.rank, s.memberId, s.score])).toEqual([
    [1, 'c', 5],
    [2, 'a', 3],
    [3, 'b', 3],
  ]);
});

test('the three boards count what was decided in the period, and nothing else', async () => {
  const [alice, bob, carol] = [newId(), newId(), newId()];
  const inWeek = (d: number) => new Date(Date.UTC(2026, 10, 30, 2 + d)); // Mon 2026-11-30 10:00 Shanghai + d hours
  const lastWeek = new Date('2026-11-29T10:00:00Z'); // Sunday 18:00 Shanghai: the week before
  const db = svc.db;
  await db.collection('invite_first_orders').insertMany([
    { _id: newId() as never, orderId: newId(), total: 100, paidAt: inWeek(1), inviterId: alice, eventId: 'e1' },
    { _id: newId() as never, orderId: newId(), total: 100, paidAt: inWeek(2), inviterId: alice, eventId: 'e2' },
    { _id: newId() as never, orderId: newId(), total: 100, paidAt: inWeek(3), inviterId: bob, eventId: 'e3' },
    { _id: newId() as never, orderId: newId(), total: 100, paidAt: lastWeek, inviterId: bob, eventId: 'e4' },
    { _id: newId() as never, orderId: newId(), total: 100, paidAt: inWeek(4), eventId: 'e5' }, // not invited
  ]);
  const [g1, g2, g3] = [newId(), newId(), newId()];
  await db.collection('group_buys').insertMany(
    [
      [g1, carol],
      [g2, carol],
      [g3, bob],
    ].map(([id, leader]) => ({ _id: id as never, offerId: 'o', leaderId: leader, openerCheckoutId: 'c', seat: `o:${id}`, groupSize: 3 })),
  );
  await db.collection('group_buy_outcomes').insertMany([
    { _id: g1 as never, groupId: g1, offerId: 'o', outcome: 'SUCCEEDED', virtual: false, orderIds: [], at: inWeek(1) },
    { _id: `${g1}:late:x` as never, groupId: g1, offerId: 'o', outcome: 'SUCCEEDED', virtual: false, orderIds: [], at: inWeek(2) },
    { _id: g2 as never, groupId: g2, offerId: 'o', outcome: 'SUCCEEDED', virtual: true, orderIds: [], at: inWeek(2) },
    { _id: g3 as never, groupId: g3, offerId: 'o', outcome: 'FAILED', virtual: false, orderIds: [], at: inWeek(3) },
  ]);
  await db.collection('distribution_orders').insertMany([
    {
      _id: newId() as never,
      buyerId: newId(),
      orderTotal: 5000,
      levels: [
        { level: 1, distributorId: bob, amount: 500 },
        { level: 2, distributorId: alice, amount: 250 },
      ],
      at: inWeek(1),
    },
    { _id: newId() as never, buyerId: newId(), orderTotal: 3000, levels: [{ level: 1, distributorId: alice, amount: 300 }], at: inWeek(2) },
    { _id: newId() as never, buyerId: newId(), orderTotal: 9000, refusal: 'SELF_REFERRAL', levels: [], at: inWeek(3) },
  ]);

  const at = inWeek(5).toISOString();
  const invites = await board('INVITES', 'WEEK', at);
  expect(invites.errors).toBeUndefined();
  expect(invites.data!.referralLeaderboard.from).toBe('2026-11-29T16:00:00.000Z');
  expect(invites.data!.referralLeaderboard.standings).toEqual([
    { rank: 1, score: 2, member: { id: alice } },
    { rank: 2, score: 1, member: { id: bob } },
  ]);
  // The month holds last week's conversion too.
  const month = await board('INVITES', 'MONTH', at);
  expect(month.data!.referralLeaderboard.standings.map((s: { score: number }) => s.score)).toEqual([2, 2]);
  expect(month.data!.referralLeaderboard.standings[0].member.id).toBe(alice); // equal: alice got there first

  const groups = await board('GROUP_BUYS', 'WEEK', at);
  expect(groups.data!.referralLeaderboard.standings).toEqual([{ rank: 1, score: 1, member: { id: carol } }]);
  const sales = await board('DISTRIBUTION_SALES', 'WEEK', at, 1);
  expect(sales.data!.referralLeaderboard.standings).toEqual([{ rank: 1, score: 5000, member: { id: bob } }]);

  // Signed-in viewers only; first is bounded.
  expect((await board('INVITES', 'WEEK', at, 10, null)).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  expect((await board('INVITES', 'WEEK', at, 51)).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
});
