// The room's sales and viewer ledgers against the real FerretDB and NATS: concurrent and repeated
// events count once, a refund waits for its order, and the report reads by `_id` only.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData } from '@flywheel/events';
import { privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import type { Viewer } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningLive } from '../../main';

let nats: InfraProcess;
let svc: RunningLive;
beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('live', nats.url)), { sweepers: false });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const sales = () => svc.modules.sales.sales;
const STAFF = { id: new Types.ObjectId().toHexString(), roles: ['STAFF'] } as Viewer;
const member = (id: string) => ({ id, roles: ['CUSTOMER'] }) as Viewer;

async function room(): Promise<string> {
  const r = await svc.service.scheduleLiveRoom(STAFF, { title: '专场', hostName: '小林', scheduledAt: new Date(Date.now() + 3600_000) });
  return r._id.toHexString();
}
function paid(roomId: string | null, memberId: string, total = 1000, orderId = randomUUID()): EventData<'orders.order.paid'> {
  return {
    orderId,
    memberId,
    total,
    currency: 'CNY',
    lines: [{ skuId: 's1', productId: 'p1', quantity: 1, unitPrice: total, priceKind: 'LIST' }],
    source: roomId ? { kind: 'LIVE', roomId } : { kind: 'DIRECT' },
    paymentId: randomUUID(),
    paidAt: new Date().toISOString(),
  };
}
const refund = (orderId: string, amount: number, refundId = randomUUID()): EventData<'orders.order.refunded'> => ({
  orderId,
  memberId: 'm',
  refundId,
  amount,
  currency: 'CNY',
  restock: [],
  refundedAt: new Date().toISOString(),
});

test('concurrent entries of the same viewers count each viewer once', async () => {
  const id = await room();
  const members = ['a', 'b', 'c'].map(() => member(new Types.ObjectId().toHexString()));
  await Promise.all(
    Array.from({ length: 24 }, (_, i) => (i % 4 === 3 ? sales().enter(null, id, 'visitor-0001') : sales().enter(members[i % 4]!, id))),
  );
  expect(await sales().enter(members[0]!, id)).toBe(false);
  expect(await sales().enter(null, id, 'visitor-0002')).toBe(true);
  expect((await sales().report(STAFF, id)).viewers).toBe(5);
  await expect(sales().enter(null, new Types.ObjectId().toHexString(), 'visitor-0001')).rejects.toMatchObject({
    extensions: expect.objectContaining({ code: 'NOT_FOUND' }),
  });
});

test('concurrent and repeated paid events count each order once; buyers are unique; refunds net out once', async () => {
  const id = await room();
  const buyers = ['x', 'y', 'z'].map(() => new Types.ObjectId().toHexString());
  const orders = Array.from({ length: 12 }, (_, i) => paid(id, buyers[i % 3]!, 1000 + i));
  // Every order delivered twice, all at once.
  await Promise.all([...orders, ...orders].map((o) => sales().orderPaid(o)));
  const gmv = orders.reduce((s, o) => s + o.total, 0);
  expect(await sales().report(STAFF, id)).toMatchObject({
    orders: 12,
    gmv,
    refunded: 0,
    buyers: 3,
    viewers: 0,
    conversion: null,
    products: [{ productId: 'p1', units: 12, gmv }],
  });

  const r = refund(orders[0]!.orderId, 500);
  await Promise.all([sales().orderRefunded(r), sales().orderRefunded(r)]);
  await sales().orderRefunded(refund(orders[1]!.orderId, 300));
  expect(await sales().report(STAFF, id)).toMatchObject({ orders: 12, gmv, refunded: 800, netGmv: gmv - 800 });

  // Members are refused the report.
  await expect(sales().report(member(buyers[0]!), id)).rejects.toMatchObject({
    extensions: expect.objectContaining({ code: 'FORBIDDEN' }),
  });
});

test('a refund before its paid event is retried; other sources and unknown rooms credit no room', async () => {
  const id = await room();
  const order = paid(id, new Types.ObjectId().toHexString(), 2000);
  await expect(sales().orderRefunded(refund(order.orderId, 100))).rejects.toThrow(/not recorded yet/);
  await sales().orderPaid(order);
  await sales().orderRefunded(refund(order.orderId, 100));
  expect(await sales().report(STAFF, id)).toMatchObject({ orders: 1, gmv: 2000, refunded: 100, netGmv: 1900 });

  const direct = paid(null, 'm1');
  await sales().orderPaid(direct);
  await sales().orderRefunded(refund(direct.orderId, 100)); // recorded, no room: a no-op
  const ghost = new Types.ObjectId().toHexString();
  await sales().orderPaid(paid(ghost, 'm1'));
  expect((await sales().report(STAFF, ghost)).orders).toBe(0);
  expect(await sales().report(STAFF, id)).toMatchObject({ orders: 1, gmv: 2000, refunded: 100 });
});

test('the report reads its two ledgers by _id only', async () => {
  const id = await room();
  await sales().orderPaid(paid(id, 'm2'));
  await sales().enter(null, id, 'visitor-0003');
  const queries: { coll: string; query: Record<string, unknown> }[] = [];
  svc.db.set('debug', (coll: string, method: string, query: Record<string, unknown>) => {
    // The outbox relay polls the same collections on its own timer (`outbox.*` filters): not the report's reads.
    const relay = Object.keys(query ?? {}).some((k) => k.startsWith('outbox.'));
    if (coll.startsWith('live_') && /^(find|findOne|countDocuments|aggregate)$/.test(method) && !relay) queries.push({ coll, query });
  });
  try {
    expect(await sales().report(STAFF, id)).toMatchObject({ orders: 1, viewers: 1, buyers: 1, conversion: 1 });
  } finally {
    svc.db.set('debug', false);
  }
  expect(queries.length).toBeGreaterThan(0);
  for (const q of queries) expect(Object.keys(q.query)).toEqual(['_id']);
});
