// Distribution (分销) through the gateway (real subgraphs, FerretDB and NATS): A recruits B (B
// registers with A's invite code; staff approve both as distributors), B's link binds buyer C, C's
// paid order books level 1 (B) and level 2 (A) PENDING in exact fen → completion settles → a partial
// refund after settlement claws back pro rata from both → B withdraws, staff approve, paid once.
// Self-purchase through one's own link earns nothing (SELF_REFERRAL); bad input writes nothing.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import {
  asStaff,
  bearer,
  createTestProduct,
  errorCode,
  errorReason,
  signUp,
  startInProcessStack,
  type InProcessStack,
} from './in-process-stack';
import type { TestPayoutProvider } from '../../../services/referral/src/distribution';

jest.setTimeout(240_000);

let stack: InProcessStack;
const staff = asStaff();
const url = () => stack.gateway.url;
type Member = Awaited<ReturnType<typeof signUp>>;

const SETTINGS = 'mutation($i: SetDistributionSettingsInput!) { setDistributionSettings(input: $i) { version } }';
const APPROVE_D = 'mutation($m: ID!) { approveDistributor(memberId: $m) { status active } }';
const BIND = 'mutation($c: String!) { bindDistributor(code: $c) { outcome distributor { id } } }';
const MINE = '{ me { commissions { pending settled withdrawn } } }';
const ORDER_COMMISSIONS =
  'query($o: ID!) { orderCommissions(orderId: $o) { refusal levels { level member { id } booked reversed settled } } }';
const REQUEST = 'mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { id status amount } }';
const APPROVE_W = 'mutation($id: ID!) { approveWithdrawal(id: $id) { status providerPayoutId } }';

let productId: string;
let skuId: string;

beforeAll(async () => {
  stack = await startInProcessStack();
  ({ productId, skuId } = await createTestProduct(
    url(),
    staff,
    { price: 9900, stock: 50, weightGrams: 300 },
    `分销商品 ${randomUUID().slice(0, 6)}`,
  ));
  const set = await gql(
    url(),
    SETTINGS,
    {
      i: {
        mode: 'APPROVED',
        attribution: 'FIRST_TOUCH',
        bindingDays: 30,
        level1Bps: 1000,
        level2Bps: 500,
        productRates: [{ productId, level1Bps: 1500, level2Bps: 800 }],
        minWithdrawal: 1000,
        expectedVersion: 0,
      },
    },
    staff,
  );
  expect(set.errors).toBeUndefined();
}, 120_000);
afterAll(async () => {
  await stack?.stop();
});

/** Signs up through the gateway with an inviter's code (the link a distributor recruits with). */
async function signUpInvited(inviteCode: string): Promise<Member> {
  const phone = `138${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  const sent = await gql(url(), 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const login = await gql(
    url(),
    'mutation($p: String!, $c: String!, $i: String) { login(input: { phone: $p, code: $c, inviteCode: $i }) { accessToken session { member { id } } } }',
    { p: phone, c: sent.data!.requestLoginCode.devCode, i: inviteCode },
  );
  expect(login.errors).toBeUndefined();
  const token = login.data!.login.accessToken as string;
  return { id: login.data!.login.session.member.id as string, token, headers: bearer(token) };
}

const inviteCodeOf = (m: Member) =>
  eventually(
    async () => (await gql(url(), '{ me { inviteCode { code } } }', {}, m.headers)).data?.me?.inviteCode?.code as string | undefined,
    20_000,
  );

const commissionsOf = async (m: Member) => (await gql(url(), MINE, {}, m.headers)).data!.me.commissions;
const commissionsReach = (m: Member, want: { pending: number; settled: number; withdrawn: number }) =>
  eventually(async () => {
    const c = await commissionsOf(m);
    return JSON.stringify(c) === JSON.stringify(want) ? c : null;
  }, 30_000);

async function buy(
  buyer: Member,
  quantity: number,
  source?: { kind: 'REFERRAL'; refId: string },
): Promise<{ orderId: string; total: number }> {
  const placed = await gql(
    url(),
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } } }',
    { i: { idempotencyKey: randomUUID(), lines: [{ skuId, quantity }], noCoupon: true, ...(source ? { source } : {}) } },
    buyer.headers,
  );
  expect(placed.errors).toBeUndefined();
  const orderId = placed.data!.placeOrder.id as string;
  const intent = await gql(url(), 'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id } }', { id: orderId }, buyer.headers);
  expect((await stack.orders.payments.pay(intent.data!.payOrder.id))[0]?.status).toBe(200);
  return { orderId, total: placed.data!.placeOrder.total.amount as number };
}

async function deliverAndComplete(buyer: Member, orderId: string) {
  const shipped = await gql(
    url(),
    'mutation($i: ShipOrderInput!) { shipOrder(input: $i) { status } }',
    { i: { orderId, carrier: 'SF', trackingNumber: `SF${Date.now()}` } },
    staff,
  );
  expect(shipped.errors).toBeUndefined();
  const delivered = await gql(
    url(),
    'mutation($id: ID!) { confirmDelivery(input: { orderId: $id }) { status } }',
    { id: orderId },
    buyer.headers,
  );
  expect(delivered.errors).toBeUndefined();
  const completed = await gql(
    url(),
    'mutation($id: ID!) { completeOrder(input: { orderId: $id }) { status } }',
    { id: orderId },
    buyer.headers,
  );
  expect(completed.data!.completeOrder.status).toBe('COMPLETED');
}

async function refundOne(buyer: Member, orderId: string): Promise<number> {
  const asked = await gql(
    url(),
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id amount { amount } } }',
    { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '少了一件', idempotencyKey: randomUUID() } },
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
  return asked.data!.requestAfterSale.amount.amount as number;
}

test('two-level commission booked → settled → partial refund claws back pro rata → withdrawal paid once', async () => {
  const a = await signUp(url());
  const b = await signUpInvited(await inviteCodeOf(a));
  for (const m of [a, b])
    expect((await gql(url(), APPROVE_D, { m: m.id }, staff)).data!.approveDistributor).toEqual({ status: 'APPROVED', active: true });
  const c = await signUp(url(), { address: true });
  const bound = await gql(url(), BIND, { c: await inviteCodeOf(b) }, c.headers);
  expect(bound.data!.bindDistributor).toEqual({ outcome: 'BOUND', distributor: { id: b.id } });

  // 2 × 9900 at the product's 15% / 8% (floor per line; shipping earns nothing).
  const { orderId, total } = await buy(c, 2);
  const [l1, l2] = [2970, 1584];
  await commissionsReach(b, { pending: l1, settled: 0, withdrawn: 0 });
  await commissionsReach(a, { pending: l2, settled: 0, withdrawn: 0 });
  expect((await gql(url(), ORDER_COMMISSIONS, { o: orderId }, staff)).data!.orderCommissions).toEqual({
    refusal: null,
    levels: [
      { level: 1, member: { id: b.id }, booked: l1, reversed: 0, settled: false },
      { level: 2, member: { id: a.id }, booked: l2, reversed: 0, settled: false },
    ],
  });
  await deliverAndComplete(c, orderId);
  await commissionsReach(b, { pending: 0, settled: l1, withdrawn: 0 });
  await commissionsReach(a, { pending: 0, settled: l2, withdrawn: 0 });

  const refunded = await refundOne(c, orderId);
  const back1 = Math.floor((l1 * refunded) / total);
  const back2 = Math.floor((l2 * refunded) / total);
  expect(back1).toBeGreaterThan(0);
  await commissionsReach(b, { pending: 0, settled: l1 - back1, withdrawn: 0 });
  await commissionsReach(a, { pending: 0, settled: l2 - back2, withdrawn: 0 });

  const below = await gql(url(), REQUEST, { i: { amount: 999, idempotencyKey: 'w-below' } }, b.headers);
  expect([errorCode(below), errorReason(below)]).toEqual(['BAD_USER_INPUT', 'BELOW_MINIMUM']);
  const over = await gql(url(), REQUEST, { i: { amount: l1, idempotencyKey: 'w-over' } }, b.headers);
  expect([errorCode(over), errorReason(over)]).toEqual(['CONFLICT', 'INSUFFICIENT_BALANCE']);
  const asked = await gql(url(), REQUEST, { i: { amount: 1000, idempotencyKey: 'w-1' } }, b.headers);
  expect(asked.data!.requestWithdrawal).toMatchObject({ status: 'REQUESTED', amount: 1000 });
  const id = asked.data!.requestWithdrawal.id as string;
  expect(await commissionsOf(b)).toEqual({ pending: 0, settled: l1 - back1 - 1000, withdrawn: 1000 });
  expect(errorCode(await gql(url(), APPROVE_W, { id }, b.headers))).toBe('FORBIDDEN');
  const paid = await gql(url(), APPROVE_W, { id }, staff);
  expect(paid.data!.approveWithdrawal.status).toBe('PAID');
  const replay = await gql(url(), APPROVE_W, { id }, staff);
  expect(replay.data!.approveWithdrawal).toEqual(paid.data!.approveWithdrawal);
  const provider = stack.referral.modules.distribution.payouts as TestPayoutProvider;
  expect(provider.payouts().filter((p) => p.payoutId === id)).toEqual([expect.objectContaining({ memberId: b.id, amount: 1000 })]);
  expect(provider.calls).toBe(1);
  await stack.referral.sweep();
  expect(provider.calls).toBe(1);
});

test("self-purchase through one's own link: no commission, refused with reason SELF_REFERRAL", async () => {
  const d = await signUp(url(), { address: true });
  expect((await gql(url(), APPROVE_D, { m: d.id }, staff)).data!.approveDistributor.active).toBe(true);
  const code = await inviteCodeOf(d);
  const self = await gql(url(), BIND, { c: code }, d.headers);
  expect([errorCode(self), errorReason(self)]).toEqual(['BAD_USER_INPUT', 'SELF_REFERRAL']);
  const { orderId } = await buy(d, 1, { kind: 'REFERRAL', refId: code });
  const decided = await eventually(async () => (await gql(url(), ORDER_COMMISSIONS, { o: orderId }, staff)).data?.orderCommissions, 30_000);
  expect(decided).toEqual({ refusal: 'SELF_REFERRAL', levels: [] });
  expect(await commissionsOf(d)).toEqual({ pending: 0, settled: 0, withdrawn: 0 });
});

test('bad input is refused with codes and nothing is written', async () => {
  const m = await signUp(url());
  const base = {
    mode: 'EVERYONE',
    attribution: 'LAST_TOUCH',
    bindingDays: 30,
    level1Bps: 1000,
    level2Bps: 500,
    minWithdrawal: 1000,
    expectedVersion: 1,
  };
  for (const i of [
    { ...base, level1Bps: -1 },
    { ...base, bindingDays: 366 },
    { ...base, productRates: [{ productId: 'x', level1Bps: 1, level2Bps: 1 }] },
  ]) {
    expect(errorCode(await gql(url(), SETTINGS, { i }, staff))).toBe('BAD_USER_INPUT');
  }
  expect(errorCode(await gql(url(), SETTINGS, { i: base }, m.headers))).toBe('FORBIDDEN');
  expect((await gql(url(), '{ distributionSettings { version mode } }', {}, staff)).data!.distributionSettings).toEqual({
    version: 1,
    mode: 'APPROVED',
  });
  expect(errorCode(await gql(url(), BIND, { c: 'ZZZZZZZZ' }, m.headers))).toBe('NOT_FOUND');
  expect(errorCode(await gql(url(), BIND, { c: 'ZZZZZZZZ' }, {}))).toBe('UNAUTHENTICATED');
  expect(errorCode(await gql(url(), REQUEST, { i: { amount: 5000, idempotencyKey: 'k' } }, m.headers))).toBe('CONFLICT');
  expect(errorCode(await gql(url(), APPROVE_D, { m: 'not-an-id' }, staff))).toBe('BAD_USER_INPUT');
  expect(await commissionsOf(m)).toEqual({ pending: 0, settled: 0, withdrawn: 0 });
});
