import { Types } from 'mongoose';
import { eventually, privateNats, recordIdReads, serviceEnv, type InfraProcess } from '@flywheel/testing';
import { streamName, type EventEnvelope } from '@flywheel/events';
import { loadServiceConfig, type Config } from '../config';
import { start, type RunningMembership } from '../main';
import type { MembershipModule } from '../modules';
import { paidEvent } from './support';

// The paid-event path as it runs hot: ledger heads are the ones this replica wrote last (never
// read when nothing moved elsewhere), the processed-event record is looked up only on a
// redelivery, and module handlers run side by side. Two replicas on one database and one NATS.

let nats: InfraProcess;
let config: Config;
const replicas: RunningMembership[] = [];

beforeAll(async () => {
  nats = await privateNats();
  config = loadServiceConfig(serviceEnv('membership', nats.url));
  for (let i = 0; i < 2; i++) replicas.push(await start(config, { sweepers: false }));
});
afterAll(async () => {
  await replicas[0]?.db.dropDatabase();
  for (const r of replicas) await r.stop();
  await nats.stop();
});

const db = () => replicas[0]!.db;

/** Every module's paid handler of one replica, side by side (what its consumer runs per event). */
async function handle(replica: RunningMembership, env: EventEnvelope<'orders.order.paid'>) {
  const modules = Object.values(replica.modules) as MembershipModule[];
  await Promise.all(modules.map((m) => m.on?.['orders.order.paid']?.(env)));
}

interface Entry {
  _id: string;
  seq: number;
  op: string;
  balance: number;
  delta: number;
}
const entries = (accountId: string) =>
  db().collection<Entry>('loyalty_entries').find({ accountId }).sort({ seq: 1 }).toArray() as Promise<Entry[]>;

/** Everything a member's paid orders wrote, to compare before and after a replay. */
async function footprint(memberId: string) {
  const count = (name: string, filter: Record<string, unknown>) => db().collection(name).countDocuments(filter);
  const loyalty = replicas[0]!.modules.loyalty.loyalty;
  return {
    points: await loyalty.pointsOf(memberId),
    growth: await loyalty.growthOf(memberId),
    tier: await loyalty.tierOf(memberId),
    lotEntries: await count('loyalty_entries', { accountId: { $in: [`p:${memberId}`, `g:${memberId}`] } }),
    tierEntries: await count('tier_changes', { accountId: memberId }),
    orders: await count('loyalty_orders', { memberId }),
    rfmEntries: await count('rfm_entries', { accountId: memberId }),
    rfm: await replicas[0]!.modules.rfm.rfm.profileOf(memberId, null),
  };
}

test('both replicas handling every paid event of one member at once: each order earns once, balances exact, one tier change', async () => {
  const memberId = new Types.ObjectId().toHexString();
  // ¥50 each: 50 growth, so the 20th order lifts the member to SILVER (1,000) while others are in flight.
  const events = Array.from({ length: 24 }, () => paidEvent(memberId, 5_000));
  await Promise.all(events.flatMap((env) => replicas.map((r) => handle(r, env))));

  const growth = await entries(`g:${memberId}`);
  expect(growth.map((e) => e.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  expect(new Set(growth.map((e) => e.op)).size).toBe(24);
  expect(growth.at(-1)?.balance).toBe(1_200);

  // Points at the tier the order was handled at: 50 at REGULAR, 60 at SILVER; the ledger holds
  // exactly what the orders' records say they earned.
  const orders = await db()
    .collection<{ points: number }>('loyalty_orders')
    .find({ memberId } as never)
    .toArray();
  expect(orders).toHaveLength(24);
  for (const o of orders) expect([50, 60]).toContain(o.points);
  const points = await entries(`p:${memberId}`);
  expect(points).toHaveLength(24);
  expect(points.map((e) => e.seq)).toEqual(Array.from({ length: 24 }, (_, i) => i + 1));
  expect(points.at(-1)?.balance).toBe(orders.reduce((s, o) => s + o.points, 0));

  const tiers = await db().collection('tier_changes').find({ accountId: memberId }).sort({ seq: 1 }).toArray();
  expect(tiers.filter((t) => t.direction).map((t) => [t.tier, t.direction])).toEqual([['SILVER', 'UP']]);
  expect(tiers.at(-1)?.tier).toBe('SILVER');

  const rfm = await replicas[1]!.modules.rfm.rfm.profileOf(memberId, null);
  expect(rfm).toMatchObject({ frequency: 24, monetary: 120_000 });
  expect(await db().collection('rfm_entries').countDocuments({ accountId: memberId })).toBe(24);
});

test('a head another replica moved since this one wrote it costs a duplicate and a read, never a second entry', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const [a, b] = replicas as [RunningMembership, RunningMembership];
  const first = paidEvent(memberId, 10_000);
  const second = paidEvent(memberId, 20_000);
  const third = paidEvent(memberId, 30_000);
  await handle(a, first);
  // Replica b appends behind a's back: a's remembered heads (seq 1) are stale now.
  await handle(b, second);
  await handle(a, third);
  for (const account of [`p:${memberId}`, `g:${memberId}`]) {
    const stored = await entries(account);
    expect(stored.map((e) => [e.seq, e.op])).toEqual(
      [first, second, third].map((env, i) => [i + 1, `${account}:earn:${env.data.orderId}`]),
    );
    expect(stored.map((e) => e.balance)).toEqual([100, 300, 600]);
  }
  expect(await db().collection('rfm_entries').countDocuments({ accountId: memberId })).toBe(3);

  // Its heads current again, a appends the next order's entries without reading a head first.
  const lotReads = recordIdReads(a.db, 'loyalty_entries');
  await handle(a, paidEvent(memberId, 30_000));
  expect(lotReads.stop()).toEqual([]);
  expect((await entries(`p:${memberId}`)).map((e) => e.balance)).toEqual([100, 300, 600, 900]);
  const rfmReads = recordIdReads(a.db, 'rfm_entries');
  await handle(a, paidEvent(memberId, 5_000)); // still GENERAL_VALUE: no placement to re-check
  expect(rfmReads.stop()).toEqual([]);
  expect(await a.modules.rfm.rfm.profileOf(memberId, null)).toMatchObject({ frequency: 5, monetary: 95_000, segment: 'GENERAL_VALUE' });
});

test('a paid event delivered again after a restart (by the bus and by hand) changes nothing', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const events = [paidEvent(memberId, 80_000), paidEvent(memberId, 30_000), paidEvent(memberId, 12_345)];
  const durable = 'membership_orders-order-paid';
  const processed = (id: string) =>
    db()
      .collection('processed_events')
      .findOne({ _id: `${durable}:${id}` } as never);
  for (const env of events) await replicas[0]!.bus.publishEnvelope(env as EventEnvelope);
  for (const env of events) await eventually(() => processed(env.id));
  const before = await footprint(memberId);
  expect(before).toMatchObject({ growth: 1_223, lotEntries: 6, orders: 3, rfmEntries: 3, rfm: { frequency: 3, monetary: 122_345 } });

  // A replica that starts now knows no ledger head and no queue: the same envelopes arrive again
  // under new message ids (a re-publish after the stream's duplicate window, so a first delivery
  // that skips the processed-record look-up), and its handlers also run them by hand.
  const restarted = await start(config, { sweepers: false });
  try {
    for (const env of events) {
      await restarted.bus.js.publish(env.type, new TextEncoder().encode(JSON.stringify(env)), { msgID: `again-${env.id}` });
    }
    for (const env of events) await handle(restarted, env);
    const marker = paidEvent(new Types.ObjectId().toHexString(), 100);
    await restarted.bus.publishEnvelope(marker as EventEnvelope);
    await eventually(() => processed(marker.id));
    await eventually(async () => {
      const info = await restarted.bus.jsm.consumers.info(streamName('orders'), durable).catch(() => null);
      return info ? info.num_pending === 0 && info.num_ack_pending === 0 : true;
    });
    expect(await footprint(memberId)).toEqual(before);
  } finally {
    await restarted.stop();
  }
});

test('a spend the head this replica knows cannot cover is decided again on the real head, and taken once', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const [a, b] = replicas as [RunningMembership, RunningMembership];
  await a.modules.loyalty.loyalty.grantPoints(memberId, `grant-a:${memberId}`, 100, 'test');
  // Granted by the other replica: a still knows the head of 100 points.
  await b.modules.loyalty.loyalty.grantPoints(memberId, `grant-b:${memberId}`, 400, 'test');
  const taken = await a.modules.loyalty.loyalty.spend(memberId, `checkout-${memberId}`, 300, { firstAttempt: true });
  expect(taken.reduce((s, l) => s + l.n, 0)).toBe(300);
  const stored = await entries(`p:${memberId}`);
  expect(stored.map((e) => [e.seq, e.delta, e.balance])).toEqual([
    [1, 100, 100],
    [2, 400, 500],
    [3, -300, 200],
  ]);
  // What a cannot cover against the real head is refused, and nothing is written.
  await expect(a.modules.loyalty.loyalty.spend(memberId, `checkout-2-${memberId}`, 201, { firstAttempt: true })).rejects.toThrow(
    /Not enough points/,
  );
  expect(await entries(`p:${memberId}`)).toHaveLength(3);
});
