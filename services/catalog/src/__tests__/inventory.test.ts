import { randomUUID } from 'node:crypto';
import { StringCodec } from 'nats';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { BusRequestError, type RunningService } from '@flywheel/service-kit';
import { streamName, type EventData } from '@flywheel/events';
import { loadServiceConfig } from '../config';
import { applyMove, availableOf, EMPTY, type StockTotals } from '../stock/ledger';
import type { StockEntryDoc } from '../stock/model';
import { start } from '../main';
import type { CatalogService, InventoryService } from '../service';

// Stock as a ledger per SKU (docs/concurrency.md, "Ledgers"): every test drives the real service over NATS and
// GraphQL against the real FerretDB, then checks the ledger itself.

let nats: InfraProcess;
let svc: RunningService & { service: CatalogService; inventory: InventoryService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('catalog', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('catalog', staff());
const asCustomer = (id = oid()) => asGateway('catalog', customer(id));
const call = (query: string, variables: Record<string, unknown> = {}, headers = asStaff()) => gql(svc.url, query, variables, headers);
const HOUR = 3600_000;

let seq = 0;
async function createSku(stock: number, over: Record<string, unknown> = {}, product: Record<string, unknown> = {}) {
  const res = await call('mutation($input: CreateProductInput!) { createProduct(input: $input) { id skus { id } } }', {
    input: {
      name: `库存 ${Date.now().toString(36)}-${++seq}`,
      status: 'ON_SALE',
      skus: [{ name: '标准', price: 10000, stock, ...over }],
      ...product,
    },
  });
  expect(res.errors).toBeUndefined();
  return { productId: res.data!.createProduct.id as string, skuId: res.data!.createProduct.skus[0].id as string };
}

type Line = { skuId: string; quantity: number; flashSaleId?: string };
const reserve = (orderId: string, lines: Line[], memberId = oid()) =>
  svc.bus.request('catalog.stock.reserve', { orderId, memberId, lines }, { timeoutMs: 20_000 });
const release = (orderId: string) => svc.bus.request('catalog.stock.release', { orderId }, { timeoutMs: 20_000 });
/** The reply, or the refusal's code. */
const outcome = <T>(p: Promise<T>): Promise<T | string> =>
  p.catch((err: unknown) => (err instanceof BusRequestError ? err.code : String(err)));

const STOCK =
  'query($id: ID!) { product(id: $id) { inStock skus { id inStock stock { available onHand reserved sold lowStockThreshold } } } }';
async function stockOf(productId: string, headers = asStaff()) {
  const res = await call(STOCK, { id: productId }, headers);
  expect(res.errors).toBeUndefined();
  return res.data!.product.skus[0].stock as { available: number; onHand: number | null; reserved: number | null; sold: number | null };
}

const entriesOf = async (accountId: string) =>
  (await svc.db.collection('stock_entries').find({ accountId }).sort({ seq: 1 }).toArray()) as unknown as StockEntryDoc[];

/**
 * The proof: seq contiguous from 1, every entry's totals are the previous totals with its move
 * applied, nothing ever went below zero, and onHand = available + reserved + sold at the head.
 */
async function expectBalanced(accountId: string): Promise<StockTotals & { available: number }> {
  const entries = await entriesOf(accountId);
  expect(entries.map((e) => e.seq)).toEqual(entries.map((_, i) => i + 1));
  let replayed: StockTotals = EMPTY;
  for (const e of entries) {
    replayed = applyMove(replayed, e.kind, e.qty)!;
    expect(replayed).not.toBeNull();
    expect({ onHand: e.onHand, reserved: e.reserved, sold: e.sold }).toEqual(replayed);
    expect(availableOf(e)).toBeGreaterThanOrEqual(0);
  }
  const available = availableOf(replayed);
  expect(replayed.onHand).toBe(available + replayed.reserved + replayed.sold);
  return { ...replayed, available };
}

const paid = (orderId: string, skuId: string, quantity = 1): EventData<'orders.order.paid'> => ({
  orderId,
  memberId: oid(),
  total: 100 * quantity,
  currency: 'CNY',
  lines: [{ skuId, productId: oid(), quantity, unitPrice: 100, priceKind: 'LIST' }],
  source: { kind: 'DIRECT' },
  paymentId: `pay-${orderId}`,
  paidAt: new Date().toISOString(),
});
const processed = (subject: string, eventId: string) =>
  eventually(() => svc.db.collection('processed_events').findOne({ _id: `catalog_${subject.replace(/\./g, '-')}:${eventId}` as never }));
async function publish<S extends 'orders.order.paid' | 'orders.order.cancelled' | 'orders.order.refunded'>(subject: S, data: EventData<S>) {
  const env = await svc.bus.publish(subject, data);
  return env.id;
}

describe('stock is a ledger per SKU', () => {
  test('a new SKU starts with an INITIAL entry; customers see available only, staff see all of it', async () => {
    const { productId, skuId } = await createSku(7, { lowStockThreshold: 2 });
    expect(await entriesOf(skuId)).toMatchObject([{ _id: `${skuId}:1`, kind: 'INITIAL', qty: 7, onHand: 7, reserved: 0, sold: 0 }]);
    expect(await stockOf(productId)).toEqual({ available: 7, onHand: 7, reserved: 0, sold: 0, lowStockThreshold: 2 });
    expect(await stockOf(productId, asCustomer())).toEqual({
      available: 7,
      onHand: null,
      reserved: null,
      sold: null,
      lowStockThreshold: null,
    });
    const res = await call(STOCK, { id: productId }, asGateway('catalog', null));
    expect(res.data!.product).toMatchObject({ inStock: true, skus: [{ inStock: true }] });

    const empty = await createSku(0);
    expect((await call(STOCK, { id: empty.productId }, asCustomer())).data!.product).toMatchObject({
      inStock: false,
      skus: [{ inStock: false }],
    });
  });

  test('stockLedger is staff only and pages newest first by seq', async () => {
    const { skuId } = await createSku(30);
    for (let i = 0; i < 11; i++) await svc.inventory.adjustStock(staff(), { skuId, delta: 1, reason: `入库 ${i}` });
    const LEDGER =
      'query($skuId: ID!, $after: String) { stockLedger(skuId: $skuId, first: 5, after: $after) { edges { node { id seq kind quantity reason by available onHand reserved sold } } pageInfo { hasNextPage endCursor } } }';
    const seqs: number[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await call(LEDGER, { skuId, after });
      expect(res.errors).toBeUndefined();
      seqs.push(...res.data!.stockLedger.edges.map((e: any) => e.node.seq));
      if (!res.data!.stockLedger.pageInfo.hasNextPage) break;
      after = res.data!.stockLedger.pageInfo.endCursor;
    }
    expect(seqs).toEqual(Array.from({ length: 12 }, (_, i) => 12 - i));
    const first = await call(LEDGER, { skuId });
    expect(first.data!.stockLedger.edges[0].node).toMatchObject({
      kind: 'ADJUST',
      quantity: 1,
      reason: '入库 10',
      by: 'staff-1',
      onHand: 41,
    });
    expect((await call(LEDGER, { skuId }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(LEDGER, { skuId: oid() })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('reservations over NATS (catalog.stock.reserve / release)', () => {
  test('a replayed reservation answers the first result and takes the stock once', async () => {
    const { skuId } = await createSku(5);
    const orderId = randomUUID();
    const memberId = oid();
    const lines = [{ skuId, quantity: 2 }];
    const [a, b] = await Promise.all([reserve(orderId, lines, memberId), reserve(orderId, lines, memberId)]);
    const c = await reserve(orderId, lines, memberId);
    expect(b).toEqual(a);
    expect(c).toEqual(a);
    expect((await expectBalanced(skuId)).reserved).toBe(2);
    // The same order id with other lines is not a replay.
    expect(await outcome(reserve(orderId, [{ skuId, quantity: 3 }], memberId))).toBe('CONFLICT');

    // A refusal is a first result too.
    const refused = randomUUID();
    expect(await outcome(reserve(refused, [{ skuId, quantity: 4 }], memberId))).toBe('OUT_OF_STOCK');
    await svc.inventory.adjustStock(staff(), { skuId, delta: 10, reason: '补货' });
    expect(await outcome(reserve(refused, [{ skuId, quantity: 4 }], memberId))).toBe('OUT_OF_STOCK');
    expect((await expectBalanced(skuId)).reserved).toBe(2);
  });

  test('several lines are all or nothing: a refused later line gives back what the earlier ones took', async () => {
    const a = await createSku(5);
    const b = await createSku(1);
    const orderId = randomUUID();
    const err = await reserve(orderId, [
      { skuId: a.skuId, quantity: 2 },
      { skuId: b.skuId, quantity: 3 },
    ]).catch((e: BusRequestError) => e);
    expect(err).toBeInstanceOf(BusRequestError);
    expect((err as BusRequestError).code).toBe('OUT_OF_STOCK');
    expect((err as BusRequestError).message).toContain(b.skuId);
    expect(await expectBalanced(a.skuId)).toMatchObject({ available: 5, reserved: 0 });
    expect((await entriesOf(a.skuId)).map((e) => e.kind)).toEqual(['INITIAL', 'RESERVE', 'RELEASE']);
    expect(await expectBalanced(b.skuId)).toMatchObject({ available: 1, reserved: 0 });
    expect(await svc.db.collection('reservation_finals').findOne({ _id: `${orderId}:final` as never })).toMatchObject({
      outcome: 'RELEASED',
      cause: 'REFUSED',
    });

    // Refusals decided before any stock moves.
    const draft = await createSku(5, {}, { status: 'DRAFT' });
    expect(
      await outcome(
        reserve(randomUUID(), [
          { skuId: a.skuId, quantity: 1 },
          { skuId: oid(), quantity: 1 },
        ]),
      ),
    ).toBe('NOT_FOUND');
    expect(
      await outcome(
        reserve(randomUUID(), [
          { skuId: a.skuId, quantity: 1 },
          { skuId: draft.skuId, quantity: 1 },
        ]),
      ),
    ).toBe('BAD_USER_INPUT');
    expect(
      await outcome(
        reserve(randomUUID(), [
          { skuId: a.skuId, quantity: 1 },
          { skuId: a.skuId, quantity: 1 },
        ]),
      ),
    ).toBe('BAD_USER_INPUT');
    expect((await entriesOf(a.skuId)).map((e) => e.kind)).toEqual(['INITIAL', 'RESERVE', 'RELEASE']);
  });

  test('payment converts the reservation to sold; a second paid event, a cancel and a release change nothing', async () => {
    const { productId, skuId } = await createSku(10);
    const orderId = randomUUID();
    await reserve(orderId, [{ skuId, quantity: 3 }]);
    await processed('orders.order.paid', await publish('orders.order.paid', paid(orderId, skuId, 3)));
    expect(await stockOf(productId)).toMatchObject({ available: 7, onHand: 10, reserved: 0, sold: 3 });

    await processed('orders.order.paid', await publish('orders.order.paid', paid(orderId, skuId, 3)));
    const cancelled = {
      orderId,
      memberId: oid(),
      reason: 'MEMBER' as const,
      lines: [{ skuId, quantity: 3 }],
      cancelledAt: new Date().toISOString(),
    };
    await processed('orders.order.cancelled', await publish('orders.order.cancelled', cancelled));
    expect(await release(orderId)).toEqual({ orderId, released: false });
    expect((await entriesOf(skuId)).map((e) => e.kind)).toEqual(['INITIAL', 'RESERVE', 'SELL']);
    expect(await expectBalanced(skuId)).toEqual({ onHand: 10, reserved: 0, sold: 3, available: 7 });
  });

  test('cancellation and release requests give the stock back once; a release before the reservation stops it', async () => {
    const { skuId } = await createSku(10);
    const cancelled = randomUUID();
    await reserve(cancelled, [{ skuId, quantity: 4 }]);
    const data = {
      orderId: cancelled,
      memberId: oid(),
      reason: 'EXPIRED' as const,
      lines: [{ skuId, quantity: 4 }],
      cancelledAt: new Date().toISOString(),
    };
    await processed('orders.order.cancelled', await publish('orders.order.cancelled', data));
    await processed('orders.order.cancelled', await publish('orders.order.cancelled', data));

    const released = randomUUID();
    await reserve(released, [{ skuId, quantity: 2 }]);
    expect(await Promise.all([release(released), release(released), release(released)])).toEqual(
      Array(3).fill({ orderId: released, released: true }),
    );
    expect((await entriesOf(skuId)).map((e) => e.kind)).toEqual(['INITIAL', 'RESERVE', 'RELEASE', 'RESERVE', 'RELEASE']);

    // Orders gave up on a reservation that had not arrived yet: when it does, it takes nothing.
    const late = randomUUID();
    expect(await release(late)).toEqual({ orderId: late, released: true });
    expect(await outcome(reserve(late, [{ skuId, quantity: 1 }]))).toBe('CONFLICT');
    expect(await expectBalanced(skuId)).toEqual({ onHand: 10, reserved: 0, sold: 0, available: 10 });
  });

  test('release requests, a paid event and the expiry sweeper racing for one reservation: exactly one outcome is applied', async () => {
    const { skuId } = await createSku(20);
    for (let round = 0; round < 4; round++) {
      const orderId = randomUUID();
      await reserve(orderId, [{ skuId, quantity: 2 }]);
      const eventId = await publish('orders.order.paid', paid(orderId, skuId, 2));
      const [r1, r2] = await Promise.all([
        release(orderId),
        release(orderId),
        svc.inventory.sweepOnce(new Date(Date.now() + 2 * HOUR)),
        svc.inventory.sweepOnce(new Date(Date.now() + 2 * HOUR)),
      ]);
      await processed('orders.order.paid', eventId);
      const final = await svc.db.collection('reservation_finals').findOne({ _id: `${orderId}:final` as never });
      expect(r1).toEqual(r2);
      expect(r1.released).toBe(final!.outcome === 'RELEASED');
      const kinds = (await entriesOf(skuId)).filter((e) => e.orderId === orderId).map((e) => e.kind);
      expect(kinds).toEqual(['RESERVE', final!.outcome === 'SOLD' ? 'SELL' : 'RELEASE']);
      const incident = await svc.db.collection('stock_incidents').findOne({ _id: `${orderId}:PAID_AFTER_RELEASE` as never });
      expect(Boolean(incident)).toBe(final!.outcome === 'RELEASED');
    }
    const totals = await expectBalanced(skuId);
    expect(totals.reserved).toBe(0);
    expect(totals.onHand).toBe(20);
  });

  test('a payment after the expiry release sells nothing and leaves an incident for staff', async () => {
    const { productId, skuId } = await createSku(3);
    const orderId = randomUUID();
    await reserve(orderId, [{ skuId, quantity: 3 }]);
    // Meanwhile someone else may buy the units that came back: they must not be sold twice.
    expect(await svc.inventory.sweepOnce(new Date(Date.now() + 2 * HOUR))).toMatchObject({ expired: expect.any(Number) });
    expect(await svc.db.collection('reservation_finals').findOne({ _id: `${orderId}:final` as never })).toMatchObject({ cause: 'EXPIRED' });
    await reserve(randomUUID(), [{ skuId, quantity: 3 }]);

    await processed('orders.order.paid', await publish('orders.order.paid', paid(orderId, skuId, 3)));
    expect(await stockOf(productId)).toMatchObject({ available: 0, reserved: 3, sold: 0 });
    expect(await svc.db.collection('stock_incidents').findOne({ _id: `${orderId}:PAID_AFTER_RELEASE` as never })).toMatchObject({
      kind: 'PAID_AFTER_RELEASE',
      orderId,
      detail: { releasedBy: 'EXPIRED', paymentId: `pay-${orderId}` },
    });
    await expectBalanced(skuId);
  });

  test('the expiry sweeper releases a reservation nobody finalised, and only one that is due', async () => {
    const { skuId } = await createSku(5);
    const stranded = randomUUID();
    await reserve(stranded, [{ skuId, quantity: 5 }]);
    await svc.inventory.sweepOnce(new Date(Date.now() + HOUR / 2));
    expect((await expectBalanced(skuId)).reserved).toBe(5);
    await svc.inventory.sweepOnce(new Date(Date.now() + 2 * HOUR));
    expect(await expectBalanced(skuId)).toMatchObject({ reserved: 0, available: 5 });
    expect(await svc.db.collection('stock_sweeps').countDocuments({ ref: stranded })).toBe(0);
  });

  test('a refund with returned goods restocks once per refundId, however often it is delivered', async () => {
    const { skuId } = await createSku(5);
    const orderId = randomUUID();
    await reserve(orderId, [{ skuId, quantity: 4 }]);
    await processed('orders.order.paid', await publish('orders.order.paid', paid(orderId, skuId, 4)));
    const refund = (refundId: string, quantity: number): EventData<'orders.order.refunded'> => ({
      orderId,
      memberId: oid(),
      refundId,
      amount: 100 * quantity,
      currency: 'CNY',
      restock: [{ skuId, quantity }],
      refundedAt: new Date().toISOString(),
    });
    const first = refund('refund-a', 2);
    for (const data of [first, first, refund('refund-b', 1), refund('refund-c', 1)]) {
      await processed('orders.order.refunded', await publish('orders.order.refunded', data));
    }
    const restocks = (await entriesOf(skuId)).filter((e) => e.kind === 'RESTOCK');
    expect(restocks.map((e) => [e.refundId, e.qty])).toEqual([
      ['refund-a', 2],
      ['refund-b', 1],
      ['refund-c', 1],
    ]);
    expect(await expectBalanced(skuId)).toEqual({ onHand: 9, reserved: 0, sold: 4, available: 5 });
  });

  // Last in this block: its 50 open reservations are left out of the sweeps above.
  test('200 concurrent reserves of one unit for 50 in stock: exactly 50 reserved, 150 OUT_OF_STOCK, ledger balanced', async () => {
    const { productId, skuId } = await createSku(50);
    const results = await Promise.all(Array.from({ length: 200 }, () => outcome(reserve(randomUUID(), [{ skuId, quantity: 1 }]))));
    expect(results.filter((r) => typeof r === 'object')).toHaveLength(50);
    expect(results.filter((r) => r === 'OUT_OF_STOCK')).toHaveLength(150);
    const totals = await expectBalanced(skuId);
    expect(totals).toEqual({ onHand: 50, reserved: 50, sold: 0, available: 0 });
    expect(await stockOf(productId)).toMatchObject({ available: 0, onHand: 50, reserved: 50, sold: 0 });
    expect(await svc.db.collection('stock_entries').countDocuments({ accountId: skuId, kind: 'RESERVE' })).toBe(50);
  });
});

describe('staff adjust stock', () => {
  const ADJUST =
    'mutation($input: AdjustStockInput!) { adjustStock(input: $input) { sku { id stock { available onHand } } entry { kind quantity reason by available } } }';

  test('staff adjust with a reason; the entry records who and why; a replayed key applies once', async () => {
    const { skuId } = await createSku(10);
    const res = await call(ADJUST, { input: { skuId, delta: -4, reason: '盘点损耗', idempotencyKey: 'k1' } });
    expect(res.errors).toBeUndefined();
    expect(res.data!.adjustStock).toEqual({
      sku: { id: skuId, stock: { available: 6, onHand: 6 } },
      entry: { kind: 'ADJUST', quantity: -4, reason: '盘点损耗', by: 'staff-1', available: 6 },
    });
    const again = await call(ADJUST, { input: { skuId, delta: -4, reason: '盘点损耗', idempotencyKey: 'k1' } });
    expect(again.data!.adjustStock.entry).toEqual(res.data!.adjustStock.entry);
    expect((await call(ADJUST, { input: { skuId, delta: 5, reason: 'x', idempotencyKey: 'k1' } })).errors?.[0]?.extensions?.code).toBe(
      'CONFLICT',
    );
    expect(await expectBalanced(skuId)).toMatchObject({ onHand: 6 });
  });

  test('customers are FORBIDDEN, anonymous callers UNAUTHENTICATED, and nothing is written', async () => {
    const { skuId } = await createSku(10);
    expect((await call(ADJUST, { input: { skuId, delta: 5, reason: 'x' } }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(
      (await call(ADJUST, { input: { skuId, delta: 5, reason: 'x' } }, asGateway('catalog', null))).errors?.[0]?.extensions?.code,
    ).toBe('UNAUTHENTICATED');
    expect(await entriesOf(skuId)).toHaveLength(1);
  });

  test('an adjustment that would take available below zero, or without a reason, is refused', async () => {
    const { skuId } = await createSku(10);
    await reserve(randomUUID(), [{ skuId, quantity: 6 }]);
    const below = await call(ADJUST, { input: { skuId, delta: -5, reason: '报损' } });
    expect(below.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'delta' });
    expect(below.errors?.[0]?.message).toContain('Only 4 available');
    expect((await call(ADJUST, { input: { skuId, delta: -1, reason: '  ' } })).errors?.[0]?.extensions).toMatchObject({ field: 'reason' });
    expect((await call(ADJUST, { input: { skuId, delta: 0, reason: 'x' } })).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect((await call(ADJUST, { input: { skuId: oid(), delta: 1, reason: 'x' } })).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect((await call(ADJUST, { input: { skuId, delta: -4, reason: '报损' } })).data!.adjustStock.sku.stock.available).toBe(0);
    expect(await expectBalanced(skuId)).toEqual({ onHand: 6, reserved: 6, sold: 0, available: 0 });
  });
});

describe('low stock', () => {
  async function lowStockEvents(skuId: string, expected: number) {
    const jsm = await svc.bus.nc.jetstreamManager();
    return eventually(async () => {
      await svc.relay!.flush();
      const info = await jsm.streams.info(streamName('catalog'));
      const found: { available: number; threshold: number }[] = [];
      for (let s = info.state.first_seq; s <= info.state.last_seq; s++) {
        const m = await jsm.streams.getMessage(streamName('catalog'), { seq: s }).catch(() => null);
        const env = m ? JSON.parse(StringCodec().decode(m.data)) : null;
        if (env?.type === 'catalog.stock.low' && env.data.skuId === skuId) found.push(env.data);
      }
      return found.length >= expected ? found : null;
    });
  }

  test('catalog.stock.low is published once per crossing of the threshold', async () => {
    const { productId, skuId } = await createSku(8, { lowStockThreshold: 5 });
    const a = randomUUID();
    await reserve(a, [{ skuId, quantity: 2 }]); // 6: above
    const b = randomUUID();
    await reserve(b, [{ skuId, quantity: 1 }]); // 5: crosses
    await reserve(randomUUID(), [{ skuId, quantity: 1 }]); // 4: still low, no second alert
    await release(a);
    await release(b); // 7: back above
    await svc.inventory.adjustStock(staff(), { skuId, delta: -3, reason: '报损' }); // 4: crosses again
    const events = await lowStockEvents(skuId, 2);
    await new Promise((r) => setTimeout(r, 200));
    expect(await lowStockEvents(skuId, 2)).toEqual([
      { skuId, productId, available: 5, threshold: 5 },
      { skuId, productId, available: 4, threshold: 5 },
    ]);
    expect(events).toHaveLength(2);
  });
});

describe('flash sales (秒杀)', () => {
  const CREATE =
    'mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id status remaining quota perMemberLimit flashPrice { amount } sku { id stock { available } } product { id } } } }';
  const FLASH = 'query($id: ID!) { flashSale(id: $id) { id status remaining } }';

  async function createFlash(skuId: string, over: Record<string, unknown> = {}) {
    const input = {
      skuId,
      flashPrice: 5000,
      quota: 20,
      perMemberLimit: 1,
      startsAt: new Date(Date.now() - 1000).toISOString(),
      endsAt: new Date(Date.now() + HOUR).toISOString(),
      ...over,
    };
    const res = await call(CREATE, { input });
    expect(res.errors).toBeUndefined();
    return res.data!.createFlashSale.flashSale;
  }

  test('creating a flash sale carves its quota out of the SKU; staff only; a replayed key carves once', async () => {
    const { productId, skuId } = await createSku(100);
    const window = { startsAt: new Date(Date.now() - 1000).toISOString(), endsAt: new Date(Date.now() + HOUR).toISOString() };
    const flash = await createFlash(skuId, { ...window, idempotencyKey: 'spring' });
    expect(flash).toMatchObject({
      status: 'LIVE',
      remaining: 20,
      quota: 20,
      flashPrice: { amount: 5000 },
      sku: { id: skuId, stock: { available: 80 } },
    });
    expect((await createFlash(skuId, { ...window, idempotencyKey: 'spring' })).id).toBe(flash.id);
    const reused = await call(CREATE, {
      input: { skuId, flashPrice: 5000, quota: 21, perMemberLimit: 1, ...window, idempotencyKey: 'spring' },
    });
    expect(reused.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await stockOf(productId)).toMatchObject({ available: 80, onHand: 80, reserved: 0 });
    expect((await entriesOf(skuId)).map((e) => [e.kind, e.qty])).toEqual([
      ['INITIAL', 100],
      ['FLASH_ALLOCATE', 20],
    ]);
    expect(await expectBalanced(`flash:${flash.id}`)).toEqual({ onHand: 20, reserved: 0, sold: 0, available: 20 });

    const input = {
      skuId,
      flashPrice: 5000,
      quota: 5,
      perMemberLimit: 1,
      startsAt: new Date().toISOString(),
      endsAt: new Date(Date.now() + HOUR).toISOString(),
    };
    expect((await call(CREATE, { input }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(CREATE, { input: { ...input, quota: 81 } })).errors?.[0]?.extensions).toMatchObject({
      code: 'BAD_USER_INPUT',
      field: 'quota',
    });
    expect((await call(CREATE, { input: { ...input, flashPrice: 10000 } })).errors?.[0]?.extensions).toMatchObject({ field: 'flashPrice' });
    expect((await call(CREATE, { input: { ...input, perMemberLimit: 6 } })).errors?.[0]?.extensions).toMatchObject({
      field: 'perMemberLimit',
    });
    expect(
      (await call(CREATE, { input: { ...input, endsAt: input.startsAt, startsAt: input.endsAt } })).errors?.[0]?.extensions,
    ).toMatchObject({
      field: 'endsAt',
    });
    expect(await stockOf(productId)).toMatchObject({ available: 80, onHand: 80 });

    // Normal sales cannot reach the quota, and the flash sale cannot reach normal stock.
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 81 }]))).toBe('OUT_OF_STOCK');
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 80 }]))).toMatchObject({ reservedAt: expect.any(String) });
    expect((await call(FLASH, { id: flash.id }, asCustomer())).data!.flashSale).toEqual({ id: flash.id, status: 'LIVE', remaining: 20 });
  });

  test('catalog.flash.describe answers a flash sale’s SKU, product and window; other subgraphs resolve it by id', async () => {
    const { productId, skuId } = await createSku(10);
    const endsAt = new Date(Date.now() + HOUR).toISOString();
    const flash = await createFlash(skuId, { quota: 2, endsAt });
    expect(await svc.bus.request('catalog.flash.describe', { flashSaleId: flash.id })).toEqual({
      flashSaleId: flash.id,
      skuId,
      productId,
      startsAt: expect.any(String),
      endsAt,
    });
    for (const unknown of [oid(), 'not-an-id']) {
      const refused = await svc.bus.request('catalog.flash.describe', { flashSaleId: unknown }).catch((e: { code: string }) => e.code);
      expect(refused).toBe('NOT_FOUND');
    }
    const ENTITIES = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on FlashSale { id remaining } } }';
    const reps = [
      { __typename: 'FlashSale', id: flash.id },
      { __typename: 'FlashSale', id: oid() },
    ];
    expect((await call(ENTITIES, { r: reps }, asCustomer())).data!._entities).toEqual([{ id: flash.id, remaining: 2 }, null]);
  });

  test('100 concurrent buyers for a quota of 20: exactly 20 reserved, 80 OUT_OF_STOCK, regular stock untouched', async () => {
    const { productId, skuId } = await createSku(50);
    const flash = await createFlash(skuId, { quota: 20, perMemberLimit: 1 });
    const results = await Promise.all(
      Array.from({ length: 100 }, () => outcome(reserve(randomUUID(), [{ skuId, quantity: 1, flashSaleId: flash.id }]))),
    );
    expect(results.filter((r) => typeof r === 'object')).toHaveLength(20);
    expect(results.filter((r) => r === 'OUT_OF_STOCK')).toHaveLength(80);
    expect(await expectBalanced(`flash:${flash.id}`)).toEqual({ onHand: 20, reserved: 20, sold: 0, available: 0 });
    expect(await stockOf(productId)).toMatchObject({ available: 30, reserved: 0 });
    expect((await call(FLASH, { id: flash.id })).data!.flashSale).toMatchObject({ status: 'SOLD_OUT', remaining: 0 });
    // Only the winners hold member slots.
    expect(await svc.db.collection('flash_slots').countDocuments({ flashSaleId: flash.id })).toBe(20);
  });

  test('the per-member limit holds under concurrency, over the limit takes nothing, and a release gives the slot back', async () => {
    const { skuId } = await createSku(100);
    const flash = await createFlash(skuId, { quota: 50, perMemberLimit: 2 });
    const memberId = oid();
    const orders = Array.from({ length: 6 }, () => randomUUID());
    const results = await Promise.all(orders.map((o) => outcome(reserve(o, [{ skuId, quantity: 1, flashSaleId: flash.id }], memberId))));
    expect(results.filter((r) => typeof r === 'object')).toHaveLength(2);
    expect(results.filter((r) => r === 'BAD_USER_INPUT')).toHaveLength(4);
    expect(await expectBalanced(`flash:${flash.id}`)).toMatchObject({ reserved: 2, available: 48 });
    expect(await svc.db.collection('flash_slots').countDocuments({ flashSaleId: flash.id, memberId })).toBe(2);

    // More than the limit in one line, even for a new member: refused, nothing taken.
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 3, flashSaleId: flash.id }]))).toBe('BAD_USER_INPUT');
    // A flash line next to a regular line that fails: the slot and the flash unit come back.
    const other = oid();
    const mixed = await outcome(
      reserve(
        randomUUID(),
        [
          { skuId, quantity: 1, flashSaleId: flash.id },
          { skuId, quantity: 999 },
        ],
        other,
      ),
    );
    expect(mixed).toBe('OUT_OF_STOCK');
    expect(await svc.db.collection('flash_slots').countDocuments({ flashSaleId: flash.id, memberId: other })).toBe(0);
    expect(await expectBalanced(`flash:${flash.id}`)).toMatchObject({ reserved: 2, available: 48 });

    const won = orders.filter((_, i) => typeof results[i] === 'object');
    expect(await release(won[0]!)).toEqual({ orderId: won[0], released: true });
    expect(await release(won[0]!)).toEqual({ orderId: won[0], released: true });
    expect(await svc.db.collection('flash_slots').countDocuments({ flashSaleId: flash.id, memberId })).toBe(1);
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 1, flashSaleId: flash.id }], memberId))).toMatchObject({
      reservedAt: expect.any(String),
    });
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 1, flashSaleId: flash.id }], memberId))).toBe('BAD_USER_INPUT');
    expect(await expectBalanced(`flash:${flash.id}`)).toMatchObject({ reserved: 2, available: 48 });
  });

  test('the flash price is quoted only while the sale is live and the member is within the limit; unsold quota returns at the end', async () => {
    const { productId, skuId } = await createSku(30);
    const startsAt = new Date(Date.now() + 1000);
    const endsAt = new Date(Date.now() + 2800);
    const flash = await createFlash(skuId, {
      quota: 10,
      perMemberLimit: 2,
      startsAt: startsAt.toISOString(),
      endsAt: endsAt.toISOString(),
    });
    const memberId = oid();
    const quote = (quantity = 1, member: string | null = memberId) =>
      svc.bus
        .request('catalog.price.quote', { lines: [{ skuId, quantity }], ...(member ? { memberId: member } : {}) })
        .then((q) => q.lines[0]);
    const skuFlash = async () =>
      (await call('query($id: ID!) { product(id: $id) { skus { flashSale { id status remaining } } } }', { id: productId }, asCustomer()))
        .data!.product.skus[0].flashSale;

    expect(flash.status).toBe('UPCOMING');
    expect(await quote()).toMatchObject({ priceKind: 'LIST', unitPrice: 10000 });
    expect(await skuFlash()).toEqual({ id: flash.id, status: 'UPCOMING', remaining: 10 });
    expect(await outcome(reserve(randomUUID(), [{ skuId, quantity: 1, flashSaleId: flash.id }], memberId))).toBe('BAD_USER_INPUT');

    await new Promise((r) => setTimeout(r, startsAt.getTime() - Date.now() + 20));
    expect(await quote()).toEqual(expect.objectContaining({ priceKind: 'FLASH', unitPrice: 5000, flashSaleId: flash.id }));
    expect(await quote(1, null)).toMatchObject({ priceKind: 'LIST' });
    expect(await quote(3)).toMatchObject({ priceKind: 'LIST' }); // over the member's limit
    const order = randomUUID();
    await reserve(order, [{ skuId, quantity: 2, flashSaleId: flash.id }], memberId);
    expect(await quote()).toMatchObject({ priceKind: 'LIST' }); // limit used up
    expect(await quote(1, oid())).toMatchObject({ priceKind: 'FLASH' });
    expect(await skuFlash()).toEqual({ id: flash.id, status: 'LIVE', remaining: 8 });
    const LIST = 'query($status: FlashSaleStatus) { flashSales(status: $status, first: 100) { edges { node { id status } } } }';
    const listed = async (status: string) => (await call(LIST, { status }, asCustomer())).data!.flashSales.edges.map((e: any) => e.node.id);
    expect(await listed('LIVE')).toContain(flash.id);
    expect(await listed('UPCOMING')).not.toContain(flash.id);

    await new Promise((r) => setTimeout(r, endsAt.getTime() - Date.now() + 20));
    expect(await quote(1, oid())).toMatchObject({ priceKind: 'LIST' });
    expect((await call(FLASH, { id: flash.id })).data!.flashSale).toEqual({ id: flash.id, status: 'ENDED', remaining: 0 });
    expect(await listed('ENDED')).toContain(flash.id);
    expect(await skuFlash()).toBeNull();

    // The sweeper returns the 8 unsold units; the 2 still reserved follow when they are released.
    await svc.inventory.sweepOnce();
    expect(await stockOf(productId)).toMatchObject({ available: 28, onHand: 28 });
    await release(order);
    expect(await stockOf(productId)).toMatchObject({ available: 30, onHand: 30 });
    expect(await expectBalanced(`flash:${flash.id}`)).toEqual({ onHand: 0, reserved: 0, sold: 0, available: 0 });
    expect((await entriesOf(skuId)).map((e) => e.kind)).toEqual(['INITIAL', 'FLASH_ALLOCATE', 'FLASH_RETURN', 'FLASH_RETURN']);
    await svc.inventory.sweepOnce();
    expect(await svc.db.collection('stock_sweeps').countDocuments({ ref: flash.id })).toBe(0);
    await expectBalanced(skuId);
  });

  test('a paid flash reservation is sold from the flash quota', async () => {
    const { productId, skuId } = await createSku(10);
    const flash = await createFlash(skuId, { quota: 5, perMemberLimit: 2 });
    const orderId = randomUUID();
    await reserve(orderId, [{ skuId, quantity: 2, flashSaleId: flash.id }]);
    await processed('orders.order.paid', await publish('orders.order.paid', paid(orderId, skuId, 2)));
    expect(await expectBalanced(`flash:${flash.id}`)).toEqual({ onHand: 5, reserved: 0, sold: 2, available: 3 });
    expect(await stockOf(productId)).toMatchObject({ available: 5, onHand: 5, sold: 0 });
  });
});

describe('the sweeper timer', () => {
  test('a replica started with a short TTL releases an expired reservation on its own, and stops with the service', async () => {
    const ownNats = await privateNats();
    const replica = await start(
      loadServiceConfig(serviceEnv('catalog', ownNats.url, { RESERVATION_TTL_SECONDS: '1', STOCK_SWEEP_INTERVAL_SECONDS: '0.2' })),
    );
    try {
      const res = await gql(
        replica.url,
        'mutation($input: CreateProductInput!) { createProduct(input: $input) { skus { id } } }',
        { input: { name: '定时', status: 'ON_SALE', skus: [{ name: '标准', price: 100, stock: 2 }] } },
        asStaff(),
      );
      const skuId = res.data!.createProduct.skus[0].id;
      await replica.bus.request('catalog.stock.reserve', { orderId: randomUUID(), memberId: oid(), lines: [{ skuId, quantity: 2 }] });
      await eventually(async () => {
        const head = await replica.db.collection('stock_entries').find({ accountId: skuId }).sort({ seq: -1 }).limit(1).next();
        return head?.kind === 'RELEASE' && head.reserved === 0;
      }, 5_000);
    } finally {
      await replica.db.dropDatabase();
      await replica.stop();
      await ownNats.stop();
    }
  });
});
