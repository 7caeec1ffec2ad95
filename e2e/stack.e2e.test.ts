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

test('SIGTERM stops every process cleanly (exit code 0)', async () => {
  const exits = stack.processes.map((p) => new Promise<number | null>((resolve) => p.proc.once('exit', (code) => resolve(code))));
  await stack.stop();
  expect(await Promise.all(exits)).toEqual(stack.processes.map(() => 0));
});
