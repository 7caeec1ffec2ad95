// Invite campaigns (邀请有礼 / 分享领券) through the gateway (real subgraphs, FerretDB and NATS): A shares
// a link, B registers with A's code, B's first paid order rewards both once (a coupon in B's wallet,
// points for A), a second order and replayed events nothing; a full refund within the window takes
// both back; the daily cap refuses with its reason; VELOCITY, CYCLE and SAME_PHONE hold the reward
// for staff, who approve or reject it.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { eventually, gql } from '@flywheel/testing';
import { asStaff, bearer, createTestProduct, errorCode, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(300_000);

let stack: InProcessStack;
let templateId: string;
let skuId: string;
const INVITER_POINTS = 300;

const url = () => stack.gateway.url;
const staff = asStaff();
type Member = { id: string; headers: Record<string, string> };

const SET = `mutation($i: SetInviteCampaignInput!, $v: Int!) { setInviteCampaign(input: $i, expectedVersion: $v) { version } }`;
const REWARD = `query($id: ID!) { inviteReward(inviteeId: $id) { id status rule reason inviter { id } orderId reversedAt } }`;
const WALLET = `{ me { points { balance } coupons { available revoked coupons(first: 20) { edges { node { id state template { id } } } } } } }`;

async function setCampaign(more: Record<string, unknown> = {}): Promise<void> {
  const { version } = (await gql(url(), '{ inviteCampaign { version } }', {}, staff)).data!.inviteCampaign;
  const i = {
    active: true,
    inviterReward: { points: INVITER_POINTS },
    inviteeReward: { couponTemplateId: templateId },
    capPerInviterPerDay: 10,
    capPerInviterPerMonth: 100,
    afterSalesWindowDays: 7,
    fraud: { velocity: { enabled: true, maxPerHour: 10 } },
    ...more,
  };
  const res = await gql(url(), SET, { i, v: version }, staff);
  expect(res.errors).toBeUndefined();
}

beforeAll(async () => {
  // Many sign-ups from one test address: a larger budget for the login fields than a client gets.
  stack = await startInProcessStack({ gateway: { SENSITIVE_CALLS_PER_MINUTE: '500' } });
  const t = await gql(
    url(),
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '邀请有礼', kind: 'FIXED', amount: 1000, claimable: false, perMemberLimit: 10, validDaysAfterClaim: 30 } },
    staff,
  );
  expect(t.errors).toBeUndefined();
  templateId = t.data!.createCouponTemplate.id;
  skuId = (await createTestProduct(url(), staff, { price: 5900, stock: 200, weightGrams: 300 })).skuId;
  await setCampaign();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** Registers through login (phone code), with an inviter's code when given, and a delivery address. */
async function register(inviteCode?: string): Promise<Member> {
  const phone = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  const code = await gql(url(), 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const login = await gql(url(), 'mutation($i: LoginInput!) { login(input: $i) { accessToken session { member { id } } } }', {
    i: { phone, code: code.data!.requestLoginCode.devCode, ...(inviteCode ? { inviteCode } : {}) },
  });
  if (login.errors) throw new Error(`sign-up failed: ${JSON.stringify(login.errors)}`);
  const member = { id: login.data!.login.session.member.id as string, headers: bearer(login.data!.login.accessToken) };
  const added = await gql(
    url(),
    'mutation($i: AddAddressInput!) { addAddress(input: $i) { address { id } } }',
    {
      i: {
        recipientName: '李四',
        phone: '13912345678',
        detail: '漕溪北路 88 号 1201 室',
        province: { code: '310000', name: '上海市' },
        city: { code: '310100', name: '上海市' },
        district: { code: '310104', name: '徐汇区' },
      },
    },
    member.headers,
  );
  expect(added.errors).toBeUndefined();
  return member;
}

/** The member's invite code (issued when referral sees the registration). */
const inviteCodeOf = (m: Member) =>
  eventually(async () => (await gql(url(), '{ me { inviteCode { code } } }', {}, m.headers)).data?.me?.inviteCode?.code ?? null, 20_000);

/** An invitee bound to `inviter` (waits for referral's binding). */
async function invitee(inviterCode: string, inviter: Member): Promise<Member> {
  const m = await register(inviterCode);
  await eventually(
    async () => ((await gql(url(), '{ me { invitedBy { id } } }', {}, m.headers)).data?.me?.invitedBy?.id === inviter.id ? true : null),
    20_000,
  );
  return m;
}

async function buy(buyer: Member): Promise<string> {
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity: 1 }], noCoupon: true } },
    buyer.headers,
  );
  expect(placed.errors).toBeUndefined();
  const orderId = placed.data!.placeOrder.id as string;
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, buyer.headers);
  expect((await stack.orders.payments.pay(intent.data!.payOrder.id))[0]?.status).toBe(200);
  return orderId;
}

async function refundFully(buyer: Member, orderId: string): Promise<void> {
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

const rewardReaches = (inviteeId: string, status: string, headers: Record<string, string> = staff) =>
  eventually(async () => {
    const r = (await gql(url(), REWARD, { id: inviteeId }, headers)).data?.inviteReward;
    return r?.status === status ? r : null;
  }, 30_000);
const wallet = async (m: Member) => (await gql(url(), WALLET, {}, m.headers)).data!.me;
const rewardCoupons = (me: { coupons: { coupons: { edges: { node: { state: string; template: { id: string } } }[] } } }) =>
  me.coupons.coupons.edges.filter((e) => e.node.template.id === templateId).map((e) => e.node.state);

test('share → register with the code → first paid order rewards both once; a second order and replays nothing; a full refund reverses both', async () => {
  const a = await register();
  const share = await gql(
    url(),
    'mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id code } }',
    { i: { target: { kind: 'PRODUCT', id: new Types.ObjectId().toHexString() }, channel: 'WECHAT_FRIEND' } },
    a.headers,
  );
  expect(share.errors).toBeUndefined();
  const code = share.data!.createShareLink.code as string;
  expect(await inviteCodeOf(a)).toBe(code);
  const b = await invitee(code, a);

  const orderId = await buy(b);
  const granted = await rewardReaches(b.id, 'GRANTED', b.headers);
  expect(granted).toMatchObject({ inviter: { id: a.id }, orderId, rule: null });
  const bWallet = await eventually(async () => {
    const me = await wallet(b);
    return rewardCoupons(me).length === 1 ? me : null;
  }, 20_000);
  expect(rewardCoupons(bWallet)).toEqual(['AVAILABLE']);
  await eventually(async () => ((await wallet(a)).points.balance === INVITER_POINTS ? true : null), 20_000);

  // A second order rewards nothing; neither does the first order's event or the reward events replayed.
  await buy(b);
  const bus = stack.referral.bus;
  const paidAt = new Date().toISOString();
  await bus.publish('orders.order.paid', {
    orderId,
    memberId: b.id,
    total: 5900,
    currency: 'CNY',
    lines: [{ skuId, productId: new Types.ObjectId().toHexString(), quantity: 1, unitPrice: 5900, priceKind: 'LIST' }],
    source: { kind: 'DIRECT' },
    paymentId: new Types.ObjectId().toHexString(),
    paidAt,
  });
  const grants = await stack.referral.db.collection('invite_reward_grants').find({ inviteeId: b.id }).toArray();
  expect(grants.map((g) => g._id).sort()).toEqual([`${b.id}:INVITEE:GRANTED`, `${b.id}:INVITER:GRANTED`]);
  for (const g of grants) await bus.publish('referral.reward.granted', g.outbox.envelope.data, { id: randomUUID() });
  await new Promise((r) => setTimeout(r, 1500));
  expect(rewardCoupons(await wallet(b))).toEqual(['AVAILABLE']);
  expect((await wallet(a)).points.balance).toBe(INVITER_POINTS);
  expect(await stack.referral.db.collection('invite_reward_grants').countDocuments({ inviteeId: b.id })).toBe(2);

  const funnel = await gql(
    url(),
    'query($m: ID!) { shareFunnel(memberId: $m) { shares registrations firstPaidOrders } }',
    { m: a.id },
    staff,
  );
  expect(funnel.data!.shareFunnel).toEqual({ shares: 1, registrations: 1, firstPaidOrders: 1 });

  await refundFully(b, orderId);
  const back = await rewardReaches(b.id, 'REVERSED');
  expect(back.reversedAt).toBeTruthy();
  await eventually(async () => (rewardCoupons(await wallet(b))[0] === 'REVOKED' ? true : null), 20_000);
  await eventually(async () => ((await wallet(a)).points.balance === 0 ? true : null), 20_000);
});

test('the daily cap refuses the third invitee with DAILY_CAP and says why; nothing is granted for it', async () => {
  await setCampaign({ capPerInviterPerDay: 2 });
  const a = await register();
  const code = await inviteCodeOf(a);
  const invitees = [await invitee(code, a), await invitee(code, a), await invitee(code, a)];
  for (const m of invitees) await buy(m);
  const statuses = await Promise.all(
    invitees.map((m) => eventually(async () => (await gql(url(), REWARD, { id: m.id }, m.headers)).data?.inviteReward ?? null, 30_000)),
  );
  expect(statuses.map((s) => s.status)).toEqual(['GRANTED', 'GRANTED', 'REFUSED']);
  expect(statuses[2]).toMatchObject({ rule: 'DAILY_CAP', reason: 'The inviter reached the cap of 2 invite rewards a day' });
  await eventually(async () => ((await wallet(a)).points.balance === 2 * INVITER_POINTS ? true : null), 20_000);
  expect(rewardCoupons(await wallet(invitees[2]!))).toEqual([]);
  await setCampaign();
});

test('VELOCITY holds the second registration within the hour (maxPerHour 1); staff see it for review and approve it: granted once', async () => {
  await setCampaign({ fraud: { velocity: { enabled: true, maxPerHour: 1 } } });
  const a = await register();
  const code = await inviteCodeOf(a);
  const [first, second] = [await invitee(code, a), await invitee(code, a)];
  await buy(first);
  await rewardReaches(first.id, 'GRANTED');
  await buy(second);
  const held = await rewardReaches(second.id, 'HELD');
  expect(held).toMatchObject({ rule: 'VELOCITY', reason: '2 registrations with this code within an hour (more than 1)' });
  const list = await gql(url(), '{ referralRewardsForReview(first: 50) { edges { node { id rule } } } }', {}, staff);
  expect(list.data!.referralRewardsForReview.edges.map((e: { node: unknown }) => e.node)).toContainEqual({
    id: second.id,
    rule: 'VELOCITY',
  });
  expect(errorCode(await gql(url(), '{ referralRewardsForReview { edges { node { id } } } }', {}, second.headers))).toBe('FORBIDDEN');
  expect(rewardCoupons(await wallet(second))).toEqual([]);

  const approve = 'mutation($id: ID!) { approveReferralReward(inviteeId: $id) { status } }';
  expect((await gql(url(), approve, { id: second.id }, staff)).data!.approveReferralReward.status).toBe('GRANTED');
  expect((await gql(url(), approve, { id: second.id }, staff)).data!.approveReferralReward.status).toBe('GRANTED');
  await eventually(async () => (rewardCoupons(await wallet(second)).length === 1 ? true : null), 20_000);
  await eventually(async () => ((await wallet(a)).points.balance === 2 * INVITER_POINTS ? true : null), 20_000);
  await setCampaign();
});

test('CYCLE (A invites B invites A) and SAME_PHONE hold the reward with their reason; a rejected one is never granted', async () => {
  const a = await register();
  const b = await invitee(await inviteCodeOf(a), a);
  // Registrations never produce a ring (a code exists only after its owner registered); this binds
  // A by B's code directly, as a registration replayed out of order would.
  expect((await stack.referral.service.bindInviter(a.id, await inviteCodeOf(b))).status).toBe('BOUND');
  await buy(a);
  const cycle = await rewardReaches(a.id, 'HELD');
  expect(cycle).toMatchObject({ rule: 'CYCLE', reason: `Invitations go round in a ring: ${a.id} → ${b.id} → ${a.id}` });

  // Membership keeps one account per phone; another account with C's keyed phone hash stands for one
  // erased and registered again.
  const c = await invitee(await inviteCodeOf(b), b);
  const phones = stack.referral.db.collection('invite_phones');
  const mine = await eventually(async () => phones.findOne({ _id: c.id as never }), 20_000);
  await phones.insertOne({ _id: new Types.ObjectId().toHexString() as never, phoneHash: mine.phoneHash, at: new Date() });
  await buy(c);
  const same = await rewardReaches(c.id, 'HELD');
  expect(same).toMatchObject({ rule: 'SAME_PHONE', reason: 'The same phone is on 1 other account' });
  const rejected = await gql(
    url(),
    'mutation($id: ID!) { rejectReferralReward(inviteeId: $id, note: "同一手机号") { status } }',
    { id: c.id },
    staff,
  );
  expect(rejected.data!.rejectReferralReward.status).toBe('REJECTED');
  const again = await gql(url(), 'mutation($id: ID!) { approveReferralReward(inviteeId: $id) { status } }', { id: c.id }, staff);
  expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'ALREADY_REVIEWED' });
  await new Promise((r) => setTimeout(r, 1000));
  expect(rewardCoupons(await wallet(c))).toEqual([]);
});
