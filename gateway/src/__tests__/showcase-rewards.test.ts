// Showcase rewards (好评送积分/券) through the gateway (real subgraphs, FerretDB and NATS): a paid
// order → a verified showcase rated 5 → Product.rating → coupon and points granted once → a full
// refund takes them back (coupon REVOKED, points clawed back), the badge and the rating go; a post
// hidden by moderation is reversed too (and a restore grants nothing again); a coupon already used
// before the refund is a REVERSAL_SHORTFALL, recorded, not lost (and revoked, not restored, if that
// order is refunded in turn).
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import { asStaff, createTestProduct, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(240_000);

let stack: InProcessStack;
let templateId: string;
const REWARD_POINTS = 200;

beforeAll(async () => {
  stack = await startInProcessStack();
  const t = await gql(
    url(),
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '好评返券', kind: 'FIXED', amount: 500, claimable: false, perMemberLimit: 10, validDaysAfterClaim: 30 } },
    staff,
  );
  expect(t.errors).toBeUndefined();
  templateId = t.data!.createCouponTemplate.id;
  const rule = await gql(url(), '{ showcaseReward { version } }', {}, staff);
  const set = await gql(
    url(),
    'mutation($i: SetShowcaseRewardInput!) { setShowcaseReward(input: $i) { couponTemplateId points minRating } }',
    { i: { couponTemplateId: templateId, points: REWARD_POINTS, minRating: 4, expectedVersion: rule.data!.showcaseReward.version } },
    staff,
  );
  expect(set.data!.setShowcaseReward).toEqual({ couponTemplateId: templateId, points: REWARD_POINTS, minRating: 4 });
}, 90_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
type Buyer = Awaited<ReturnType<typeof signUp>>;

const REWARD = `query($id: ID!) { post(id: $id) { id verified reward { status couponId points reversalTrigger couponState pointsTaken pointsShortfall } } }`;
const WALLET = `{ me { points { balance } coupons { available revoked used coupons { edges { node { id state } } } } } }`;
const RATING = `query($id: ID!) { product(id: $id) { rating { average count } } }`;

const newProduct = () =>
  createTestProduct(url(), staff, { price: 5900, stock: 50, weightGrams: 300 }, `好评商品 ${randomUUID().slice(0, 6)}`);

/** Places and pays an order of one unit (with a coupon when named, else none). */
async function buy(buyer: Buyer, skuId: string, couponId?: string): Promise<string> {
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }], ...(couponId ? { couponId } : { noCoupon: true }) } },
    buyer.headers,
  );
  expect(placed.errors).toBeUndefined();
  const orderId = placed.data!.placeOrder.id as string;
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, buyer.headers);
  expect((await stack.orders.payments.pay(intent.data!.payOrder.id))[0]?.status).toBe(200);
  return orderId;
}

/** A verified showcase of the order's line rated `rating` (once community has the paid order). */
async function showcase(buyer: Buyer, orderId: string, skuId: string, rating: number): Promise<string> {
  const posted = await eventually(async () => {
    const r = await gql(
      url(),
      'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id verified } }',
      { i: { orderId, skuId, rating, body: '好评！质量很好' } },
      buyer.headers,
    );
    return r.errors ? null : r;
  }, 20_000);
  expect(posted.data!.postShowcase.verified).toBe(true);
  return posted.data!.postShowcase.id;
}

async function refundFully(buyer: Buyer, orderId: string, skuId: string): Promise<void> {
  const asked = await gql(
    url(),
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }',
    { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '不想要了', idempotencyKey: randomUUID() } },
    buyer.headers,
  );
  expect(asked.errors).toBeUndefined();
  const approved = await gql(
    url(),
    'mutation($id: ID!) { approveAfterSale(input: { afterSaleId: $id }) { status } }',
    { id: asked.data!.requestAfterSale.id },
    staff,
  );
  expect(approved.data!.approveAfterSale.status).toBe('REFUNDED');
}

const rewardOf = async (postId: string, headers: Record<string, string>) => (await gql(url(), REWARD, { id: postId }, headers)).data?.post;
const wallet = async (buyer: Buyer) => (await gql(url(), WALLET, {}, buyer.headers)).data!.me;
/** Waits for the post's reward to reach `status` (the sweep asks again for what got no answer). */
const rewardReaches = (postId: string, status: string) =>
  eventually(async () => {
    const p = await rewardOf(postId, staff);
    return p?.reward?.status === status ? p : null;
  }, 30_000);

test('paid order → showcase rated 5 → rating → coupon and points once → full refund: REVERSED, coupon REVOKED, points back, badge and rating gone', async () => {
  const { productId, skuId } = await newProduct();
  const buyer = await signUp(url(), { address: true });
  const orderId = await buy(buyer, skuId);
  const postId = await showcase(buyer, orderId, skuId, 5);
  expect((await gql(url(), RATING, { id: productId })).data!.product.rating).toEqual({ average: 5, count: 1 });

  const granted = await rewardReaches(postId, 'GRANTED');
  expect(granted.reward).toMatchObject({ points: REWARD_POINTS, reversalTrigger: null, pointsTaken: 0 });
  const couponId = granted.reward.couponId as string;
  expect(couponId).toBeTruthy();
  // The author sees it; another member and anonymous visitors do not.
  expect((await rewardOf(postId, buyer.headers)).reward.status).toBe('GRANTED');
  expect((await rewardOf(postId, (await signUp(url())).headers)).reward).toBeNull();
  expect((await rewardOf(postId, {})).reward).toBeNull();

  // The order's own points arrive by event; the reward's are on top.
  const before = await eventually(async () => {
    const me = await wallet(buyer);
    return me.points.balance > REWARD_POINTS ? me : null;
  }, 20_000);
  expect(before.coupons).toMatchObject({ available: 1, revoked: 0 });
  expect(before.coupons.coupons.edges).toEqual([{ node: { id: couponId, state: 'AVAILABLE' } }]);

  // Replays grant nothing twice: the showcase's publish hook again, the sweep, membership asked again under the key.
  const post = await stack.community.modules.posts.posts.post(null, postId);
  await stack.community.modules.posts.rewards.showcasePublished(post!);
  await stack.community.sweep();
  const key = `community:showcase:${postId}`;
  const bus = stack.community.bus;
  expect((await bus.request('membership.coupon.grant', { key, memberId: buyer.id, templateId, reason: 'replay' })).couponId).toBe(couponId);
  await bus.request('membership.points.grant', { key, memberId: buyer.id, points: REWARD_POINTS, reason: 'replay' });
  const replayed = await wallet(buyer);
  expect(replayed.points.balance).toBe(before.points.balance);
  expect(replayed.coupons.coupons.edges).toHaveLength(1);

  await refundFully(buyer, orderId, skuId);
  const reversed = await rewardReaches(postId, 'REVERSED');
  expect(reversed).toMatchObject({
    verified: false,
    reward: { couponId, reversalTrigger: 'REFUNDED', couponState: 'REVOKED', pointsTaken: REWARD_POINTS, pointsShortfall: 0 },
  });
  const after = await eventually(async () => {
    const me = await wallet(buyer);
    // The order's earned points are clawed back by the refund too: nothing is left.
    return me.points.balance === 0 ? me : null;
  }, 20_000);
  expect(after.coupons).toMatchObject({ available: 0, revoked: 1 });
  expect(after.coupons.coupons.edges).toEqual([{ node: { id: couponId, state: 'REVOKED' } }]);
  const rating = await eventually(async () => {
    const r = (await gql(url(), RATING, { id: productId })).data!.product.rating;
    return r.count === 0 ? r : null;
  }, 20_000);
  expect(rating).toEqual({ average: null, count: 0 });
});

test('a showcase hidden by moderation has its reward reversed; restoring it grants nothing again', async () => {
  const { productId, skuId } = await newProduct();
  const buyer = await signUp(url(), { address: true });
  const postId = await showcase(buyer, await buy(buyer, skuId), skuId, 4);
  const granted = await rewardReaches(postId, 'GRANTED');

  const hidden = await gql(url(), 'mutation($id: ID!) { hidePost(postId: $id, reason: "广告") { hidden } }', { id: postId }, staff);
  expect(hidden.data!.hidePost.hidden).toBe(true);
  const reversed = await rewardReaches(postId, 'REVERSED');
  expect(reversed.reward).toMatchObject({ reversalTrigger: 'HIDDEN', couponState: 'REVOKED', pointsTaken: REWARD_POINTS });
  expect((await wallet(buyer)).coupons.coupons.edges).toEqual([{ node: { id: granted.reward.couponId, state: 'REVOKED' } }]);

  await gql(url(), 'mutation($id: ID!) { restorePost(postId: $id, reason: "误判") { hidden } }', { id: postId }, staff);
  await stack.community.sweep();
  const restored = await rewardOf(postId, staff);
  expect(restored.reward.status).toBe('REVERSED');
  const me = await wallet(buyer);
  expect(me.coupons).toMatchObject({ available: 0, revoked: 1 });
  expect((await gql(url(), RATING, { id: productId })).data!.product.rating).toEqual({ average: 4, count: 1 });
});

test('the reward coupon used on another order before the refund: REVERSAL_SHORTFALL says so, the points still come back', async () => {
  const { skuId } = await newProduct();
  const buyer = await signUp(url(), { address: true });
  const orderId = await buy(buyer, skuId);
  const postId = await showcase(buyer, orderId, skuId, 5);
  const couponId = (await rewardReaches(postId, 'GRANTED')).reward.couponId as string;

  const second = await buy(buyer, skuId, couponId);
  await eventually(async () => (await wallet(buyer)).coupons.used === 1, 20_000);

  await refundFully(buyer, orderId, skuId);
  const short = await rewardReaches(postId, 'REVERSAL_SHORTFALL');
  expect(short).toMatchObject({
    verified: false,
    reward: { couponId, reversalTrigger: 'REFUNDED', couponState: 'USED', pointsTaken: REWARD_POINTS, pointsShortfall: 0 },
  });
  // The used coupon stays used (the second order keeps its discount); nothing pretends it was revoked.
  expect((await wallet(buyer)).coupons).toMatchObject({ used: 1, revoked: 0 });
  // Should that second order be refunded too, the coupon does not come back to the wallet: it was
  // asked back, so the refund revokes it instead of restoring it.
  await refundFully(buyer, second, skuId);
  await eventually(async () => (await wallet(buyer)).coupons.revoked === 1, 20_000);
  expect((await wallet(buyer)).coupons).toMatchObject({ used: 0, revoked: 1, available: 0 });
});
