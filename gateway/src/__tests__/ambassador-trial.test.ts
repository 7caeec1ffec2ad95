// Ambassador trial products (体验官试用) through the gateway (real subgraphs, FerretDB and NATS):
// staff send an approved ambassador a coupon covering the trial SKU → the member checks out with it
// through the normal checkout → the total is 0 and the order is PAID at once (stock sold, coupon
// USED, community sees the paid order: trial ORDERED) → the ambassador's verified showcase of the
// line makes the trial SHOWCASED, and the post carries the ambassador badge.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import {
  asStaff,
  createTestProduct,
  errorCode,
  errorReason,
  newCustomer,
  signUp,
  startInProcessStack,
  type InProcessStack,
} from './in-process-stack';

jest.setTimeout(180_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
const code = errorCode;
const reason = errorReason;
const ok = <T extends { errors?: unknown }>(res: T): T => {
  expect(res.errors).toBeUndefined();
  return res;
};

const SEND = 'mutation($i: SendAmbassadorTrialInput!) { sendAmbassadorTrial(input: $i) { id memberId couponTemplateId couponId status } }';
const TRIALS = 'query($m: ID!) { ambassadorStatus(memberId: $m) { status trials { id couponId status orderId showcasePostId } } }';
const MY_TRIALS = '{ me { id ambassadorTrials { id status } } }';
const WALLET = '{ me { coupons { coupons(first: 20) { edges { node { id state usedOrderId template { id } } } } } } }';
const PLACE =
  'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount } payBy payments { id amount { amount } status } } }';
const STOCK = 'query($id: ID!) { product(id: $id) { skus { id stock { available reserved sold } } } }';

const product = (price: number) => createTestProduct(url(), staff, { price, stock: 20 }, `体验装 ${randomUUID().slice(0, 6)}`);

async function template(productId: string, amount: number) {
  const created = ok(
    await gql(
      url(),
      'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
      {
        i: {
          name: '体验官试用券',
          kind: 'FIXED',
          amount,
          scope: 'PRODUCTS',
          productIds: [productId],
          validDaysAfterClaim: 14,
          claimable: false,
          perMemberLimit: 3,
        },
      },
      staff,
    ),
  );
  return created.data!.createCouponTemplate.id as string;
}

async function ambassador(opts: { address?: boolean } = {}) {
  const m = await signUp(url(), opts);
  ok(await gql(url(), 'mutation { applyForAmbassador(note: "想体验新品") { status } }', {}, m.headers));
  ok(await gql(url(), 'mutation($m: ID!) { approveAmbassador(memberId: $m, showcaseDueDays: 7) { status } }', { m: m.id }, staff));
  return m;
}

const trialsOf = async (memberId: string) => ok(await gql(url(), TRIALS, { m: memberId }, staff)).data!.ambassadorStatus.trials;

test('trial coupon → zero-total checkout PAID at once → trial ORDERED → verified showcase → SHOWCASED and badged', async () => {
  // A FIXED coupon larger than the goods: capped at what the goods cost, so the total is 0.
  const { productId, skuId } = await product(5900);
  const templateId = await template(productId, 10_000);
  const amb = await ambassador({ address: true });

  const key = randomUUID();
  const sent = ok(await gql(url(), SEND, { i: { memberId: amb.id, couponTemplateId: templateId, idempotencyKey: key } }, staff));
  const trial = sent.data!.sendAmbassadorTrial;
  expect(trial).toMatchObject({ memberId: amb.id, couponTemplateId: templateId, status: 'ISSUED' });
  // A replay of the key: the same trial, the same coupon, one coupon in the wallet.
  const replay = ok(await gql(url(), SEND, { i: { memberId: amb.id, couponTemplateId: templateId, idempotencyKey: key } }, staff));
  expect(replay.data!.sendAmbassadorTrial).toEqual(trial);
  const wallet = ok(await gql(url(), WALLET, {}, amb.headers)).data!.me.coupons.coupons.edges.map((e: { node: unknown }) => e.node);
  expect(wallet).toEqual([{ id: trial.couponId, state: 'AVAILABLE', usedOrderId: null, template: { id: templateId } }]);
  // The ambassador sees their own trial.
  expect(ok(await gql(url(), MY_TRIALS, {}, amb.headers)).data!.me.ambassadorTrials).toEqual([{ id: trial.id, status: 'ISSUED' }]);

  // The normal checkout, retried at once with the same key: one order, paid once, at 0.
  const input = { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }], couponId: trial.couponId };
  const placed = await Promise.all([gql(url(), PLACE, { i: input }, amb.headers), gql(url(), PLACE, { i: input }, amb.headers)]);
  for (const r of placed) ok(r);
  const [order, twin] = placed.map((r) => r.data!.placeOrder);
  expect(twin.id).toBe(order.id);
  expect(order).toMatchObject({ status: 'PAID', total: { amount: 0 }, payBy: null });
  expect(order.payments).toEqual([{ id: `none:${order.id}`, amount: { amount: 0 }, status: 'CAPTURED' }]);
  expect(code(await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: order.id }, amb.headers))).toBe(
    'CONFLICT',
  );

  // Downstream sees a normal paid order: stock sold, coupon USED, the trial ORDERED.
  await eventually(async () => {
    const sku = (await gql(url(), STOCK, { id: productId }, staff)).data?.product.skus[0];
    return sku?.stock.sold === 1 && sku.stock.reserved === 0;
  }, 20_000);
  await eventually(async () => {
    const coupons = (await gql(url(), WALLET, {}, amb.headers)).data?.me.coupons.coupons.edges ?? [];
    return coupons[0]?.node.state === 'USED' && coupons[0].node.usedOrderId === order.id;
  }, 20_000);
  await eventually(async () => (await trialsOf(amb.id))[0]?.status === 'ORDERED', 20_000);
  expect((await trialsOf(amb.id))[0]).toMatchObject({ id: trial.id, orderId: order.id, showcasePostId: null });

  // The showcase owed: verified (a paid line), badged (an ambassador's), and the trial SHOWCASED.
  const posted = ok(
    await gql(
      url(),
      'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id verified ambassador } }',
      { i: { orderId: order.id, skuId, rating: 5, body: '体验官试用报告：质地轻薄，很好吸收。' } },
      amb.headers,
    ),
  );
  const post = posted.data!.postShowcase;
  expect(post).toMatchObject({ verified: true, ambassador: true });
  await eventually(async () => (await trialsOf(amb.id))[0]?.status === 'SHOWCASED', 20_000);
  expect((await trialsOf(amb.id))[0]).toMatchObject({ orderId: order.id, showcasePostId: post.id });
});

test('a trial only for an approved ambassador, sent by staff only', async () => {
  const { productId } = await product(3900);
  const templateId = await template(productId, 3900);
  const send = (memberId: string, headers: Record<string, string>) =>
    gql(url(), SEND, { i: { memberId, couponTemplateId: templateId, idempotencyKey: randomUUID() } }, headers);

  // Never applied.
  const stranger = await signUp(url());
  const refused = await send(stranger.id, staff);
  expect([code(refused), reason(refused)]).toEqual(['CONFLICT', 'NONE']);
  // Applied, not yet approved.
  ok(await gql(url(), 'mutation { applyForAmbassador(note: "我也想试") { status } }', {}, stranger.headers));
  expect(reason(await send(stranger.id, staff))).toBe('APPLIED');

  // Revoked: no new trial, and nothing reaches the wallet.
  const amb = await ambassador();
  ok(await gql(url(), 'mutation($m: ID!) { revokeAmbassador(memberId: $m, reason: "未按时晒单") { status } }', { m: amb.id }, staff));
  const revoked = await send(amb.id, staff);
  expect([code(revoked), reason(revoked)]).toEqual(['CONFLICT', 'REVOKED']);
  expect(ok(await gql(url(), WALLET, {}, amb.headers)).data!.me.coupons.coupons.edges).toEqual([]);

  // A member (even an approved ambassador, for themselves) cannot send one; nor see another's trials.
  const other = await ambassador();
  expect(code(await send(other.id, other.headers))).toBe('FORBIDDEN');
  expect(code(await gql(url(), TRIALS, { m: other.id }, newCustomer().headers))).toBe('FORBIDDEN');
  expect(ok(await gql(url(), TRIALS, { m: other.id }, staff)).data!.ambassadorStatus.trials).toEqual([]);
});
