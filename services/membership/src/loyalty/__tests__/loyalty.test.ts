import { Types } from 'mongoose';
import { StringCodec, type NatsConnection } from 'nats';
import { asGateway, customer, eventually, gql, staff, registerMember } from '@flywheel/testing';
import type { EventData } from '@flywheel/events';
import type { RunningMembership } from '../../main';
import { paidOrder, startMembership } from '../../__tests__/support';

let svc: RunningMembership;
let nc: NatsConnection;
let stop: () => Promise<void>;
const sc = StringCodec();
// The service's clock: tests move it (member day, birthdays, expiry, tier retention).
let clock = new Date('2026-03-03T04:00:00Z');
const DAY = 86_400_000;

beforeAll(async () => {
  ({ svc, nc, stop } = await startMembership({ now: () => clock }));
});
afterAll(() => stop());

const loyalty = () => svc.modules.loyalty.loyalty;
const as = (memberId: string) => asGateway('membership', customer(memberId));
const call = (q: string, v: Record<string, unknown>, headers: Record<string, string>) => gql(svc.url, q, v, headers);

/** A registered member (login with a development code), as the gateway would create one. */
const register = async (): Promise<string> => (await registerMember(svc.url)).id;

async function request<T>(subject: string, data: unknown): Promise<{ ok: boolean; data?: T; error?: { code: string; message: string } }> {
  const msg = await nc.request(subject, sc.encode(JSON.stringify(data)), { timeout: 10_000 });
  return JSON.parse(sc.decode(msg.data));
}

const paid = (memberId: string, total: number, paidAt = clock) => paidOrder(memberId, total, { paidAt });
const refunded = (order: EventData<'orders.order.paid'>, amount: number): EventData<'orders.order.refunded'> => ({
  orderId: order.orderId,
  memberId: order.memberId,
  refundId: new Types.ObjectId().toHexString(),
  amount,
  currency: 'CNY',
  restock: [],
  refundedAt: clock.toISOString(),
});

const POINTS =
  'query($id: ID!) { member(id: $id) { tier points { balance expiringSoon history(first: 50) { edges { node { kind delta balance orderId shortfall } } } } tierStatus { tier growth nextTier growthToNext retainedUntil } } }';
const pointsOf = async (memberId: string) => {
  const res = await call(POINTS, { id: memberId }, asGateway('membership', staff()));
  expect(res.errors).toBeUndefined();
  return res.data!.member;
};

describe('points for paid orders, and their reversal on refund', () => {
  test('an order paid, refunded in two parts and every event redelivered leaves points exactly where they should be', async () => {
    const memberId = await register();
    const order = paid(memberId, 12_345); // ¥123.45 → 123 points and 123 growth at REGULAR
    await svc.bus.publish('orders.order.paid', order, { id: `paid-${order.orderId}` });
    await eventually(async () => (await loyalty().pointsOf(memberId)) === 123);

    const r1 = refunded(order, 5_000);
    const r2 = refunded(order, 7_345);
    for (const [r, id] of [
      [r1, 'r1'],
      [r2, 'r2'],
    ] as const) {
      await svc.bus.publish('orders.order.refunded', r, { id: `${id}-${order.orderId}` });
    }
    await eventually(async () => (await loyalty().pointsOf(memberId)) === 0);

    // Redelivery of every event (the bus's dedupe), then the handlers themselves re-run as after a
    // crash between the effect and its processed record: nothing moves.
    await svc.bus.publish('orders.order.paid', order, { id: `paid-${order.orderId}-again` });
    await svc.bus.publish('orders.order.refunded', r1, { id: `r1-${order.orderId}-again` });
    await loyalty().orderPaid(order);
    await loyalty().orderRefunded(r2);
    await new Promise((r) => setTimeout(r, 500));
    const m = await pointsOf(memberId);
    expect(m.points.balance).toBe(0);
    expect(m.tierStatus.growth).toBe(0);
    const kinds = m.points.history.edges.map((e: { node: { kind: string; delta: number } }) => [e.node.kind, e.node.delta]);
    // Each refund claws back its cumulative share: 123 × 5000/12345 = 49.8 → 49 when it comes first
    // (then 74), or 123 × 7345/12345 = 73.2 → 73 when the other does (then 50). Either way, 123.
    expect(kinds[2]).toEqual(['EARN', 123]);
    const claws = kinds.slice(0, 2).map(([, d]: [string, number]) => -d);
    expect(kinds.slice(0, 2).every(([k]: [string]) => k === 'CLAWBACK')).toBe(true);
    expect([
      [74, 49],
      [50, 73],
    ]).toContainEqual(claws);
  });

  test('a refund that arrives before its paid event waits for it instead of being lost', async () => {
    const memberId = await register();
    const order = paid(memberId, 10_000);
    await svc.bus.publish('orders.order.refunded', refunded(order, 10_000), { id: `early-${order.orderId}` });
    await new Promise((r) => setTimeout(r, 300));
    await svc.bus.publish('orders.order.paid', order, { id: `late-${order.orderId}` });
    await eventually(async () => (await loyalty().pointsOf(memberId)) === 100, 15_000);
    // The refund is redelivered after its back-off and claws the points back.
    await eventually(async () => (await loyalty().pointsOf(memberId)) === 0, 20_000, 250);
  }, 30_000);

  test('a claw-back of points already spent stops at zero and records the shortfall', async () => {
    const memberId = await register();
    const order = paid(memberId, 20_000);
    await loyalty().orderPaid(order);
    await loyalty().spend(memberId, new Types.ObjectId().toHexString(), 150);
    await loyalty().orderRefunded(refunded(order, 20_000));
    const m = await pointsOf(memberId);
    expect(m.points.balance).toBe(0);
    expect(m.points.history.edges[0].node).toMatchObject({ kind: 'CLAWBACK', delta: -50, shortfall: 150 });
  });
});

describe('spending points', () => {
  test('100 concurrent spends against one balance never take it below zero', async () => {
    const memberId = await register();
    await loyalty().grantPoints(memberId, `test:${memberId}`, 1_000, 'test grant');
    const results = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        request<{ checkoutId: string }>('membership.benefits.lock', {
          checkoutId: `co-${memberId}-${i}`,
          memberId,
          adjustments: [{ kind: 'POINTS', amount: -30, label: '30 积分抵扣', ref: 'points:30' }],
        }),
      ),
    );
    const ok = results.filter((r) => r.ok).length;
    expect(ok).toBe(33);
    expect(results.filter((r) => !r.ok).every((r) => r.error!.code === 'CONFLICT')).toBe(true);
    expect(await loyalty().pointsOf(memberId)).toBe(10);
    // The ledger agrees with itself: every entry's balance is the previous one plus its delta.
    const entries = await svc.db
      .collection('loyalty_entries')
      .find({ accountId: `p:${memberId}` })
      .sort({ seq: 1 })
      .toArray();
    let balance = 0;
    for (const e of entries) {
      balance += e.delta as number;
      expect(e.balance).toBe(balance);
      expect(balance).toBeGreaterThanOrEqual(0);
    }
    // A refused lock took nothing and left nothing locked: releasing all 100 gives back 990 exactly.
    await Promise.all(Array.from({ length: 100 }, (_, i) => request('membership.benefits.release', { checkoutId: `co-${memberId}-${i}` })));
    expect(await loyalty().pointsOf(memberId)).toBe(1_000);
  }, 60_000);

  test('a quote asking more points than the balance or the cap is BAD_USER_INPUT', async () => {
    const memberId = await register();
    await loyalty().grantPoints(memberId, `cap:${memberId}`, 5_000, 'test grant');
    const base = {
      checkoutId: `q-${memberId}`,
      memberId,
      lines: [{ skuId: 's', productId: 'p', quantity: 1, unitPrice: 4_000, priceKind: 'LIST' }],
      subtotal: 4_000,
      coupon: 'NONE',
    };
    const over = await request('membership.benefits.quote', { ...base, points: 5_001 });
    expect(over.error).toMatchObject({ code: 'BAD_USER_INPUT' });
    // Half of ¥40 at 100 points per yuan: 2,000 points at most.
    const capped = await request<{ pointsUsable: number }>('membership.benefits.quote', { ...base, points: 2_001 });
    expect(capped.error?.message).toMatch(/At most 2000 points/);
    const fine = await request<{ adjustments: unknown[]; pointsUsable: number }>('membership.benefits.quote', { ...base, points: 2_000 });
    expect(fine.data).toMatchObject({ pointsUsable: 2_000, adjustments: [{ kind: 'POINTS', amount: -2_000, ref: 'points:2000' }] });
  });
});

describe('tiers and growth', () => {
  const watchTiers = (memberId: string) => {
    const seen: { to: string; direction: string }[] = [];
    const sub = nc.subscribe('membership.tier.changed', {
      callback: (_e, m) => {
        const env = JSON.parse(sc.decode(m.data));
        if (env.data.memberId === memberId) seen.push(env.data);
      },
    });
    return { seen, stop: () => sub.unsubscribe() };
  };

  test('growth upgrades at once with one tier.changed event; growth ageing out of its window downgrades only after the retention period', async () => {
    const memberId = await register();
    const tiers = watchTiers(memberId);
    const saved = clock;
    try {
      const first = paid(memberId, 600_000); // ¥6,000 → growth 6,000: GOLD
      await loyalty().orderPaid(first);
      await loyalty().orderPaid(first);
      expect(await loyalty().tierOf(memberId)).toBe('GOLD');
      await eventually(async () => tiers.seen.length === 1);
      expect(tiers.seen[0]).toMatchObject({ to: 'GOLD', direction: 'UP' });

      clock = new Date(saved.getTime() + 200 * DAY);
      await loyalty().orderPaid(paid(memberId, 200_000)); // growth 8,000
      // A year after the first order its growth leaves the window: 2,000 is SILVER's, GOLD is kept.
      clock = new Date(saved.getTime() + 366 * DAY);
      await svc.sweep(clock);
      const m = await pointsOf(memberId);
      expect(m.tier).toBe('GOLD');
      expect(m.tierStatus.growth).toBe(2_000);
      expect(m.tierStatus.retainedUntil).not.toBeNull();
      clock = new Date(saved.getTime() + (366 + 89) * DAY);
      await svc.sweep(clock);
      expect(await loyalty().tierOf(memberId)).toBe('GOLD');
      clock = new Date(saved.getTime() + (366 + 91) * DAY);
      await svc.sweep(clock);
      await svc.sweep(clock);
      expect(await loyalty().tierOf(memberId)).toBe('SILVER');
    } finally {
      clock = saved;
    }
    await eventually(async () => tiers.seen.length === 2);
    expect(tiers.seen[1]).toMatchObject({ to: 'SILVER', direction: 'DOWN' });
    tiers.stop();
  });

  test('a refund of an order that paid for the tier takes it back at once; one paid after the tier was reached waits for retention', async () => {
    const quick = await register();
    const tiers = watchTiers(quick);
    const big = paid(quick, 600_000);
    await loyalty().orderPaid(big);
    expect(await loyalty().tierOf(quick)).toBe('GOLD');
    await loyalty().orderRefunded(refunded(big, 600_000));
    expect(await loyalty().tierOf(quick)).toBe('REGULAR');
    await eventually(async () => tiers.seen.length === 2);
    expect(tiers.seen.map((t) => [t.to, t.direction])).toEqual([
      ['GOLD', 'UP'],
      ['REGULAR', 'DOWN'],
    ]);
    tiers.stop();

    // An order paid after the tier was reached did not pay for it: its refund waits out the
    // retention period like any other fall in growth.
    const loyal = await register();
    const saved = clock;
    try {
      await loyalty().orderPaid(paid(loyal, 600_000)); // GOLD from today
      clock = new Date(saved.getTime() + 300 * DAY);
      const later = paid(loyal, 300_000);
      await loyalty().orderPaid(later);
      clock = new Date(saved.getTime() + 366 * DAY); // the first order's growth has aged out
      await svc.sweep(clock);
      clock = new Date(saved.getTime() + 367 * DAY);
      await loyalty().orderRefunded(refunded(later, 300_000));
      const m = await pointsOf(loyal);
      expect(m.tier).toBe('GOLD');
      expect(m.tierStatus.growth).toBe(0);
      expect(m.tierStatus.retainedUntil).not.toBeNull();
    } finally {
      clock = saved;
    }
  });

  test('a higher tier earns points at its multiplier, and the member day doubles them', async () => {
    const memberId = await register();
    await loyalty().orderPaid(paid(memberId, 2_000_000)); // ¥20,000: DIAMOND, 20,000 points
    expect(await loyalty().tierOf(memberId)).toBe('DIAMOND');
    const before = await loyalty().pointsOf(memberId);
    await loyalty().orderPaid(paid(memberId, 10_000)); // ¥100 × 2.0 (DIAMOND)
    expect((await loyalty().pointsOf(memberId)) - before).toBe(200);
    const memberDay = new Date('2026-03-08T02:00:00Z'); // the 8th, Asia/Shanghai
    await loyalty().orderPaid(paid(memberId, 10_000, memberDay)); // × 2.0 × 2.0
    expect((await loyalty().pointsOf(memberId)) - before).toBe(600);
  });
});

describe('tasks, sign-in, birthday and expiry', () => {
  const SIGN_IN = 'mutation { signIn { alreadySignedIn streak points member { points { balance } } } }';
  const CLAIM = 'mutation($t: TaskKind!) { claimTaskReward(input: { task: $t }) { task points growth } }';

  test('sign-in rewards once a day, streaks across days, and a task is rewarded once per period', async () => {
    const memberId = await register();
    const saved = clock;
    try {
      const first = await Promise.all([call(SIGN_IN, {}, as(memberId)), call(SIGN_IN, {}, as(memberId))]);
      expect(first.map((r) => r.data!.signIn.alreadySignedIn).sort()).toEqual([false, true]);
      for (let day = 1; day < 7; day++) {
        clock = new Date(saved.getTime() + day * DAY);
        const res = await call(SIGN_IN, {}, as(memberId));
        expect(res.data!.signIn.streak).toBe(day + 1);
      }
      // 7 days × 5 points + the 7th day's bonus of 20.
      expect(await loyalty().pointsOf(memberId)).toBe(55);

      // SHARE is rewarded against a share (referral.share.created): one for today, one for tomorrow.
      const shared = () =>
        loyalty().shareCreated(`share-${memberId}-${clock.getTime()}`, {
          shareId: new Types.ObjectId().toHexString(),
          memberId,
          targetKind: 'PRODUCT',
          targetId: new Types.ObjectId().toHexString(),
          channel: 'COPY_LINK',
          sharedAt: clock.toISOString(),
        });
      await shared();
      await shared();
      const share = await call(CLAIM, { t: 'SHARE' }, as(memberId));
      expect(share.data!.claimTaskReward).toMatchObject({ points: 5, growth: 2 });
      const again = await call(CLAIM, { t: 'SHARE' }, as(memberId));
      expect(again.errors?.[0]?.extensions?.code).toBe('CONFLICT');
      const tasks = await call('{ me { tasks { task claimed } } }', {}, as(memberId));
      const claimed = tasks.data!.me.tasks.filter((t: { claimed: boolean }) => t.claimed).map((t: { task: string }) => t.task);
      expect(claimed.sort()).toEqual(['SHARE', 'SIGN_IN']);
      clock = new Date(clock.getTime() + DAY);
      expect((await call(CLAIM, { t: 'SHARE' }, as(memberId))).errors).toBeUndefined();
    } finally {
      clock = saved;
    }
    const firstOrder = await call(CLAIM, { t: 'FIRST_ORDER' }, as(memberId));
    expect(firstOrder.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    await loyalty().orderPaid(paid(memberId, 100));
    const ok = await Promise.all([call(CLAIM, { t: 'FIRST_ORDER' }, as(memberId)), call(CLAIM, { t: 'FIRST_ORDER' }, as(memberId))]);
    expect(ok.filter((r) => !r.errors).length).toBe(1);
    expect(await loyalty().pointsOf(memberId)).toBe(55 + 10 + 1 + 100);
  });

  test('REVIEW is refused before a showcase, rewarded once per published showcase; a redelivered event or a plain post adds none', async () => {
    const memberId = await register();
    const saved = clock;
    const post = (kind: 'POST' | 'SHOWCASE'): EventData<'community.post.published'> => ({
      postId: new Types.ObjectId().toHexString(),
      memberId,
      kind,
      verified: kind === 'SHOWCASE',
      publishedAt: clock.toISOString(),
    });
    const review = () => call(CLAIM, { t: 'REVIEW' }, as(memberId));
    const claimed = async () => (await review()).errors === undefined;
    try {
      const before = await review();
      expect(before.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });
      expect(await loyalty().pointsOf(memberId)).toBe(0);

      // A plain post is no review; the showcase behind it is (events of one member are handled in order).
      const plain = post('POST');
      expect(await loyalty().postPublished('direct-plain', plain)).toBe(false);
      await svc.bus.publish('community.post.published', plain, { id: `post-${plain.postId}` });
      const showcase = post('SHOWCASE');
      await svc.bus.publish('community.post.published', showcase, { id: `post-${showcase.postId}` });
      await eventually(claimed);
      const reward = await loyalty().pointsOf(memberId);
      expect(reward).toBeGreaterThan(0);
      expect((await review()).errors?.[0]?.extensions?.code).toBe('CONFLICT'); // once a day, as before

      // The same showcase again (a redelivery past the bus's dedupe, and its handler re-run) is no new evidence.
      await svc.bus.publish('community.post.published', showcase, { id: `post-${showcase.postId}-again` });
      expect(await loyalty().postPublished('direct-again', showcase)).toBe(false);
      const second = post('SHOWCASE');
      await svc.bus.publish('community.post.published', second, { id: `post-${second.postId}` });
      clock = new Date(saved.getTime() + DAY);
      await eventually(claimed);
      expect(await loyalty().pointsOf(memberId)).toBe(2 * reward);

      // Both showcases are used: the next day has nothing to reward, and the refusal writes nothing.
      clock = new Date(saved.getTime() + 2 * DAY);
      const after = await review();
      expect(after.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });
      const tasks = await call('{ me { tasks { task claimed } } }', {}, as(memberId));
      expect(tasks.data!.me.tasks.find((t: { task: string }) => t.task === 'REVIEW').claimed).toBe(false);
      expect(await loyalty().pointsOf(memberId)).toBe(2 * reward);
    } finally {
      clock = saved;
    }
  });

  test('the birthday gift is granted once a year, on the birthday, by the sweeper', async () => {
    const memberId = await register();
    const set = await call('mutation { updateProfile(input: { birthday: "1990-03-05" }) { birthday } }', {}, as(memberId));
    expect(set.data!.updateProfile.birthday).toBe('03-05');
    const moved = await call('mutation { updateProfile(input: { birthday: "04-01" }) { birthday } }', {}, as(memberId));
    expect(moved.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    const bad = await call('mutation { updateProfile(input: { birthday: "02-30" }) { birthday } }', {}, as(memberId));
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

    await svc.sweep(new Date('2026-03-04T12:00:00Z'));
    expect(await loyalty().pointsOf(memberId)).toBe(0);
    await svc.sweep(new Date('2026-03-05T01:00:00Z'));
    await svc.sweep(new Date('2026-03-05T09:00:00Z'));
    expect(await loyalty().pointsOf(memberId)).toBe(0); // REGULAR's birthday gift is 0 points…
    await loyalty().orderPaid(paid(memberId, 100_000)); // …SILVER's is 100
    await svc.sweep(new Date('2026-03-05T10:00:00Z'));
    expect(await loyalty().pointsOf(memberId)).toBe(1_000); // the year's gift was already claimed
    const saved = clock;
    try {
      // A year on: last year's points have expired (365 days), this year's gift is SILVER's 100.
      clock = new Date('2027-03-05T02:00:00Z');
      expect(await loyalty().grantBirthday(memberId, clock)).toBe(true);
      expect(await loyalty().grantBirthday(memberId, new Date('2027-03-05T03:00:00Z'))).toBe(false);
      expect(await loyalty().pointsOf(memberId)).toBe(100);
    } finally {
      clock = saved;
    }
  });

  test('points expire lot by lot: the oldest first, and the sweeper writes it down once', async () => {
    const memberId = await register();
    const saved = clock;
    try {
      await loyalty().grantPoints(memberId, `old:${memberId}`, 40, 'old');
      clock = new Date(saved.getTime() + 200 * DAY);
      await loyalty().grantPoints(memberId, `new:${memberId}`, 60, 'new');
      clock = new Date(saved.getTime() + 340 * DAY);
      const view = await pointsOf(memberId);
      expect(view.points).toMatchObject({ balance: 100, expiringSoon: 40 });
      clock = new Date(saved.getTime() + 367 * DAY);
      expect(await loyalty().pointsOf(memberId)).toBe(60);
      const first = await svc.sweep(clock);
      const second = await svc.sweep(clock);
      expect(first.loyalty!.expired).toBeGreaterThanOrEqual(40);
      expect(second.loyalty!.expired).toBe(0);
      const m = await pointsOf(memberId);
      expect(m.points.history.edges[0].node).toMatchObject({ kind: 'EXPIRE', delta: -40, balance: 60 });
    } finally {
      clock = saved;
    }
  });
});

describe('staff controls', () => {
  test('grantPoints is staff-only and idempotent per key; the program rejects bad settings', async () => {
    const memberId = await register();
    const GRANT =
      'mutation($id: ID!, $k: String!) { grantPoints(input: { memberId: $id, points: 25, reason: "compensation", idempotencyKey: $k }) { kind delta balance } }';
    const denied = await call(GRANT, { id: memberId, k: 'a' }, as(memberId));
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const twice = await Promise.all([
      call(GRANT, { id: memberId, k: 'k1' }, asGateway('membership', staff())),
      call(GRANT, { id: memberId, k: 'k1' }, asGateway('membership', staff())),
    ]);
    expect(twice.every((r) => !r.errors)).toBe(true);
    expect(await loyalty().pointsOf(memberId)).toBe(25);

    const UPDATE =
      'mutation($i: UpdateLoyaltyProgramInput!) { updateLoyaltyProgram(input: $i) { pointsPerYuan memberDay { dayOfMonth } } }';
    const bad = await call(UPDATE, { i: { pointsMaxSharePercent: 150 } }, asGateway('membership', staff()));
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    const customerTry = await call(UPDATE, { i: { pointsPerYuan: 5 } }, as(memberId));
    expect(customerTry.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const program = await call('{ loyaltyProgram { pointsPerYuan tiers { tier threshold } } }', {}, asGateway('membership', null));
    expect(program.data!.loyaltyProgram.tiers.map((t: { threshold: number }) => t.threshold)).toEqual([0, 1_000, 5_000, 20_000]);
  });
});
