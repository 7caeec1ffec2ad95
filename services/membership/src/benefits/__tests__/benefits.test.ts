import { Types } from 'mongoose';
import { StringCodec, type NatsConnection } from 'nats';
import { asGateway, gql, staff } from '@flywheel/testing';
import type { EventData } from '@flywheel/events';
import type { RunningMembership } from '../../main';
import { paidOrder, startMembership } from '../../__tests__/support';

let svc: RunningMembership;
let nc: NatsConnection;
let stop: () => Promise<void>;
const sc = StringCodec();

beforeAll(async () => {
  ({ svc, nc, stop } = await startMembership());
});
afterAll(() => stop());

const loyalty = () => svc.modules.loyalty.loyalty;
const benefits = () => svc.modules.benefits.benefits;
const oid = () => new Types.ObjectId().toHexString();
type Reply<T> = { ok: boolean; data?: T; error?: { code: string; message: string } };
async function request<T>(subject: string, data: unknown): Promise<Reply<T>> {
  const msg = await nc.request(subject, sc.encode(JSON.stringify(data)), { timeout: 10_000 });
  return JSON.parse(sc.decode(msg.data)) as Reply<T>;
}
type Adjustment = { kind: string; amount: number; label: string; ref: string };
const line = (unitPrice: number, productId = 'p-1') => ({ skuId: `s-${productId}`, productId, quantity: 1, unitPrice, priceKind: 'LIST' });

async function couponFor(memberId: string, input: Record<string, unknown>): Promise<string> {
  const t = await gql(
    svc.url,
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: input },
    asGateway('membership', staff()),
  );
  expect(t.errors).toBeUndefined();
  return (await svc.modules.coupons.coupons.grant({ key: oid(), memberId, templateId: t.data!.createCouponTemplate.id, reason: 'test' }))
    .couponId;
}

const refunded = (orderId: string, memberId: string, amount: number): EventData<'orders.order.refunded'> => ({
  orderId,
  memberId,
  refundId: oid(),
  amount,
  currency: 'CNY',
  restock: [],
  refundedAt: new Date().toISOString(),
});
const couponState = async (couponId: string) =>
  (await svc.db.collection('coupon_entries').find({ accountId: couponId }).sort({ seq: -1 }).limit(1).next())?.state;

describe('the checkout quote', () => {
  test('tier discount, the best coupon (on the line prices), then points; a coupon of another member is FORBIDDEN', async () => {
    const memberId = oid();
    await loyalty().orderPaid(paidOrder(memberId, 500_000)); // growth 5,000: GOLD, 2 % off
    const small = await couponFor(memberId, { name: '减5元', kind: 'FIXED', amount: 500, validDaysAfterClaim: 7, claimable: false });
    await couponFor(memberId, {
      name: '九折',
      kind: 'PERCENT',
      percentOff: 10,
      maxDiscount: 3_000,
      validDaysAfterClaim: 7,
      claimable: false,
    });
    const quote = await request<{ adjustments: Adjustment[]; pointsBalance: number; pointsUsable: number }>('membership.benefits.quote', {
      checkoutId: oid(),
      memberId,
      lines: [line(10_000)],
      subtotal: 10_000,
      points: 100,
    });
    expect(quote.error).toBeUndefined();
    // 2 % of 10,000; 10 % of the lines (1,000, under its 3,000 cap) beats ¥5; 100 points = ¥1.
    expect(quote.data!.adjustments.map((a) => [a.kind, a.amount])).toEqual([
      ['TIER', -200],
      ['COUPON', -1_000],
      ['POINTS', -100],
    ]);
    expect(quote.data!.adjustments[0]!.label).toBe('金卡会员 2% off');

    const chosen = await request<{ adjustments: Adjustment[] }>('membership.benefits.quote', {
      checkoutId: oid(),
      memberId,
      lines: [line(10_000)],
      subtotal: 10_000,
      coupon: { couponId: small },
    });
    expect(chosen.data!.adjustments.find((a) => a.kind === 'COUPON')).toMatchObject({ amount: -500, ref: small });

    const stranger = await request('membership.benefits.quote', {
      checkoutId: oid(),
      memberId: oid(),
      lines: [line(10_000)],
      subtotal: 10_000,
      coupon: { couponId: small },
    });
    expect(stranger.error?.code).toBe('FORBIDDEN');
  });
});

describe('lock, consume, release and refund, each exactly once', () => {
  test('an order paid then refunded in two parts: spent points come back pro rata, the coupon only on the full refund', async () => {
    const memberId = oid();
    await loyalty().grantPoints(memberId, `seed:${memberId}`, 1_000, 'seed');
    const couponId = await couponFor(memberId, { name: '减10元', kind: 'FIXED', amount: 1_000, validDaysAfterClaim: 7, claimable: false });
    const orderId = oid();
    const adjustments = [
      { kind: 'COUPON', amount: -1_000, label: '减10元', ref: couponId },
      { kind: 'POINTS', amount: -400, label: '400 积分抵扣', ref: 'points:400' },
    ];
    const locks = await Promise.all(
      [1, 2, 3].map(() => request('membership.benefits.lock', { checkoutId: orderId, memberId, adjustments })),
    );
    expect(locks.every((r) => r.ok)).toBe(true);
    expect(await loyalty().pointsOf(memberId)).toBe(600);
    expect(await couponState(couponId)).toBe('LOCKED');

    // Paid (twice, as after a crash before the processed record): the coupon is used once.
    const order = paidOrder(memberId, 8_600, { orderId });
    await benefits().orderPaid(order);
    await benefits().orderPaid(order);
    expect(await couponState(couponId)).toBe('USED');
    // A release that comes after payment changes nothing.
    expect((await request<{ released: boolean }>('membership.benefits.release', { checkoutId: orderId })).data).toEqual({
      checkoutId: orderId,
      released: false,
    });

    await loyalty().orderPaid(order); // earns 86
    const half = refunded(orderId, memberId, 4_300);
    await loyalty().orderRefunded(half);
    await benefits().orderRefunded(half);
    await benefits().orderRefunded(half); // replayed
    // +200 of the 400 spent, −43 of the 86 earned.
    expect(await loyalty().pointsOf(memberId)).toBe(600 + 86 + 200 - 43);
    expect(await couponState(couponId)).toBe('USED');

    const rest = refunded(orderId, memberId, 4_300);
    await benefits().orderRefunded(rest);
    await loyalty().orderRefunded(rest);
    expect(await loyalty().pointsOf(memberId)).toBe(1_000);
    expect(await couponState(couponId)).toBe('AVAILABLE');
  });

  test('a release that overtakes its lock (the checkout gave up waiting) leaves nothing taken', async () => {
    const memberId = oid();
    await loyalty().grantPoints(memberId, `seed:${memberId}`, 500, 'seed');
    const couponId = await couponFor(memberId, { name: '减1元', kind: 'FIXED', amount: 100, validDaysAfterClaim: 7, claimable: false });
    const checkoutId = oid();
    expect((await request<{ released: boolean }>('membership.benefits.release', { checkoutId })).data!.released).toBe(false);
    const late = await request('membership.benefits.lock', {
      checkoutId,
      memberId,
      adjustments: [
        { kind: 'COUPON', amount: -100, label: '减1元', ref: couponId },
        { kind: 'POINTS', amount: -50, label: '50 积分抵扣', ref: 'points:50' },
      ],
    });
    expect(late.error?.code).toBe('CONFLICT');
    expect(await loyalty().pointsOf(memberId)).toBe(500);
    expect(await couponState(couponId)).toBe('ISSUED');
  });

  test('a lock that cannot have it all takes nothing: a coupon locked elsewhere returns the points', async () => {
    const memberId = oid();
    await loyalty().grantPoints(memberId, `seed:${memberId}`, 500, 'seed');
    const couponId = await couponFor(memberId, { name: '减2元', kind: 'FIXED', amount: 200, validDaysAfterClaim: 7, claimable: false });
    const first = await request('membership.benefits.lock', {
      checkoutId: oid(),
      memberId,
      adjustments: [{ kind: 'COUPON', amount: -200, label: '减2元', ref: couponId }],
    });
    expect(first.ok).toBe(true);
    const second = await request('membership.benefits.lock', {
      checkoutId: oid(),
      memberId,
      adjustments: [
        { kind: 'POINTS', amount: -300, label: '300 积分抵扣', ref: 'points:300' },
        { kind: 'COUPON', amount: -200, label: '减2元', ref: couponId },
      ],
    });
    expect(second.error?.code).toBe('CONFLICT');
    expect(await loyalty().pointsOf(memberId)).toBe(500);
  });
});

describe('group-exclusive coupons at checkout', () => {
  /** `${groupId}:${memberId}` of the members in a group, as the test's stand-in for community. */
  const inGroup = new Set<string>();
  let asked = 0;
  beforeAll(() => {
    svc.bus.reply('community.group.membership', async ({ groupId, memberId }) => {
      asked++;
      return { member: inGroup.has(`${groupId}:${memberId}`) };
    });
  });
  type Quote = { adjustments: Adjustment[] };
  const quote = (memberId: string, coupon?: unknown) =>
    request<Quote>('membership.benefits.quote', { checkoutId: oid(), memberId, lines: [line(10_000)], subtotal: 10_000, coupon });
  const couponRef = (q: Reply<Quote>) => q.data?.adjustments.find((a) => a.kind === 'COUPON')?.ref;

  test('a member who left the group: BEST skips the group coupon, asking it refuses FORBIDDEN; one request per quote', async () => {
    const memberId = oid();
    const groupId = oid();
    const exclusive = await couponFor(memberId, { name: '群专属减20', kind: 'FIXED', amount: 2_000, validDaysAfterClaim: 7, groupId });
    const plain = await couponFor(memberId, { name: '减5元', kind: 'FIXED', amount: 500, validDaysAfterClaim: 7, claimable: false });

    inGroup.add(`${groupId}:${memberId}`);
    asked = 0;
    expect(couponRef(await quote(memberId))).toBe(exclusive);
    expect(asked).toBe(1);

    inGroup.delete(`${groupId}:${memberId}`); // left the group
    asked = 0;
    expect(couponRef(await quote(memberId))).toBe(plain);
    expect(asked).toBe(1);
    const refused = await quote(memberId, { couponId: exclusive });
    expect(refused.error?.code).toBe('FORBIDDEN');
    expect(asked).toBe(2);

    // No group coupon in play: community is not asked.
    asked = 0;
    expect(couponRef(await quote(memberId, { couponId: plain }))).toBe(plain);
    expect(await quote(memberId, 'NONE')).toMatchObject({ ok: true });
    expect(asked).toBe(0);
  });
});
