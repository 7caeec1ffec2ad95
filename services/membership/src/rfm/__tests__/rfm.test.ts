import { randomUUID } from 'node:crypto';
import { connect, StringCodec } from 'nats';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, staff, type InfraProcess, registerMember } from '@flywheel/testing';
import { envelope, streamName, type EventData, type EventEnvelope } from '@flywheel/events';
import type { RunningMembership } from '../../main';
import { createSettings } from '../../settings';
import { createRfmService } from '../service';
import { paidEvent, paidOrder, startMembership } from '../../__tests__/support';

let nats: InfraProcess;
let svc: RunningMembership;
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ svc, nats, stop } = await startMembership());
});
afterAll(() => stop());

const DAY = 86_400_000;
const asStaff = () => asGateway('membership', staff());
const call = (query: string, variables: Record<string, unknown> = {}, headers = asStaff()) => gql(svc.url, query, variables, headers);

/** Registers a member through the real login (its registration event places it in NEW). */
const newMember = async (): Promise<string> => (await registerMember(svc.url)).id;

const refundData = (memberId: string, orderId: string, refundId: string, amount: number): EventData<'orders.order.refunded'> => ({
  orderId,
  memberId,
  refundId,
  amount,
  currency: 'CNY',
  restock: [],
  refundedAt: new Date().toISOString(),
});

async function pay(memberId: string, orderId: string, total: number, id = randomUUID()) {
  return svc.bus.publish('orders.order.paid', paidOrder(memberId, total, { orderId }), { id });
}
async function refund(memberId: string, orderId: string, refundId: string, amount: number, id = randomUUID()) {
  return svc.bus.publish('orders.order.refunded', refundData(memberId, orderId, refundId, amount), { id });
}
/** Waits until the consumer has recorded the event as processed. */
const handled = (subject: string, id: string) =>
  eventually(() => svc.db.collection('processed_events').findOne({ _id: `membership_${subject.replace(/\./g, '-')}:${id}` } as never));

const RFM = `query($id: ID!) { member(id: $id) { id rfm { recencyDays frequency monetary segment lastPaidAt
  history(first: 50) { edges { node { from to frequency monetary } } } } } }`;
interface Rfm {
  recencyDays: number | null;
  frequency: number;
  monetary: number;
  segment: string;
  lastPaidAt: string | null;
  history: { edges: { node: { from: string | null; to: string; frequency: number; monetary: number } }[] };
}
async function rfmOf(id: string): Promise<Rfm> {
  const res = await call(RFM, { id });
  expect(res.errors).toBeUndefined();
  return res.data!.member.rfm as Rfm;
}
const untilRfm = (id: string, ok: (r: Rfm) => boolean) =>
  eventually(async () => {
    const r = await rfmOf(id);
    return ok(r) ? r : null;
  });
const transitions = (r: Rfm) => r.history.edges.map((e) => `${e.node.from ?? '-'}>${e.node.to}`).reverse();

describe('order events move members through the segments', () => {
  let memberId: string;

  test('paid orders move a member NEW → GENERAL_VALUE → IMPORTANT_VALUE with exact metrics', async () => {
    memberId = await newMember();
    await untilRfm(memberId, (r) => r.history.edges.length === 1);
    expect(await rfmOf(memberId)).toMatchObject({ segment: 'NEW', frequency: 0, monetary: 0, recencyDays: null, lastPaidAt: null });

    await pay(memberId, `o-${memberId}-1`, 30_000);
    let r = await untilRfm(memberId, (x) => x.frequency === 1);
    expect(r).toMatchObject({ segment: 'NEW', monetary: 30_000, recencyDays: 0 });

    // The segment follows the metrics once the handler has evaluated: wait for the history entry.
    await pay(memberId, `o-${memberId}-2`, 30_000);
    r = await untilRfm(memberId, (x) => x.history.edges.length === 2);
    expect(r).toMatchObject({ segment: 'GENERAL_VALUE', frequency: 2, monetary: 60_000 });

    await pay(memberId, `o-${memberId}-3`, 50_000);
    r = await untilRfm(memberId, (x) => x.history.edges.length === 3);
    expect(r).toMatchObject({ segment: 'IMPORTANT_VALUE', monetary: 110_000, recencyDays: 0 });
    expect(transitions(r)).toEqual(['->NEW', 'NEW>GENERAL_VALUE', 'GENERAL_VALUE>IMPORTANT_VALUE']);
    expect(r.history.edges[0]!.node).toMatchObject({ frequency: 3, monetary: 110_000 });
  });

  test('a redelivered paid event (same id) and a re-published one (new id, same order) change nothing', async () => {
    const entries = () => svc.db.collection('rfm_entries').countDocuments({ accountId: memberId });
    const before = { rfm: await rfmOf(memberId), entries: await entries() };
    const env = paidEvent(memberId, 50_000, { orderId: `o-${memberId}-3` });
    // As the bus would redeliver after a crash before the processed record: the handler itself is a no-op.
    await svc.modules.rfm.on!['orders.order.paid']!(env);
    await svc.modules.rfm.on!['orders.order.paid']!(env);
    const again = await pay(memberId, `o-${memberId}-3`, 50_000);
    await handled('orders.order.paid', again.id);
    expect(await rfmOf(memberId)).toEqual(before.rfm);
    expect(await entries()).toBe(before.entries);
  });

  test('refunds reduce monetary; a full refund drops the order from frequency; a replayed refund changes nothing', async () => {
    const id = await newMember();
    await pay(id, `o-${id}-a`, 40_000);
    await pay(id, `o-${id}-b`, 20_000);
    await untilRfm(id, (r) => r.frequency === 2);

    await refund(id, `o-${id}-a`, `r-${id}-1`, 15_000);
    let r = await untilRfm(id, (x) => x.monetary === 45_000);
    expect(r).toMatchObject({ frequency: 2, segment: 'GENERAL_VALUE' });

    const rest = await refund(id, `o-${id}-a`, `r-${id}-2`, 25_000);
    r = await untilRfm(id, (x) => x.history.edges.length === 3);
    expect(r).toMatchObject({ frequency: 1, monetary: 20_000, segment: 'NEW' });
    expect(transitions(r)).toEqual(['->NEW', 'NEW>GENERAL_VALUE', 'GENERAL_VALUE>NEW']);

    // The same refund again: directly (redelivery) and re-published under a new event id.
    const replay = envelope('orders.order.refunded', refundData(id, `o-${id}-a`, `r-${id}-2`, 25_000), { id: rest.id });
    await svc.modules.rfm.on!['orders.order.refunded']!(replay);
    const again = await refund(id, `o-${id}-a`, `r-${id}-2`, 25_000);
    await handled('orders.order.refunded', again.id);
    // A refund beyond what was paid is capped: monetary never goes below what the other orders paid.
    const over = await refund(id, `o-${id}-a`, `r-${id}-3`, 5_000);
    await handled('orders.order.refunded', over.id);
    expect(await rfmOf(id)).toEqual(r);
  });

  test('a refund that arrives before its payment is retried until the payment is recorded', async () => {
    const id = await newMember();
    await pay(id, `o-${id}-x`, 10_000);
    await refund(id, `o-${id}-y`, `r-${id}-y`, 10_000);
    await new Promise((res) => setTimeout(res, 300));
    await pay(id, `o-${id}-y`, 10_000);
    await eventually(() => svc.db.collection('rfm_order_entries').findOne({ _id: `o-${id}-y:2` } as never), 15_000);
    const r = await untilRfm(id, (x) => x.history.edges.length === 3);
    expect(r).toMatchObject({ frequency: 1, monetary: 10_000, segment: 'NEW' });
    expect(transitions(r)).toEqual(['->NEW', 'NEW>GENERAL_VALUE', 'GENERAL_VALUE>NEW']);
  }, 30_000);
});

describe('concurrency', () => {
  test('two replicas handling the same events at once apply each order and refund exactly once', async () => {
    const memberId = new Types.ObjectId().toHexString();
    const deps = {
      db: svc.db,
      bus: svc.bus,
      logger: svc.logger,
      settings: createSettings(svc.db),
      kick: () => svc.relay?.kick(),
      now: () => new Date(),
    };
    const replicas = [createRfmService(deps), createRfmService(deps)];
    const paid = [1, 2, 3, 4].map((n) => paidEvent(memberId, 30_000, { orderId: `c-${memberId}-${n}` }));
    await Promise.all(paid.flatMap((env) => replicas.map((rep) => rep.onPaid(env))));
    const refunds = [
      envelope('orders.order.refunded', refundData(memberId, `c-${memberId}-1`, 'r1', 30_000), { id: randomUUID() }),
      envelope('orders.order.refunded', refundData(memberId, `c-${memberId}-2`, 'r2', 10_000), { id: randomUUID() }),
      envelope('orders.order.refunded', refundData(memberId, `c-${memberId}-2`, 'r3', 5_000), { id: randomUUID() }),
    ];
    const late = paidEvent(memberId, 30_000, { orderId: `c-${memberId}-5` });
    const all: EventEnvelope[] = [...refunds, late];
    await Promise.all(
      all.flatMap((env) =>
        replicas.map((rep) =>
          env.type === 'orders.order.paid'
            ? rep.onPaid(env as EventEnvelope<'orders.order.paid'>)
            : rep.onRefunded(env as EventEnvelope<'orders.order.refunded'>),
        ),
      ),
    );
    // 5 paid (150000) − 45000 refunded; order 1 fully refunded.
    const view = await replicas[0]!.profileOf(memberId, null);
    expect(view).toMatchObject({ frequency: 4, monetary: 105_000, segment: 'IMPORTANT_VALUE' });
    expect(await svc.db.collection('rfm_entries').countDocuments({ accountId: memberId })).toBe(8);
    const history = await svc.db.collection('rfm_segment_history').find({ accountId: memberId }).sort({ seq: 1 }).toArray();
    for (let i = 1; i < history.length; i++) expect(history[i]!.from).toBe(history[i - 1]!.to);
    expect(history.at(-1)?.to).toBe('IMPORTANT_VALUE');
  });
});

const SIZES = '{ segmentSizes { segment count } }';
const sizes = async () => {
  const res = await call(SIZES);
  expect(res.errors).toBeUndefined();
  return Object.fromEntries((res.data!.segmentSizes as { segment: string; count: number }[]).map((s) => [s.segment, s.count]));
};

describe('staff queries', () => {
  test('segment sizes count every placed member; segment members page through core members', async () => {
    const before = await sizes();
    const ids = [await newMember(), await newMember(), await newMember()];
    for (const id of ids) {
      await pay(id, `s-${id}-1`, 1_000);
      await pay(id, `s-${id}-2`, 1_000);
    }
    for (const id of ids) await untilRfm(id, (r) => r.segment === 'GENERAL_VALUE');
    // Sizes come from the read model, written just after the placement.
    const after = await eventually(async () => {
      const s = await sizes();
      return s.GENERAL_VALUE === (before.GENERAL_VALUE ?? 0) + 3 ? s : null;
    });
    expect(after.NEW).toBe(before.NEW);
    expect(Object.keys(after).sort()).toEqual([
      'DORMANT',
      'GENERAL_VALUE',
      'IMPORTANT_DEVELOP',
      'IMPORTANT_RETAIN',
      'IMPORTANT_VALUE',
      'NEW',
    ]);

    const q = `query($after: String) { segmentMembers(segment: GENERAL_VALUE, first: 2, after: $after) {
      edges { node { id nickname rfm { segment } } cursor } pageInfo { hasNextPage endCursor } } }`;
    const seen: string[] = [];
    let cursor: string | null = null;
    for (let page = 0; page < 20; page++) {
      const res = await call(q, { after: cursor });
      expect(res.errors).toBeUndefined();
      const conn = res.data!.segmentMembers;
      expect(conn.edges.length).toBeLessThanOrEqual(2);
      for (const e of conn.edges) {
        expect(e.node.rfm.segment).toBe('GENERAL_VALUE');
        seen.push(e.node.id);
      }
      if (!conn.pageInfo.hasNextPage) break;
      cursor = conn.pageInfo.endCursor;
    }
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(after.GENERAL_VALUE);
    for (const id of ids) expect(seen).toContain(id);
  });

  test('RFM is staff only: a customer gets FORBIDDEN on the queries and null for Member.rfm', async () => {
    const id = await newMember();
    const asCustomer = asGateway('membership', customer(id));
    for (const q of [
      SIZES,
      '{ segmentMembers(segment: NEW) { edges { cursor } } }',
      '{ rfmSettings { recentDays } }',
      'mutation { updateRfmSettings(input: { recentDays: 10 }) { recentDays } }',
    ]) {
      const res = await call(q, {}, asCustomer);
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    const me = await call('{ me { id rfm { segment } } }', {}, asCustomer);
    expect(me.data?.me).toEqual({ id, rfm: null });
    expect((await call(SIZES, {}, asGateway('membership', null))).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('settings: defaults, a valid update is saved, bad values are BAD_USER_INPUT and change nothing', async () => {
    const Q = '{ rfmSettings { recentDays dormantDays highFrequency highMonetary } }';
    const U =
      'mutation($i: UpdateRfmSettingsInput!) { updateRfmSettings(input: $i) { recentDays dormantDays highFrequency highMonetary } }';
    const defaults = { recentDays: 30, dormantDays: 180, highFrequency: 3, highMonetary: 100_000 };
    expect((await call(Q)).data?.rfmSettings).toEqual(defaults);
    for (const bad of [{ recentDays: 180 }, { dormantDays: 20 }, { highFrequency: 1 }, { highMonetary: -5 }, { recentDays: 0 }]) {
      const res = await call(U, { i: bad });
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect((await call(Q)).data?.rfmSettings).toEqual(defaults);
    const ok = await call(U, { i: { recentDays: 14, highMonetary: 200_000 } });
    expect(ok.data?.updateRfmSettings).toEqual({ ...defaults, recentDays: 14, highMonetary: 200_000 });
    expect((await call(Q)).data?.rfmSettings).toEqual({ ...defaults, recentDays: 14, highMonetary: 200_000 });
    expect((await call(U, { i: { recentDays: 30, highMonetary: 100_000 } })).data?.updateRfmSettings).toEqual(defaults);
  });
});

/** Every `membership.segment.changed` event on the stream for one member. */
async function segmentEvents(memberId: string): Promise<{ id: string; data: { from: string | null; to: string } }[]> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(streamName('membership'));
    const out: { id: string; type: string; data: { memberId: string; from: string | null; to: string } }[] = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(streamName('membership'), { seq }).catch(() => null);
      if (!m || m.subject !== 'membership.segment.changed') continue;
      const env = JSON.parse(StringCodec().decode(m.data));
      if (env.data.memberId === memberId) out.push(env);
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('the sweep re-evaluates as recency decays', () => {
  test('IMPORTANT_VALUE → IMPORTANT_RETAIN → DORMANT, each change published exactly once; a re-run changes nothing', async () => {
    const id = await newMember();
    for (const n of [1, 2, 3]) await pay(id, `w-${id}-${n}`, 40_000);
    await untilRfm(id, (r) => r.segment === 'IMPORTANT_VALUE');

    const t0 = Date.now();
    const first = await svc.sweep(new Date(t0 + 40 * DAY));
    expect(first.rfm!.evaluated).toBeGreaterThanOrEqual(1);
    expect(first.rfm!.changed).toBeGreaterThanOrEqual(1);
    let r = await rfmOf(id);
    expect(r.segment).toBe('IMPORTANT_RETAIN');
    expect((await svc.sweep(new Date(t0 + 40 * DAY))).rfm).toMatchObject({ changed: 0 });

    await svc.sweep(new Date(t0 + 200 * DAY));
    expect((await svc.sweep(new Date(t0 + 200 * DAY))).rfm).toMatchObject({ changed: 0 });
    // An earlier instant never undoes a later decision on the same metrics.
    expect((await svc.sweep(new Date(t0 + 50 * DAY))).rfm).toMatchObject({ changed: 0 });
    r = await rfmOf(id);
    expect(r.segment).toBe('DORMANT');
    const expected = [
      '->NEW',
      'NEW>GENERAL_VALUE',
      'GENERAL_VALUE>IMPORTANT_VALUE',
      'IMPORTANT_VALUE>IMPORTANT_RETAIN',
      'IMPORTANT_RETAIN>DORMANT',
    ];
    expect(transitions(r)).toEqual(expected);

    const sizes200 = await sizes();
    expect(sizes200.DORMANT).toBeGreaterThanOrEqual(1);
    expect(sizes200.IMPORTANT_VALUE).toBe(0);

    await svc.relay!.flush();
    const events = await eventually(async () => {
      const evs = await segmentEvents(id);
      return evs.length >= expected.length ? evs : null;
    });
    await svc.relay!.flush();
    expect(await segmentEvents(id)).toHaveLength(expected.length);
    expect(new Set(events.map((e) => e.id)).size).toBe(expected.length);
    expect(events.map((e) => `${e.data.from ?? '-'}>${e.data.to}`)).toEqual(expected);
  }, 60_000);
});
