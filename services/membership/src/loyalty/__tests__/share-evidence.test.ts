// The SHARE task rewarded only against a real share: referral's `referral.share.created` is the
// evidence, one reward per share and one claim per day (real FerretDB and NATS).
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, registerMember } from '@flywheel/testing';
import type { EventData } from '@flywheel/events';
import type { RunningMembership } from '../../main';
import { startMembership } from '../../__tests__/support';

let svc: RunningMembership;
let stop: () => Promise<void>;
let clock = new Date('2026-03-03T04:00:00Z');
const DAY = 86_400_000;

beforeAll(async () => {
  ({ svc, stop } = await startMembership({ now: () => clock }));
});
afterAll(() => stop());

const loyalty = () => svc.modules.loyalty.loyalty;
const CLAIM = 'mutation { claimTaskReward(input: { task: SHARE }) { task points growth } }';

test('SHARE is refused before a share, rewarded once per share and once a day; a redelivered share adds nothing', async () => {
  const memberId = (await registerMember(svc.url)).id;
  const claim = () => gql(svc.url, CLAIM, {}, asGateway('membership', customer(memberId)));
  const shared = (): EventData<'referral.share.created'> => ({
    shareId: new Types.ObjectId().toHexString(),
    memberId,
    targetKind: 'ARTICLE',
    targetId: new Types.ObjectId().toHexString(),
    channel: 'WECHAT_MOMENTS',
    sharedAt: clock.toISOString(),
  });
  const start = clock;
  try {
    const before = await claim();
    expect(before.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });
    expect(before.errors?.[0]?.message).toMatch(/Share/);
    expect(await loyalty().pointsOf(memberId)).toBe(0);

    const first = shared();
    await svc.bus.publish('referral.share.created', first, { id: `share-${first.shareId}` });
    const granted = await eventually(async () => {
      const res = await claim();
      return res.errors ? null : res;
    });
    expect(granted.data!.claimTaskReward).toEqual({ task: 'SHARE', points: 5, growth: 2 });
    // Once a day, however many shares there are.
    const second = shared();
    expect(await loyalty().shareCreated(`direct-${second.shareId}`, second)).toBe(true);
    expect((await claim()).errors?.[0]?.extensions?.code).toBe('CONFLICT');

    // The first share again (a redelivery past the bus's dedupe, and its handler re-run) is no new evidence.
    await svc.bus.publish('referral.share.created', first, { id: `share-${first.shareId}-again` });
    expect(await loyalty().shareCreated('direct-again', first)).toBe(false);

    // The next day: the second share earns one reward; the day after, nothing is left to reward.
    clock = new Date(start.getTime() + DAY);
    expect((await claim()).errors).toBeUndefined();
    clock = new Date(start.getTime() + 2 * DAY);
    const after = await claim();
    expect(after.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });
    expect(await loyalty().pointsOf(memberId)).toBe(10);
    expect(await svc.db.collection('loyalty_task_evidence').countDocuments({ memberId, task: 'SHARE' })).toBe(2);
  } finally {
    clock = start;
  }
});
