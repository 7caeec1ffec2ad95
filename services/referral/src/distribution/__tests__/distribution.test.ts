// Distribution (分销) against the real FerretDB and NATS: real orders.order.* events on the bus
// book, settle and reverse two-level commissions; bindings by link and by order; withdrawals held
// against the settled balance and paid once through the test payout provider.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { EventEnvelope } from '@flywheel/events';
import { loadServiceConfig } from '../../config';
import { start, type RunningReferral } from '../../main';
import type { TestPayoutProvider } from '../payouts';

jest.setTimeout(90_000);

let nats: InfraProcess;
let svc: RunningReferral;
let clock = new Date('2026-05-01T02:00:00Z');
const events: EventEnvelope[] = [];
const DAY = 86_400_000;

const P1 = new Types.ObjectId().toHexString();
const P2 = new Types.ObjectId().toHexString();
const SETTINGS = {
  mode: 'APPROVED',
  attribution: 'FIRST_TOUCH',
  bindingDays: 7,
  level1Bps: 1000,
  level2Bps: 500,
  productRates: [{ productId: P2, level1Bps: 2000, level2Bps: 800 }],
  minWithdrawal: 100,
};
// 2 × 9900 at 10% / 5% and 1 × 4999 at 20% / 8%, floor per line.
const LINES = [
  { skuId: 's1', productId: P1, quantity: 2, unitPrice: 9900, priceKind: 'LIST' as const },
  { skuId: 's2', productId: P2, quantity: 1, unitPrice: 4999, priceKind: 'LIST' as const },
];
const TOTAL = 24799;
const L1 = 1980 + 999;
const L2 = 990 + 399;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)), { sweepers: false, now: () => clock });
  for (const s of ['referral.commission.booked', 'referral.commission.settled', 'referral.commission.reversed'] as const) {
    await svc.bus.consume(s, async (env) => {
      events.push(env);
    });
  }
  const set = await call(SET, { i: { ...SETTINGS, expectedVersion: 0 } }, staff());
  expect(set.errors).toBeUndefined();
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown>, viewer: ReturnType<typeof staff> | null) =>
  gql(svc.url, query, variables, asGateway('referral', viewer));
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const reason = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.reason;
const payouts = () => svc.modules.distribution.payouts as TestPayoutProvider;

const SET =
  'mutation($i: SetDistributionSettingsInput!) { setDistributionSettings(input: $i) { version mode level1Bps productRates { productId } } }';
const BIND = 'mutation($c: String!) { bindDistributor(code: $c) { outcome distributor { id } expiresAt } }';
const COMMISSIONS = `query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { commissions { pending settled withdrawn
  entries(first: 20) { edges { node { kind amount orderId level pending settled withdrawn shortfall } } } } } } }`;
const ORDER =
  'query($o: ID!) { orderCommissions(orderId: $o) { refusal buyer { id } levels { level member { id } booked reversed settled } } }';
const REQUEST = 'mutation($i: RequestWithdrawalInput!) { requestWithdrawal(input: $i) { id amount status } }';
const APPROVE = 'mutation($id: ID!) { approveWithdrawal(id: $id) { id status providerPayoutId lastError } }';
const REJECT = 'mutation($id: ID!) { rejectWithdrawal(id: $id, reason: "资料不全") { id status reason } }';

/** A member registered (optionally with an inviter's code): their invite code. */
async function register(memberId: string, invitedByCode?: string): Promise<string> {
  await svc.bus.publish('membership.member.registered', {
    memberId,
    registeredAt: clock.toISOString(),
    ...(invitedByCode ? { invitedByCode } : {}),
  });
  const doc = await eventually(() => svc.db.collection('invite_codes').findOne({ memberId }));
  if (invitedByCode) await eventually(() => svc.db.collection('invite_bindings').findOne({ _id: memberId as never }));
  return doc.code as string;
}

async function distributor(memberId: string, invitedByCode?: string): Promise<string> {
  const c = await register(memberId, invitedByCode);
  expect(
    (await call('mutation($m: ID!) { approveDistributor(memberId: $m) { active } }', { m: memberId }, staff())).data!.approveDistributor
      .active,
  ).toBe(true);
  return c;
}

async function pay(buyerId: string, source: { kind: 'DIRECT' } | { kind: 'REFERRAL'; code: string } = { kind: 'DIRECT' }) {
  const orderId = oid();
  await svc.bus.publish('orders.order.paid', {
    orderId,
    memberId: buyerId,
    total: TOTAL,
    currency: 'CNY',
    lines: LINES,
    source,
    paymentId: randomUUID(),
    paidAt: clock.toISOString(),
  });
  await eventually(() => svc.db.collection('distribution_orders').findOne({ _id: orderId as never }));
  return orderId;
}
const complete = (orderId: string, memberId: string) =>
  svc.bus.publish('orders.order.completed', { orderId, memberId, total: TOTAL, completedAt: clock.toISOString() });
const refund = (orderId: string, memberId: string, amount: number, refundId = randomUUID()) =>
  svc.bus.publish('orders.order.refunded', {
    orderId,
    memberId,
    refundId,
    amount,
    currency: 'CNY',
    restock: [],
    refundedAt: clock.toISOString(),
  });

async function ledger(memberId: string) {
  const res = await call(COMMISSIONS, { r: [{ __typename: 'Member', id: memberId }] }, staff());
  expect(res.errors).toBeUndefined();
  return res.data!._entities[0].commissions;
}
const balances = async (memberId: string) => {
  const { pending, settled, withdrawn } = await ledger(memberId);
  return { pending, settled, withdrawn };
};
const waitFor = (memberId: string, want: { pending: number; settled: number; withdrawn: number }) =>
  eventually(async () => {
    const b = await balances(memberId);
    return JSON.stringify(b) === JSON.stringify(want) ? b : null;
  }, 15_000);

test('two levels booked PENDING → settled on completion → a partial refund after settlement claws back pro rata; replays change nothing', async () => {
  const [a, b, c] = [oid(), oid(), oid()];
  const codeA = await distributor(a);
  const codeB = await distributor(b, codeA);
  await register(c);
  const bound = await call(BIND, { c: codeB.toLowerCase() }, customer(c));
  expect(bound.data!.bindDistributor).toMatchObject({
    outcome: 'BOUND',
    distributor: { id: b },
    expiresAt: new Date(clock.getTime() + 7 * DAY).toISOString(),
  });

  const orderId = await pay(c);
  await waitFor(b, { pending: L1, settled: 0, withdrawn: 0 });
  await waitFor(a, { pending: L2, settled: 0, withdrawn: 0 });
  const decided = (await call(ORDER, { o: orderId }, staff())).data!.orderCommissions;
  expect(decided).toEqual({
    refusal: null,
    buyer: { id: c },
    levels: [
      { level: 1, member: { id: b }, booked: L1, reversed: 0, settled: false },
      { level: 2, member: { id: a }, booked: L2, reversed: 0, settled: false },
    ],
  });

  await complete(orderId, c);
  await waitFor(b, { pending: 0, settled: L1, withdrawn: 0 });
  await waitFor(a, { pending: 0, settled: L2, withdrawn: 0 });

  const refundId = randomUUID();
  await refund(orderId, c, 9900, refundId);
  // floor(2979 × 9900 / 24799) = 1189; floor(1389 × 9900 / 24799) = 554
  await waitFor(b, { pending: 0, settled: L1 - 1189, withdrawn: 0 });
  await waitFor(a, { pending: 0, settled: L2 - 554, withdrawn: 0 });

  // Redeliveries (same event ids are deduplicated by the stream; these are new envelopes of the same facts).
  await svc.bus.publish('orders.order.paid', {
    orderId,
    memberId: c,
    total: TOTAL,
    currency: 'CNY',
    lines: LINES,
    source: { kind: 'DIRECT' },
    paymentId: randomUUID(),
    paidAt: clock.toISOString(),
  });
  await complete(orderId, c);
  await refund(orderId, c, 9900, refundId);
  await svc.modules.distribution.commissions.orderRefunded({
    orderId,
    memberId: c,
    refundId,
    amount: 9900,
    currency: 'CNY',
    restock: [],
    refundedAt: clock.toISOString(),
  });
  await new Promise((r) => setTimeout(r, 500));
  expect(await balances(b)).toEqual({ pending: 0, settled: L1 - 1189, withdrawn: 0 });
  const entries = (await ledger(b)).entries.edges.map((e: { node: { kind: string; amount: number } }) => [e.node.kind, e.node.amount]);
  expect(entries).toEqual([
    ['REVERSE', 1189],
    ['SETTLE', L1],
    ['BOOK', L1],
  ]);
  const mine = events
    .filter((e) => (e.data as { orderId?: string }).orderId === orderId)
    .map((e) => `${e.type}:${(e.data as { level: number }).level}`);
  await eventually(async () => events.filter((e) => (e.data as { orderId?: string }).orderId === orderId).length === 6);
  expect(new Set(mine).size).toBe(mine.length);
  const reversed = events.find(
    (e) => e.type === 'referral.commission.reversed' && (e.data as { distributorId: string }).distributorId === a,
  );
  expect(reversed?.data).toMatchObject({ orderId, level: 2, amount: 554, afterSettlement: true, refundId });
});

test('refunds before settlement come out of pending; a full refund reverses exactly what was booked, never more', async () => {
  const [d, buyer] = [oid(), oid()];
  const codeD = await distributor(d);
  await register(buyer);
  const orderId = await pay(buyer, { kind: 'REFERRAL', code: codeD });
  await waitFor(d, { pending: L1, settled: 0, withdrawn: 0 });
  await Promise.all([refund(orderId, buyer, 9900), refund(orderId, buyer, 14899), refund(orderId, buyer, 5000)]);
  await waitFor(d, { pending: 0, settled: 0, withdrawn: 0 });
  await complete(orderId, buyer);
  await eventually(async () => (await svc.db.collection('order_commissions').countDocuments({ orderId, kind: 'SETTLE' })) === 1);
  expect(await balances(d)).toEqual({ pending: 0, settled: 0, withdrawn: 0 });
});

test("self-purchase through one's own link: refused SELF_REFERRAL, no commission; binding to one's own code is BAD_USER_INPUT", async () => {
  const [a, b] = [oid(), oid()];
  const codeA = await distributor(a);
  const codeB = await distributor(b, codeA);
  const self = await call(BIND, { c: codeB }, customer(b));
  expect([code(self), reason(self)]).toEqual(['BAD_USER_INPUT', 'SELF_REFERRAL']);
  const orderId = await pay(b, { kind: 'REFERRAL', code: codeB });
  expect((await call(ORDER, { o: orderId }, staff())).data!.orderCommissions).toMatchObject({ refusal: 'SELF_REFERRAL', levels: [] });
  expect(await balances(b)).toEqual({ pending: 0, settled: 0, withdrawn: 0 });
  expect(await balances(a)).toEqual({ pending: 0, settled: 0, withdrawn: 0 });
  expect(await svc.db.collection('distribution_bindings').countDocuments({ accountId: b })).toBe(0);
});

test('FIRST_TOUCH keeps the first link within its window; after it the next link binds; not a distributor is CONFLICT', async () => {
  const [d1, d2, plain, buyer] = [oid(), oid(), oid(), oid()];
  const [c1, c2, cPlain] = [await distributor(d1), await distributor(d2), await register(plain)];
  await register(buyer);
  expect((await call(BIND, { c: c1 }, customer(buyer))).data!.bindDistributor.outcome).toBe('BOUND');
  expect((await call(BIND, { c: c2 }, customer(buyer))).data!.bindDistributor).toMatchObject({ outcome: 'KEPT', distributor: { id: d1 } });
  const notOne = await call(BIND, { c: cPlain }, customer(buyer));
  expect([code(notOne), reason(notOne)]).toEqual(['CONFLICT', 'NOT_A_DISTRIBUTOR']);
  expect(code(await call(BIND, { c: 'ZZZZZZZZ' }, customer(buyer)))).toBe('NOT_FOUND');
  expect(code(await call(BIND, { c: c1 }, null))).toBe('UNAUTHENTICATED');
  clock = new Date(clock.getTime() + 8 * DAY);
  expect((await call(BIND, { c: c2 }, customer(buyer))).data!.bindDistributor).toMatchObject({ outcome: 'BOUND', distributor: { id: d2 } });
});

test('withdrawals: two racing requests cannot overdraw; approve pays once (a failed payout is retried by the sweep); reject releases; a clawback after payout is a shortfall', async () => {
  const [d, buyer] = [oid(), oid()];
  const codeD = await distributor(d);
  await register(buyer);
  const orderId = await pay(buyer, { kind: 'REFERRAL', code: codeD });
  await complete(orderId, buyer);
  await waitFor(d, { pending: 0, settled: L1, withdrawn: 0 });

  const below = await call(REQUEST, { i: { amount: 99, idempotencyKey: 'k0' } }, customer(d));
  expect([code(below), reason(below)]).toEqual(['BAD_USER_INPUT', 'BELOW_MINIMUM']);
  const racing = await Promise.all(
    [2000, 2000].map((amount, i) => call(REQUEST, { i: { amount, idempotencyKey: `race-${i}` } }, customer(d))),
  );
  expect(racing.filter((r) => !r.errors)).toHaveLength(1);
  expect(racing.map(reason).filter(Boolean)).toEqual(['INSUFFICIENT_BALANCE']);
  expect(await svc.db.collection('withdrawals').countDocuments({ memberId: d })).toBe(1);
  const w = racing.find((r) => !r.errors)!.data!.requestWithdrawal;
  expect(w).toMatchObject({ amount: 2000, status: 'REQUESTED' });
  expect(await balances(d)).toEqual({ pending: 0, settled: L1 - 2000, withdrawn: 2000 });

  expect(code(await call(APPROVE, { id: w.id }, customer(d)))).toBe('FORBIDDEN');
  payouts().failNext(1);
  expect((await call(APPROVE, { id: w.id }, staff())).data!.approveWithdrawal).toMatchObject({
    status: 'APPROVED',
    providerPayoutId: null,
  });
  expect((await svc.sweep()).distribution).toEqual({ payouts: 1 });
  const replay = await call(APPROVE, { id: w.id }, staff());
  expect(replay.data!.approveWithdrawal).toMatchObject({ status: 'PAID', lastError: null });
  expect(
    payouts()
      .payouts()
      .filter((p) => p.payoutId === w.id),
  ).toEqual([expect.objectContaining({ memberId: d, amount: 2000 })]);
  expect(code(await call(REJECT, { id: w.id }, staff()))).toBe('CONFLICT');

  // Another request, rejected: the hold returns.
  const second = (await call(REQUEST, { i: { amount: 500, idempotencyKey: 'second' } }, customer(d))).data!.requestWithdrawal;
  expect((await call(REQUEST, { i: { amount: 700, idempotencyKey: 'second' } }, customer(d))).data!.requestWithdrawal.id).toBe(second.id);
  expect((await call(REJECT, { id: second.id }, staff())).data!.rejectWithdrawal).toMatchObject({ status: 'REJECTED', reason: '资料不全' });
  expect(await balances(d)).toEqual({ pending: 0, settled: L1 - 2000, withdrawn: 2000 });

  // The whole order refunded after 2000 were paid out: settled goes negative, the shortfall recorded.
  await refund(orderId, buyer, TOTAL);
  await waitFor(d, { pending: 0, settled: -2000, withdrawn: 2000 });
  const last = (await ledger(d)).entries.edges[0].node;
  expect(last).toMatchObject({ kind: 'REVERSE', amount: L1, settled: -2000, shortfall: 2000 });
});

test('bad input is refused with codes and writes nothing', async () => {
  const before = await svc.db.collection('distribution_settings').countDocuments();
  const bad = [
    { ...SETTINGS, level1Bps: 5001 },
    { ...SETTINGS, bindingDays: 0 },
    { ...SETTINGS, productRates: [{ productId: 'nope', level1Bps: 1, level2Bps: 1 }] },
    { ...SETTINGS, productRates: [SETTINGS.productRates[0], SETTINGS.productRates[0]] },
    { ...SETTINGS, minWithdrawal: 0 },
  ];
  for (const i of bad) expect(code(await call(SET, { i: { ...i, expectedVersion: 1 } }, staff()))).toBe('BAD_USER_INPUT');
  expect(code(await call(SET, { i: { ...SETTINGS, expectedVersion: 1 } }, customer(oid())))).toBe('FORBIDDEN');
  const stale = await call(SET, { i: { ...SETTINGS, expectedVersion: 0 } }, staff());
  expect([code(stale), reason(stale)]).toEqual(['CONFLICT', 'STALE_VERSION']);
  expect(await svc.db.collection('distribution_settings').countDocuments()).toBe(before);
  expect(code(await call(REQUEST, { i: { amount: 500, idempotencyKey: '' } }, customer(oid())))).toBe('BAD_USER_INPUT');
  expect(code(await call(APPROVE, { id: 'x' }, staff()))).toBe('BAD_USER_INPUT');
  expect(code(await call(APPROVE, { id: oid() }, staff()))).toBe('NOT_FOUND');
  expect(code(await call('{ distributionReport(from: "2026-01-02T00:00:00Z", to: "2026-01-01T00:00:00Z") { booked } }', {}, staff()))).toBe(
    'BAD_USER_INPUT',
  );
});

test('team and report: level-1 and level-2 counts and net sales; staff report totals by distributor', async () => {
  clock = new Date(clock.getTime() + DAY);
  const [a, b, c] = [oid(), oid(), oid()];
  const codeA = await distributor(a);
  const codeB = await distributor(b, codeA);
  await register(c);
  const from = clock;
  const orderId = await pay(c, { kind: 'REFERRAL', code: codeB });
  await waitFor(a, { pending: L2, settled: 0, withdrawn: 0 });
  const TEAM =
    'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { distributorTeam { level1Count level2Count level1Sales level2Sales } } } }';
  const team = async (id: string, viewer: ReturnType<typeof staff>) => await call(TEAM, { r: [{ __typename: 'Member', id }] }, viewer);
  expect((await team(a, customer(a))).errors).toBeUndefined();
  expect((await team(a, customer(a))).data!._entities[0].distributorTeam).toEqual({
    level1Count: 0,
    level2Count: 1,
    level1Sales: 0,
    level2Sales: TOTAL,
  });
  expect((await team(b, staff())).data!._entities[0].distributorTeam).toEqual({
    level1Count: 1,
    level2Count: 0,
    level1Sales: TOTAL,
    level2Sales: 0,
  });
  expect(code(await team(b, customer(c)))).toBe('FORBIDDEN');
  const report = await call(
    'query($f: DateTime!, $t: DateTime!) { distributionReport(from: $f, to: $t, top: 1) { booked distributors top { member { id } booked orders } } }',
    { f: from.toISOString(), t: new Date(clock.getTime() + 1000).toISOString() },
    staff(),
  );
  expect(report.data!.distributionReport).toEqual({
    booked: L1 + L2,
    distributors: 2,
    top: [{ member: { id: b }, booked: L1, orders: 1 }],
  });
  expect(orderId).toBeTruthy();
});
