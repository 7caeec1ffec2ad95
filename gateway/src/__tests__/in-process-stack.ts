// The seven real subgraphs started in this process on free ports, sharing one NATS, with the real
// gateway in front. Used by the gateway tests; the e2e test runs the same code as processes.
import { Types } from 'mongoose';
import { gql, privateNats, serviceEnv, TEST_AUTH_SECRET, TEST_INTERNAL_SECRET, type InfraProcess } from '@flywheel/testing';
import { signJwt, type RunningService } from '@flywheel/service-kit';
import * as content from '../../../services/content/src/main';
import * as contentConfig from '../../../services/content/src/config';
import * as catalog from '../../../services/catalog/src/main';
import * as catalogConfig from '../../../services/catalog/src/config';
import * as orders from '../../../services/orders/src/main';
import * as ordersConfig from '../../../services/orders/src/config';
import * as live from '../../../services/live/src/main';
import * as liveConfig from '../../../services/live/src/config';
import * as community from '../../../services/community/src/main';
import * as communityConfig from '../../../services/community/src/config';
import * as membership from '../../../services/membership/src/main';
import * as membershipConfig from '../../../services/membership/src/config';
import * as referral from '../../../services/referral/src/main';
import * as referralConfig from '../../../services/referral/src/config';
import { loadGatewayConfig } from '../config';
import { start as startGateway, type RunningGateway } from '../main';

export interface InProcessStack {
  nats: InfraProcess;
  subgraphs: Record<string, RunningService>;
  orders: orders.RunningOrders;
  community: community.RunningCommunity;
  referral: referral.RunningReferral;
  gateway: RunningGateway;
  /** Starts another gateway on the same subgraphs (e.g. production mode). */
  extraGateway(env?: Record<string, string>): Promise<RunningGateway>;
  stop(): Promise<void>;
}

/** An access token as membership would issue it (the tests own the secret). */
export function accessToken(sub: string, roles: ('CUSTOMER' | 'STAFF')[]): string {
  return signJwt({ iss: 'flywheel-membership', aud: 'flywheel-gateway', sub, roles, typ: 'access' }, TEST_AUTH_SECRET, 3600);
}
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });
export const asStaff = () => bearer(accessToken(new Types.ObjectId().toHexString(), ['STAFF']));
export const newCustomer = () => {
  const id = new Types.ObjectId().toHexString();
  return { id, headers: bearer(accessToken(id, ['CUSTOMER'])) };
};

/** A gateway's environment in tests: the test secrets, a free port, these subgraph URLs. */
export function gatewayTestEnv(subgraphUrls: Record<string, string>, more: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    INTERNAL_TOKEN_SECRET: TEST_INTERNAL_SECRET,
    AUTH_TOKEN_SECRET: TEST_AUTH_SECRET,
    ...Object.fromEntries(Object.entries(subgraphUrls).map(([name, url]) => [`${name.toUpperCase()}_URL`, url])),
    ...more,
  };
}

/**
 * `extra`: more environment per service name. `clocks`: a service's clock, for tests that move time
 * (community's challenge days, referral's expiries).
 */
export async function startInProcessStack(
  extra: Record<string, Record<string, string>> = {},
  clocks: { community?: () => Date; referral?: () => Date } = {},
): Promise<InProcessStack> {
  const nats = await privateNats();
  const env = (name: string) => serviceEnv(name, nats.url, extra[name] ?? {});
  const ordersSvc = await orders.start(ordersConfig.loadServiceConfig(env('orders')));
  const started = await Promise.all([
    content.start(contentConfig.loadServiceConfig(env('content'))),
    catalog.start(catalogConfig.loadServiceConfig(env('catalog'))),
    live.start(liveConfig.loadServiceConfig(env('live'))),
    community.start(communityConfig.loadServiceConfig(env('community')), clocks.community ? { now: clocks.community } : {}),
    membership.start(membershipConfig.loadServiceConfig(env('membership'))),
    referral.start(referralConfig.loadServiceConfig(env('referral')), clocks.referral ? { now: clocks.referral } : {}),
  ]);
  const subgraphs: Record<string, RunningService> = Object.fromEntries([...started, ordersSvc].map((s) => [s.name, s]));
  const urls = Object.fromEntries(Object.entries(subgraphs).map(([name, s]) => [name, s.url]));
  const gatewayEnv = (more: Record<string, string> = {}) =>
    // Tests that flood one subgraph on a shared 2-core machine (200 concurrent checkouts) queue
    // for seconds; the tests of the bound itself set their own.
    gatewayTestEnv(urls, { SUBGRAPH_TIMEOUT_MS: '30000', NATS_URL: nats.url, ...more });
  const extras: RunningGateway[] = [];
  const gateway = await startGateway(loadGatewayConfig(gatewayEnv(extra.gateway)));
  return {
    nats,
    subgraphs,
    orders: ordersSvc,
    community: subgraphs.community as community.RunningCommunity,
    referral: subgraphs.referral as referral.RunningReferral,
    gateway,
    async extraGateway(more = {}) {
      const g = await startGateway(loadGatewayConfig(gatewayEnv(more)));
      extras.push(g);
      return g;
    },
    async stop() {
      for (const g of [gateway, ...extras]) await g.stop();
      for (const s of Object.values(subgraphs)) {
        await s.db.dropDatabase().catch(() => undefined);
        await s.stop();
      }
      await nats.stop();
    },
  };
}

/**
 * A member signed up through the gateway (phone code, as a client does): their id and auth header;
 * with `address`, also a delivery address (what placing an order needs).
 */
export async function signUp(
  url: string,
  opts: { address?: boolean } = {},
): Promise<{ id: string; token: string; headers: Record<string, string> }> {
  const phone = `139${String(Math.floor(Math.random() * 1e8)).padStart(8, '0')}`;
  const code = await gql(url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const login = await gql(
    url,
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: code.data!.requestLoginCode.devCode },
  );
  if (login.errors) throw new Error(`sign-up failed: ${JSON.stringify(login.errors)}`);
  const token = login.data!.login.accessToken as string;
  const member = { id: login.data!.login.session.member.id as string, token, headers: bearer(token) };
  if (opts.address) {
    const added = await gql(
      url,
      'mutation($i: AddAddressInput!) { addAddress(input: $i) { address { id } } }',
      {
        i: {
          recipientName: '张三',
          phone: '13912345678',
          detail: '漕溪北路 88 号 1201 室',
          province: { code: '310000', name: '上海市' },
          city: { code: '310100', name: '上海市' },
          district: { code: '310104', name: '徐汇区' },
        },
      },
      member.headers,
    );
    if (added.errors) throw new Error(`address failed: ${JSON.stringify(added.errors)}`);
  }
  return member;
}

type ErrorsOf = { errors?: readonly { extensions?: Record<string, unknown> }[] };
/** The first error's `extensions.code` (undefined on success). */
export const errorCode = (res: ErrorsOf) => res.errors?.[0]?.extensions?.code;
/** The first error's `extensions.reason`. */
export const errorReason = (res: ErrorsOf) => res.errors?.[0]?.extensions?.reason;

/** A product on sale with one SKU, created by staff through the gateway: its id and the SKU's. */
export async function createTestProduct(
  url: string,
  staff: Record<string, string>,
  sku: { price: number; stock: number; weightGrams?: number },
  name = `测试商品 ${new Types.ObjectId().toHexString().slice(-6)}`,
): Promise<{ productId: string; skuId: string }> {
  const res = await gql(
    url,
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id skus { id } } }',
    {
      i: { name, status: 'ON_SALE', skus: [{ name: '标准', ...sku }] },
    },
    staff,
  );
  if (res.errors) throw new Error(`createProduct failed: ${JSON.stringify(res.errors)}`);
  return { productId: res.data!.createProduct.id as string, skuId: res.data!.createProduct.skus[0].id as string };
}
