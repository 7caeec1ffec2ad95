// Shared set-up for the orders test files: a private NATS, the real catalog in-process (it
// answers quotes, reservations and releases over NATS: no test double), and orders itself —
// each test file its own.
import { connect, StringCodec, type NatsConnection } from 'nats';
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start, type RunningOrders, type StartOptions } from '../main';
import type { CheckoutHooks } from '../checkout';
import { loadServiceConfig as loadCatalogConfig } from '../../../catalog/src/config';
import { start as startCatalog } from '../../../catalog/src/main';
import type { CatalogService } from '../../../catalog/src/service';

const sc = StringCodec();

export interface Seeded {
  productId: string;
  skus: { id: string; price: number }[];
}

/** Sees every request on a subject (a plain subscriber gets a copy; the queue group answers). */
export class Watcher {
  readonly seen: { orderId?: string }[] = [];
  constructor(
    private readonly nc: NatsConnection,
    subject: string,
  ) {
    nc.subscribe(subject, { callback: (_err, msg) => this.seen.push(JSON.parse(sc.decode(msg.data))) });
  }
  /** Requests of one order seen so far (after a round trip, so every earlier one has arrived). */
  async count(orderId: string) {
    await this.nc.flush();
    return this.seen.filter((r) => r.orderId === orderId).length;
  }
}

export interface Harness {
  nats: InfraProcess;
  catalog: (RunningService & { service: CatalogService }) | null;
  svc: RunningOrders;
  hooks: CheckoutHooks;
  reserves: Watcher;
  releases: Watcher;
  seed(status: 'ON_SALE' | 'DRAFT', skus: { price: number; stock?: number }[]): Promise<Seeded>;
  /** Another catalog replica on the same database and NATS (stopped with the harness unless stopped first). */
  catalogReplica(env?: Record<string, string>): Promise<RunningService & { service: CatalogService }>;
  /** Units of a SKU that can still be reserved. */
  available(skuId: string): Promise<number>;
  stopCatalog(): Promise<void>;
  stop(): Promise<void>;
}

export async function startHarness(
  opts: { env?: Record<string, string>; catalogEnv?: Record<string, string>; start?: StartOptions } = {},
): Promise<Harness> {
  const nats = await privateNats();
  let catalog: Harness['catalog'] = await startCatalog(loadCatalogConfig(serviceEnv('catalog', nats.url, opts.catalogEnv)));
  const replicas: RunningService[] = [];
  const hooks: CheckoutHooks = {};
  const svc = await start(loadServiceConfig(serviceEnv('orders', nats.url, opts.env)), {
    sweepers: false,
    hooks,
    adjusters: [],
    // Orders alone: no membership to answer address requests (shipping.test.ts runs membership).
    addresses: null,
    ...opts.start,
  });
  const nc = await connect({ servers: nats.url });
  const reserves = new Watcher(nc, 'catalog.stock.reserve');
  const releases = new Watcher(nc, 'catalog.stock.release');
  await nc.flush();

  return {
    nats,
    get catalog() {
      return catalog;
    },
    svc,
    hooks,
    reserves,
    releases,
    async catalogReplica(env = {}) {
      const replica = await startCatalog(
        loadCatalogConfig(serviceEnv('catalog', nats.url, { ...opts.catalogEnv, ...env, MONGO_DB: catalog!.db.name })),
      );
      replicas.push(replica);
      return replica;
    },
    async seed(status, skus) {
      const product = await catalog!.service.createProduct(staff(), {
        name: `测试商品 ${new Types.ObjectId().toHexString().slice(-6)}`,
        status,
        skus: skus.map((s, i) => ({ name: `规格${i + 1}`, price: s.price, stock: s.stock ?? 100 })),
      });
      const docs = await catalog!.db.collection('skus').find({ productId: product._id }).sort({ position: 1 }).toArray();
      return { productId: product._id.toHexString(), skus: docs.map((s) => ({ id: s._id.toHexString(), price: s.price as number })) };
    },
    /** Through catalog's own API (Sku.stock), as staff. */
    async available(skuId) {
      const res = await gql(
        catalog!.url,
        'query($r: [_Any!]!) { _entities(representations: $r) { ... on Sku { stock { available } } } }',
        { r: [{ __typename: 'Sku', id: skuId }] },
        asGateway('catalog', staff()),
      );
      if (res.errors) throw new Error(JSON.stringify(res.errors));
      return res.data!._entities[0].stock.available as number;
    },
    async stopCatalog() {
      await catalog?.db.dropDatabase();
      await catalog?.stop();
      catalog = null;
    },
    async stop() {
      await nc.close();
      await svc.db.dropDatabase();
      await svc.stop();
      await Promise.all(replicas.map((r) => r.stop().catch(() => undefined)));
      if (catalog) {
        await catalog.db.dropDatabase();
        await catalog.stop();
      }
      await nats.stop();
    },
  };
}

export const newMember = () => new Types.ObjectId().toHexString();
export const asMember = (memberId: string) => asGateway('orders', customer(memberId));
export const asStaff = () => asGateway('orders', staff());

let keySeq = 0;
export const newKey = () => `checkout-${Date.now()}-${++keySeq}`;

/** A GraphQL client for one orders service, as the gateway calls it. */
export function client(h: Harness) {
  const call = (query: string, variables: Record<string, unknown> = {}, headers = asGateway('orders', null)) =>
    gql(h.svc.url, query, variables, headers);
  return { call };
}

export const ORDER_FIELDS =
  'id status member { id } total { amount currency } subtotal { amount } source { kind refId } createdAt payBy lines { product { id } sku { id } name skuName quantity priceKind unitPrice { amount currency } subtotal { amount } } history { from to by reason } payments { id amount { amount } status refundReason }';
export const PLACE = `mutation($input: PlaceOrderInput!) { placeOrder(input: $input) { ${ORDER_FIELDS} } }`;
export const ORDER = `query($id: ID!) { order(id: $id) { ${ORDER_FIELDS} } }`;
export const PAY =
  'mutation($id: ID!) { payOrder(input: { orderId: $id }) { id amount { amount currency } status provider clientParams order { id } } }';
export const CANCEL = `mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { ${ORDER_FIELDS} } }`;

/** Places an order through GraphQL and expects it to succeed. */
export async function placeOk(
  h: Harness,
  memberId: string,
  lines: { skuId: string; quantity: number }[],
  extra: Record<string, unknown> = {},
) {
  const res = await client(h).call(PLACE, { input: { idempotencyKey: newKey(), lines, ...extra } }, asMember(memberId));
  if (res.errors) throw new Error(`placeOrder failed: ${JSON.stringify(res.errors)}`);
  return res.data!.placeOrder;
}

/** The member asks to pay and gets the order's intent. */
export async function intentFor(h: Harness, memberId: string, orderId: string): Promise<{ id: string; amount: { amount: number } }> {
  const res = await client(h).call(PAY, { id: orderId }, asMember(memberId));
  if (res.errors) throw new Error(`payOrder failed: ${JSON.stringify(res.errors)}`);
  return res.data!.payOrder;
}

/** Subjects of the events the order's transitions carry (the outbox records), oldest first. */
export async function transitionEvents(h: Harness, orderId: string): Promise<string[]> {
  const entries = await h.svc.db.collection('order_transitions').find({ accountId: orderId }).sort({ seq: 1 }).toArray();
  return entries.map((e) => e.outbox?.subject as string);
}

/** Places an order and pays it through the test provider; resolves with the placed order. */
export async function paidOrder(h: Harness, memberId: string, lines: { skuId: string; quantity: number }[]) {
  const order = await placeOk(h, memberId, lines);
  const intent = await intentFor(h, memberId, order.id);
  const [delivery] = await h.svc.payments.pay(intent.id);
  if (delivery?.status !== 200) throw new Error(`payment failed: ${JSON.stringify(delivery)}`);
  return order;
}

/** The provider's transaction that paid the order (refunds go back through it). */
export async function txnOf(h: Harness, orderId: string): Promise<string> {
  return (await h.svc.db.collection('payments').findOne({ orderId }))!.providerTxnId as string;
}

/** Events the order's ledger entries carry (outbox), oldest first, as subject and payload. */
export async function outboxOf(h: Harness, orderId: string): Promise<{ subject: string; data: any }[]> {
  const entries = await h.svc.db.collection('order_transitions').find({ accountId: orderId }).sort({ seq: 1 }).toArray();
  return entries.filter((e) => e.outbox).map((e) => ({ subject: e.outbox.subject as string, data: e.outbox.envelope.data }));
}

/** Entries of the order's ledger, oldest first. */
export async function ledgerOf(h: Harness, orderId: string) {
  return h.svc.db.collection('order_transitions').find({ accountId: orderId }).sort({ seq: 1 }).toArray();
}
