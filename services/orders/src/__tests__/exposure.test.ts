// What orders exposes, and to whom: the payment callback on a listener of its own, development
// shortcuts never in production, loopback unless told otherwise, and no signing secret in the repo.
import { readFileSync } from 'node:fs';
import { networkInterfaces } from 'node:os';
import { join } from 'node:path';
import { privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import * as configModule from '../config';
import { configSchema, loadServiceConfig } from '../config';
import { start, type RunningOrders } from '../main';
import { intentFor, placeOk, newMember, startHarness, type Harness } from './support';

const secret = 'x'.repeat(40);
const base = {
  INTERNAL_TOKEN_SECRET: 'i'.repeat(40),
  MONGO_URL: 'mongodb://127.0.0.1:27017',
  NATS_URL: 'nats://127.0.0.1:4222',
  // Required since orders keeps shipping addresses encrypted.
  PII_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
};
const issues = (env: Record<string, string>) => {
  const r = configSchema.safeParse(env);
  return r.success ? [] : r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`);
};

describe('configuration', () => {
  test('there is no built-in payment secret: the test provider needs PAYMENT_TEST_SECRET in every environment', () => {
    for (const NODE_ENV of ['development', 'test', 'production']) {
      expect({ NODE_ENV, issues: issues({ ...base, NODE_ENV }) }).toEqual({
        NODE_ENV,
        issues: [expect.stringMatching(/^PAYMENT_TEST_SECRET: is required with PAYMENT_PROVIDER=test/)],
      });
      expect(issues({ ...base, NODE_ENV, PAYMENT_TEST_SECRET: secret })).toEqual([]);
    }
    expect(issues({ ...base, PAYMENT_TEST_SECRET: 'short' })).toEqual(['PAYMENT_TEST_SECRET: must be at least 32 characters']);
    // Nothing that could sign a payment is written in the source.
    expect(Object.keys(configModule)).not.toContain('DEV_PAYMENT_TEST_SECRET');
    expect(readFileSync(join(__dirname, '../config.ts'), 'utf8')).not.toMatch(/['"`][\w-]{32,}['"`]/);
  });

  test('processes listen on loopback unless HOST says otherwise; the callback listener needs a port of its own', () => {
    expect(configSchema.parse({ ...base, PAYMENT_TEST_SECRET: secret }).HOST).toBe('127.0.0.1');
    expect(issues({ ...base, PAYMENT_TEST_SECRET: secret, PORT: '4003', PAYMENT_CALLBACK_PORT: '4003' })).toEqual([
      'PAYMENT_CALLBACK_PORT: must differ from PORT (it is a listener of its own)',
    ]);
  });

  test('the unpaid caps default to what a shop would use and refuse nonsense', () => {
    expect(configSchema.parse({ ...base, PAYMENT_TEST_SECRET: secret })).toMatchObject({
      MAX_UNPAID_ORDERS_PER_MEMBER: 3,
      MAX_UNPAID_UNITS_PER_MEMBER: 30,
      MAX_UNPAID_FLASH_UNITS_PER_SKU: 5,
      PAYMENT_RECONCILE_AFTER_SECONDS: 60,
    });
    expect(issues({ ...base, PAYMENT_TEST_SECRET: secret, MAX_UNPAID_ORDERS_PER_MEMBER: '0' })).toHaveLength(1);
  });
});

describe('the payment callback listener', () => {
  let h: Harness;
  beforeAll(async () => {
    h = await startHarness({ env: { PAYMENT_CALLBACK_PORT: '0' } });
  });
  afterAll(() => h.stop());

  test('serves the provider callback and nothing else; the GraphQL port no longer serves it', async () => {
    const port = h.svc.callbackPort!;
    expect(port).toEqual(expect.any(Number));
    expect(port).not.toBe(h.svc.port);
    const at = (p: number, path: string, init: RequestInit = {}) => fetch(`http://127.0.0.1:${p}${path}`, init);
    const post = { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"query":"{ __typename }"}' };

    // The test provider calls back on the listener by default: a payment goes through.
    const tea = await h.seed('ON_SALE', [{ price: 16800, stock: 10 }]);
    const m = newMember();
    const order = await placeOk(h, m, [{ skuId: tea.skus[0]!.id, quantity: 1 }]);
    const [delivery] = await h.svc.payments.pay((await intentFor(h, m, order.id)).id);
    expect(delivery).toEqual({ status: 200, body: JSON.stringify({ received: true, outcome: 'PAID' }) });
    expect((await at(port, '/payments/test/callback')).status).toBe(405);

    // Nothing else of orders answers there: not GraphQL (nor _entities), health or the dev routes.
    for (const path of ['/graphql', '/', '/healthz', '/readyz', '/payments/test/simulate', '/payments/test/callback/x']) {
      expect({ path, get: (await at(port, path)).status, post: (await at(port, path, post)).status }).toEqual({
        path,
        get: 404,
        post: 404,
      });
    }
    // And the callback is not served next to GraphQL: one way in for the provider.
    expect((await at(h.svc.port, '/payments/test/callback', post)).status).toBe(404);
    expect((await at(h.svc.port, '/healthz')).status).toBe(200);
  });
});

describe('in production', () => {
  let nats: InfraProcess;
  let svc: RunningOrders;
  beforeAll(async () => {
    nats = await privateNats();
    const env = serviceEnv('orders', nats.url, { NODE_ENV: 'production' });
    delete env.HOST;
    svc = await start(loadServiceConfig(env), { sweepers: false, adjusters: [], addresses: null });
  });
  afterAll(async () => {
    await svc.db.dropDatabase();
    await svc.stop();
    await nats.stop();
  });

  test("the test provider's simulate shortcut is never mounted, and the process listens on loopback when HOST is not set", async () => {
    const res = await fetch(`http://127.0.0.1:${svc.port}/payments/test/simulate`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ intentId: 'tpi_x' }),
    });
    expect(res.status).toBe(404);
    // The signed callback is what production has.
    expect((await fetch(`http://127.0.0.1:${svc.port}/payments/test/callback`)).status).toBe(405);

    const external = Object.values(networkInterfaces())
      .flat()
      .find((i) => i && !i.internal && i.family === 'IPv4');
    if (external) {
      await expect(fetch(`http://${external.address}:${svc.port}/healthz`)).rejects.toThrow();
    }
  });
});
