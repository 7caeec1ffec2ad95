// End to end: the whole stack booted as in production — seven subgraph processes and the
// gateway process from their built output — on the real FerretDB and a real NATS, driven only
// through the gateway's HTTP port as a frontend would.
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import { join } from 'node:path';
import {
  eventually,
  freePort,
  gql,
  mongoUrl,
  privateNats,
  startStack,
  STACK_SERVICES,
  type InfraProcess,
  type RunningStack,
} from '@flywheel/testing';

jest.setTimeout(120_000);

let nats: InfraProcess;
let stack: RunningStack;
let collector: Server;

/** Spans the processes export, as an OpenTelemetry collector would receive them (OTLP/HTTP JSON). */
interface CollectedSpan {
  service: string;
  traceId: string;
  name: string;
}
const spans: CollectedSpan[] = [];
type OtlpJson = {
  resourceSpans?: {
    resource?: { attributes?: { key: string; value: { stringValue?: string } }[] };
    scopeSpans?: { spans?: { traceId: string; name: string }[] }[];
  }[];
};
const STAFF = { email: 'ops@e2e.test', password: 'e2e-staff-password-123' };

beforeAll(async () => {
  nats = await privateNats();
  collector = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      for (const rs of (JSON.parse(body) as OtlpJson).resourceSpans ?? []) {
        const service = rs.resource?.attributes?.find((a) => a.key === 'service.name')?.value.stringValue ?? '?';
        for (const ss of rs.scopeSpans ?? []) for (const sp of ss.spans ?? []) spans.push({ service, traceId: sp.traceId, name: sp.name });
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  const collectorPort = await freePort();
  await new Promise<void>((r) => collector.listen(collectorPort, '127.0.0.1', r));
  const ports: Record<string, number> = { gateway: await freePort() };
  for (const s of STACK_SERVICES) ports[s] = await freePort();
  stack = await startStack({
    env: {
      NODE_ENV: 'test',
      LOG_LEVEL: 'info',
      MONGO_URL: mongoUrl(),
      NATS_URL: nats.url,
      INTERNAL_TOKEN_SECRET: 'e2e-internal-secret-0123456789abcdef-xyz',
      AUTH_TOKEN_SECRET: 'e2e-auth-secret-0123456789abcdef-xyz-abc',
      PII_ENCRYPTION_KEY: Buffer.alloc(32, 3).toString('base64'),
      PII_LOOKUP_KEY: Buffer.alloc(32, 5).toString('base64'),
      DEV_LOGIN_CODES: 'true',
      BOOTSTRAP_STAFF_EMAIL: STAFF.email,
      BOOTSTRAP_STAFF_PASSWORD: STAFF.password,
      OTEL_EXPORTER_OTLP_ENDPOINT: `http://127.0.0.1:${collectorPort}`,
      OTEL_BSP_SCHEDULE_DELAY: '200',
    },
    ports,
    logDir: join(process.env.FLYWHEEL_TEST_DIR ?? '/tmp', 'e2e-logs'),
  });
});

afterAll(async () => {
  await stack?.stop();
  await nats?.stop();
  collector?.close();
});

const bearer = (t: string) => ({ authorization: `Bearer ${t}` });

test('browse → staff stocks the shop → member signs in → one query across subgraphs → order placed; registration travels over JetStream in one trace', async () => {
  const url = stack.gatewayUrl;

  // Staff signs in (bootstrap account) and puts a product on sale, all through the gateway.
  const staffLogin = await gql(
    url,
    'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { accessToken } }',
    {
      e: STAFF.email,
      p: STAFF.password,
    },
  );
  expect(staffLogin.errors).toBeUndefined();
  const staff = bearer(staffLogin.data!.staffLogin.accessToken);
  const cat = await gql(url, 'mutation { createCategory(input: { name: "E2E 类目" }) { id } }', {}, staff);
  const created = await gql(
    url,
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    {
      i: { name: 'E2E 燕麦', categoryId: cat.data!.createCategory.id, status: 'ON_SALE', skus: [{ name: '1kg', price: 4990, stock: 20 }] },
    },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const skuId = created.data!.createProduct.skus[0].id;

  // An anonymous visitor browses.
  const browse = await gql(url, '{ products(first: 5) { edges { node { name price { amount currency } } } } }');
  expect(browse.data!.products.edges).toEqual([{ node: { name: 'E2E 燕麦', price: { amount: 4990, currency: 'CNY' } } }]);

  // A member signs in with a phone code (first login registers).
  const phone = '13912345678';
  const code = (await gql(url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone })).data!
    .requestLoginCode.devCode;
  const traceId = randomBytes(16).toString('hex');
  const login = await gql(
    url,
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: code },
    // The client starts a trace; it must run gateway → membership → (outbox, NATS) → consumers.
    { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
  );
  expect(login.errors).toBeUndefined();
  const member = bearer(login.data!.login.accessToken);
  const memberId = login.data!.login.session.member.id;

  // membership.member.registered → (JetStream) → referral issues an invite code, community
  // adds the member to the welcome group; both visible through the gateway.
  const me = await eventually(async () => {
    const r = await gql(url, '{ me { id nickname phone inviteCode { code } groups { name } } }', {}, member);
    return r.data?.me?.inviteCode && r.data.me.groups.length ? r.data.me : null;
  }, 20_000);
  expect(me).toMatchObject({ id: memberId, phone: '139****5678', groups: [{ name: '新人福利群' }] });
  expect(me.inviteCode.code).toMatch(/^[A-Z0-9]{8}$/);

  // One trace spans the gateway, the subgraph, NATS and the consumers of the event.
  const traced = await eventually(async () => {
    const inTrace = spans.filter((sp) => sp.traceId === traceId);
    const services = new Set(inTrace.map((sp) => sp.service));
    return ['gateway', 'membership', 'referral', 'community'].every((svc) => services.has(svc)) ? inTrace : null;
  }, 15_000);
  expect(traced).toEqual(
    expect.arrayContaining([
      expect.objectContaining({ service: 'referral', name: 'consume membership.member.registered' }),
      expect.objectContaining({ service: 'community', name: 'consume membership.member.registered' }),
    ]),
  );

  // Checkout prices through catalog (NATS request/reply); the order shows under Member.orders.
  const placed = await gql(
    url,
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount } } }',
    { i: { lines: [{ skuId, quantity: 2 }], idempotencyKey: 'e2e-1' } },
    member,
  );
  expect(placed.data!.placeOrder).toMatchObject({ status: 'PENDING_PAYMENT', total: { amount: 9980 } });

  // One query spanning membership, referral, community, orders and catalog.
  const all = await gql(
    url,
    `{ me { nickname tier inviteCode { code } groups { name } orders(first: 5) { edges { node { id total { amount } lines { product { name } } } } } }
       products(first: 1) { edges { node { name } } } }`,
    {},
    member,
  );
  expect(all.errors).toBeUndefined();
  expect(all.data!.me.orders.edges).toEqual([
    { node: { id: placed.data!.placeOrder.id, total: { amount: 9980 }, lines: [{ product: { name: 'E2E 燕麦' } }] } },
  ]);
});

test('membership through the gateway: claim a coupon → checkout with coupon + points → pay → points and tier → refund → all reversed', async () => {
  const url = stack.gatewayUrl;
  const q = async (query: string, variables: Record<string, unknown>, headers: Record<string, string>) => {
    const res = await gql(url, query, variables, headers);
    expect(res.errors).toBeUndefined();
    return res.data!;
  };
  const staffToken = (
    await q(
      'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { accessToken } }',
      { e: STAFF.email, p: STAFF.password },
      {},
    )
  ).staffLogin.accessToken;
  const staff = bearer(staffToken);

  // Staff: a ¥1,200 product, a ¥10-off-above-¥50 coupon (quota 10).
  const product = await q(
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    { i: { name: 'E2E 会员礼盒', status: 'ON_SALE', skus: [{ name: '礼盒', price: 120_000, stock: 5 }] } },
    staff,
  );
  const skuId = product.createProduct.skus[0].id;
  const template = await q(
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '满50减10', kind: 'FIXED', amount: 1_000, threshold: 5_000, validDaysAfterClaim: 30, totalQuota: 10 } },
    staff,
  );

  // A member signs in, claims the coupon; staff grants 500 points.
  const phone = '13912340001';
  const code = (await q('mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone }, {})).requestLoginCode
    .devCode;
  const login = await q(
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: code },
    {},
  );
  const member = bearer(login.login.accessToken);
  const memberId = login.login.session.member.id;
  const coupon = await q(
    'mutation($t: ID!) { claimCoupon(input: { templateId: $t, idempotencyKey: "e2e-claim" }) { id state } }',
    { t: template.createCouponTemplate.id },
    member,
  );
  expect(coupon.claimCoupon.state).toBe('AVAILABLE');
  await q(
    'mutation($m: ID!) { grantPoints(input: { memberId: $m, points: 500, reason: "welcome", idempotencyKey: "e2e-welcome" }) { balance } }',
    { m: memberId },
    staff,
  );

  // The price before placing: the best coupon is found without naming it; too many points refused.
  const PREVIEW =
    'query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) { subtotal { amount } total { amount } adjustments { kind amount { amount } } } }';
  const preview = await q(PREVIEW, { i: { lines: [{ skuId, quantity: 1 }], points: 300 } }, member);
  expect(preview.checkoutPreview).toMatchObject({
    subtotal: { amount: 120_000 },
    total: { amount: 118_700 },
    adjustments: [
      { kind: 'COUPON', amount: { amount: -1_000 } },
      { kind: 'POINTS', amount: { amount: -300 } },
    ],
  });
  const greedy = await gql(url, PREVIEW, { i: { lines: [{ skuId, quantity: 1 }], points: 501 } }, member);
  expect(greedy.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');

  // Two checkouts racing for the one coupon: one order, one CONFLICT that holds no stock.
  const race = await Promise.all(
    ['e2e-race-a', 'e2e-race-b'].map((key) =>
      gql(
        url,
        'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }',
        { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: key, couponId: coupon.claimCoupon.id } },
        member,
      ),
    ),
  );
  const winner = race.find((r) => !r.errors)!;
  expect(race.filter((r) => r.errors?.[0]?.extensions?.code === 'CONFLICT')).toHaveLength(1);
  await q('mutation($o: ID!) { cancelOrder(input: { orderId: $o }) { status } }', { o: winner.data!.placeOrder.id }, member);
  // The loser released its unit at once; the cancelled winner's goes back by event.
  const STOCK = 'query($p: ID!) { product(id: $p) { skus { stock { available reserved } } } }';
  await eventually(async () => {
    const st = (await gql(url, STOCK, { p: product.createProduct.id }, staff)).data?.product.skus[0].stock;
    return st?.available === 5 && st.reserved === 0 ? st : null;
  }, 15_000);
  // Cancelling gave the coupon back (orders.order.cancelled → membership).
  await eventually(
    async () => ((await gql(url, '{ me { coupons { available } } }', {}, member)).data?.me.coupons.available === 1 ? true : null),
    15_000,
  );

  // Checkout with the coupon and 300 points: ¥1,200 − ¥10 − ¥3.
  const placed = await q(
    'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount } adjustments { kind amount { amount } label } } }',
    { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: 'e2e-member-1', couponId: coupon.claimCoupon.id, points: 300 } },
    member,
  );
  expect(placed.placeOrder).toMatchObject({
    status: 'PENDING_PAYMENT',
    total: { amount: 118_700 },
    adjustments: [
      { kind: 'COUPON', amount: { amount: -1_000 }, label: '满50减10' },
      { kind: 'POINTS', amount: { amount: -300 } },
    ],
  });
  const ME = '{ me { tier points { balance } tierStatus { tier growth retainedUntil } coupons { available locked used } } }';
  expect((await q(ME, {}, member)).me).toMatchObject({ points: { balance: 200 }, coupons: { available: 0, locked: 1 } });

  // Pay (the test provider charges and calls back): 1,187 points and growth, SILVER, coupon used.
  const orderId = placed.placeOrder.id;
  const intent = await q('mutation($o: ID!) { payOrder(input: { orderId: $o }) { id } }', { o: orderId }, member);
  const orders = stack.processes.find((p) => p.name === 'orders')!;
  const paid = await fetch(`http://127.0.0.1:${orders.port}/payments/test/simulate`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ intentId: intent.payOrder.id }),
  });
  expect(paid.status).toBe(200);
  const afterPay = await eventually(async () => {
    const me = (await gql(url, ME, {}, member)).data?.me;
    return me?.points.balance === 1_387 && me.tier === 'SILVER' && me.coupons.used === 1 ? me : null;
  }, 20_000);
  expect(afterPay.tierStatus).toMatchObject({ tier: 'SILVER', growth: 1_187, retainedUntil: null });

  // A full refund: the 300 points come back, the 1,187 earned go, the coupon is available again,
  // and the tier this order paid for is taken back (retention is for growth that ages out).
  const afterSale = await q(
    'mutation($i: RequestAfterSaleInput!) { requestAfterSale(input: $i) { id } }',
    { i: { orderId, kind: 'REFUND_ONLY', lines: [{ skuId, quantity: 1 }], reason: '不想要了', idempotencyKey: 'e2e-refund' } },
    member,
  );
  await q('mutation($a: ID!) { approveAfterSale(input: { afterSaleId: $a }) { id } }', { a: afterSale.requestAfterSale.id }, staff);
  const reversed = await eventually(async () => {
    const me = (await gql(url, ME, {}, member)).data?.me;
    return me?.points.balance === 500 && me.coupons.available === 1 && me.tierStatus.growth === 0 ? me : null;
  }, 30_000);
  expect(reversed).toMatchObject({
    tier: 'REGULAR',
    tierStatus: { tier: 'REGULAR', growth: 0, retainedUntil: null },
    coupons: { available: 1, locked: 0, used: 0 },
  });
});

test('SIGTERM stops every process cleanly (exit code 0)', async () => {
  const exits = stack.processes.map((p) => new Promise<number | null>((resolve) => p.proc.once('exit', (code) => resolve(code))));
  await stack.stop();
  expect(await Promise.all(exits)).toEqual(stack.processes.map(() => 0));
});
