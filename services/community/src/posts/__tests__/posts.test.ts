import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';

let nats: InfraProcess;
let svc: RunningCommunity;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)), { sweepers: false });
  svc.bus.reply('membership.coupon.grant', async (req) => {
    if (membershipDown) throw new Error('membership is down');
    grants.push(req.key);
    return { couponId: `coupon-${req.key}` };
  });
});
let membershipDown = false;
const grants: string[] = [];
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const as = (memberId: string) => asGateway('community', customer(memberId));
const asStaff = () => asGateway('community', staff());
const call = (query: string, variables: Record<string, unknown> = {}, headers = asGateway('community', null)) =>
  gql(svc.url, query, variables, headers);
const code = (res: { errors?: readonly any[] }) => res.errors?.[0]?.extensions?.code;

const SHOWCASE =
  'mutation($input: PostShowcaseInput!) { postShowcase(input: $input) { id verified showcase { rating orderId } product { id } } }';
const PRODUCT =
  'query($r: [_Any!]!) { _entities(representations: $r) { ... on Product { id rating { average count } showcasePosts(first: 10) { id verified } } } }';
const product = async (productId: string) => {
  const res = await call(PRODUCT, { r: [{ __typename: 'Product', id: productId }] });
  expect(res.errors).toBeUndefined();
  return res.data!._entities[0];
};

async function paid(memberId: string, productId: string, total = 1000) {
  const orderId = randomUUID();
  await svc.bus.publish('orders.order.paid', {
    orderId,
    memberId,
    total,
    currency: 'CNY',
    lines: [{ skuId: 's1', productId, quantity: 1, unitPrice: total, priceKind: 'LIST' }],
    source: { kind: 'DIRECT' },
    paymentId: randomUUID(),
    paidAt: new Date().toISOString(),
  });
  await eventually(async () => (await svc.db.collection('community_paid_orders').countDocuments({ _id: orderId as never })) === 1);
  return orderId;
}

const refund = (orderId: string, memberId: string, amount: number) =>
  svc.bus.publish('orders.order.refunded', {
    orderId,
    memberId,
    refundId: randomUUID(),
    amount,
    currency: 'CNY',
    restock: [],
    refundedAt: new Date().toISOString(),
  });

const showcase = (memberId: string, orderId: string, rating: number) =>
  call(
    SHOWCASE,
    { input: { orderId, skuId: 's1', rating, body: '很好用，回购了', images: ['https://cdn.example.com/a.jpg'] } },
    as(memberId),
  );

test('a paid order line → a verified showcase with its rating, and the product rating counts it; a second is CONFLICT', async () => {
  const [buyer, other, productId] = [oid(), oid(), oid()];
  const orderId = await paid(buyer, productId);
  const first = await showcase(buyer, orderId, 4);
  expect(first.errors).toBeUndefined();
  expect(first.data!.postShowcase).toMatchObject({ verified: true, showcase: { rating: 4, orderId }, product: { id: productId } });
  const second = await paid(other, productId);
  expect((await showcase(other, second, 5)).errors).toBeUndefined();
  expect((await product(productId)).rating).toEqual({ average: 4.5, count: 2 });

  const again = await Promise.all([showcase(buyer, orderId, 5), showcase(buyer, orderId, 1)]);
  expect(again.map(code)).toEqual(['CONFLICT', 'CONFLICT']);
  expect((await product(productId)).rating).toEqual({ average: 4.5, count: 2 });
  // The published event went out through the outbox.
  await eventually(async () => (await svc.db.collection('outbox_sent').countDocuments()) >= 2);
});

test('not the buyer is FORBIDDEN; an unknown line or a fully refunded order is BAD_USER_INPUT', async () => {
  const [buyer, productId] = [oid(), oid()];
  const orderId = await paid(buyer, productId);
  expect(code(await showcase(oid(), orderId, 5))).toBe('FORBIDDEN');
  expect(code(await showcase(buyer, randomUUID(), 5))).toBe('BAD_USER_INPUT');
  await refund(orderId, buyer, 1000);
  await eventually(async () => (await svc.db.collection('community_order_refunds').countDocuments({ orderId })) === 1);
  expect(code(await showcase(buyer, orderId, 5))).toBe('BAD_USER_INPUT');
});

test('a full refund takes the badge and the rating away; a partial one does not', async () => {
  const [buyer, productId] = [oid(), oid()];
  const orderId = await paid(buyer, productId, 1000);
  const res = await showcase(buyer, orderId, 5);
  const postId = res.data!.postShowcase.id;
  await refund(orderId, buyer, 400);
  await eventually(async () => (await svc.db.collection('community_order_refunds').countDocuments({ orderId })) === 1);
  expect((await product(productId)).rating).toEqual({ average: 5, count: 1 });
  await refund(orderId, buyer, 600);
  await eventually(async () => (await product(productId)).rating.count === 0);
  const p = await product(productId);
  expect(p.rating).toEqual({ average: null, count: 0 });
  expect(p.showcasePosts).toEqual([{ id: postId, verified: false }]);
});

test('a banned word is refused once staff list it', async () => {
  const words = await call('{ communityBannedWords { version } }', {}, asStaff());
  const version = words.data!.communityBannedWords.version;
  const set = await call(
    'mutation($w: [String!]!, $v: Int!) { setCommunityBannedWords(words: $w, expectedVersion: $v) { version } }',
    { w: ['假货'], v: version },
    asStaff(),
  );
  expect(set.data!.setCommunityBannedWords.version).toBe(version + 1);
  const post = (body: string) => call('mutation($i: PublishPostInput!) { publishPost(input: $i) { id body } }', { i: { body } }, as(oid()));
  expect(code(await post('这是 假 货吗'))).toBe('BAD_USER_INPUT');
  expect((await post('好物分享')).data!.publishPost.body).toBe('好物分享');
  expect(
    code(
      await call(
        'mutation($i: PublishPostInput!) { publishPost(input: $i) { id } }',
        { i: { body: 'x', images: ['http://a.b/c.jpg'] } },
        as(oid()),
      ),
    ),
  ).toBe('BAD_USER_INPUT');
});

test('a reported post reaches the review queue; hidden, it vanishes from public queries and the rating; restored, it is back', async () => {
  const [buyer, productId] = [oid(), oid()];
  const orderId = await paid(buyer, productId);
  const postId = (await showcase(buyer, orderId, 2)).data!.postShowcase.id;
  for (let i = 0; i < 2; i++)
    expect(await call('mutation($p: ID!) { reportPost(postId: $p, reason: "spam") }', { p: postId }, as(oid()))).toMatchObject({
      data: { reportPost: true },
    });
  const queue = await call('{ postReviewQueue { id reportCount } }', {}, asStaff());
  expect(queue.errors).toBeUndefined();
  expect(queue.data!.postReviewQueue).toEqual(expect.arrayContaining([{ id: postId, reportCount: 2 }]));

  const hide = await call('mutation($p: ID!) { hidePost(postId: $p, reason: "广告") { id hidden } }', { p: postId }, asStaff());
  expect(hide.data!.hidePost).toEqual({ id: postId, hidden: true });
  expect((await call('query($p: ID!) { post(id: $p) { id } }', { p: postId })).data!.post).toBeNull();
  const list = await call('{ posts(first: 50) { edges { node { id } } } }');
  expect(list.data!.posts.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(postId);
  expect(await product(productId)).toMatchObject({ rating: { average: null, count: 0 }, showcasePosts: [] });
  // Hiding again changes nothing.
  await call('mutation($p: ID!) { hidePost(postId: $p, reason: "again") { id } }', { p: postId }, asStaff());
  expect((await product(productId)).rating.count).toBe(0);

  await call('mutation($p: ID!) { restorePost(postId: $p, reason: "申诉通过") { id } }', { p: postId }, asStaff());
  expect((await product(productId)).rating).toEqual({ average: 2, count: 1 });
});

test('likes are counted in memory and flushed as one ledger entry per post', async () => {
  const postId = (await call('mutation { publishPost(input: { body: "晒晒" }) { id } }', {}, as(oid()))).data!.publishPost.id;
  for (let i = 0; i < 5; i++) await call('mutation($p: ID!) { likePost(postId: $p, count: 2) }', { p: postId }, as(oid()));
  await svc.modules.posts.posts.flushLikes();
  // Fewer writes than likes: one entry per post per flush (the timer may have flushed once between the calls).
  expect(await svc.db.collection('community_post_likes').countDocuments({ accountId: postId })).toBeLessThan(3);
  expect((await call('query($p: ID!) { post(id: $p) { likes } }', { p: postId })).data!.post.likes).toBe(10);
});

test('a good verified showcase earns the reward coupon once, keyed by the post; a low rating none; a lost grant is retried by the sweep', async () => {
  const rule = await call('{ showcaseReward { version } }', {}, asStaff());
  const set = await call(
    'mutation($i: SetShowcaseRewardInput!) { setShowcaseReward(input: $i) { couponTemplateId minRating version } }',
    { i: { couponTemplateId: 'tpl-1', minRating: 4, expectedVersion: rule.data!.showcaseReward.version } },
    asStaff(),
  );
  expect(set.data!.setShowcaseReward).toMatchObject({ couponTemplateId: 'tpl-1', minRating: 4 });
  const [good, low, late, productId] = [oid(), oid(), oid(), oid()];
  const goodPost = (await showcase(good, await paid(good, productId), 5)).data!.postShowcase.id;
  await showcase(low, await paid(low, productId), 3);
  expect(grants).toEqual([`community:showcase:${goodPost}`]);
  const reward = await svc.db.collection('community_showcase_rewards').findOne({ _id: goodPost as never });
  expect(reward).toMatchObject({ status: 'GRANTED', couponId: `coupon-community:showcase:${goodPost}` });

  membershipDown = true;
  const latePost = (await showcase(late, await paid(late, productId), 4)).data!.postShowcase.id;
  expect(await svc.db.collection('community_showcase_rewards').findOne({ _id: latePost as never })).toMatchObject({ status: 'PENDING' });
  membershipDown = false;
  await svc.sweep();
  expect(await svc.db.collection('community_showcase_rewards').findOne({ _id: latePost as never })).toMatchObject({ status: 'GRANTED' });
  expect(grants.filter((k) => k === `community:showcase:${latePost}`)).toHaveLength(1);
}, 30_000);

test('a reversal membership does not answer stays REVERSING and the sweep asks again under the same key; a LOCKED coupon waits', async () => {
  const revokes: string[] = [];
  let couponAnswer: 'REVOKED' | 'LOCKED' = 'LOCKED';
  svc.bus.reply('membership.points.grant', async (req) => ({ points: req.points }));
  svc.bus.reply('membership.coupon.revoke', async (req) => {
    if (membershipDown) throw new Error('membership is down');
    revokes.push(`coupon:${req.key}`);
    return { revoked: couponAnswer === 'REVOKED', state: couponAnswer, couponId: `coupon-${req.key}` };
  });
  svc.bus.reply('membership.points.revoke', async (req) => {
    if (membershipDown) throw new Error('membership is down');
    revokes.push(`points:${req.key}`);
    return { revoked: true, taken: 30, shortfall: 0 };
  });
  const version = (await call('{ showcaseReward { version } }', {}, asStaff())).data!.showcaseReward.version;
  const set = await call(
    'mutation($i: SetShowcaseRewardInput!) { setShowcaseReward(input: $i) { points } }',
    { i: { couponTemplateId: 'tpl-2', points: 30, minRating: 4, expectedVersion: version } },
    asStaff(),
  );
  expect(set.data!.setShowcaseReward.points).toBe(30);
  const member = oid();
  const postId = (await showcase(member, await paid(member, oid()), 5)).data!.postShowcase.id;
  const REWARD = 'query($p: ID!) { post(id: $p) { reward { status points reversalTrigger couponState pointsTaken } } }';
  expect((await call(REWARD, { p: postId }, as(member))).data!.post.reward).toMatchObject({ status: 'GRANTED', points: 30 });
  expect((await call(REWARD, { p: postId }, as(oid()))).data!.post.reward).toBeNull();

  membershipDown = true;
  await call('mutation($p: ID!) { hidePost(postId: $p, reason: "spam") { id } }', { p: postId }, asStaff());
  expect((await call(REWARD, { p: postId }, asStaff())).data!.post.reward).toMatchObject({
    status: 'REVERSING',
    reversalTrigger: 'HIDDEN',
  });
  membershipDown = false;
  // The coupon is LOCKED by an unpaid order: the points are taken back, the coupon is asked again later.
  await svc.sweep();
  expect((await call(REWARD, { p: postId }, asStaff())).data!.post.reward).toMatchObject({ status: 'REVERSING', pointsTaken: 30 });
  couponAnswer = 'REVOKED';
  await svc.sweep();
  expect((await call(REWARD, { p: postId }, asStaff())).data!.post.reward).toMatchObject({
    status: 'REVERSED',
    couponState: 'REVOKED',
    pointsTaken: 30,
  });
  const key = `community:showcase:${postId}`;
  expect(revokes).toEqual([`coupon:${key}`, `points:${key}`, `coupon:${key}`]);
  // Restored: no grant again, and a later sweep asks nothing more.
  await call('mutation($p: ID!) { restorePost(postId: $p, reason: "ok") { id } }', { p: postId }, asStaff());
  await svc.sweep();
  expect(grants.filter((k) => k === key)).toHaveLength(1);
  expect(revokes).toHaveLength(3);
}, 30_000);
