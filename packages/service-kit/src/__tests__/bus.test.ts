// The SDK must be started for spans to be real and for the W3C propagator to be registered.
import '@flywheel/service-kit/telemetry';
import { context, trace, TraceFlags, type SpanContext } from '@opentelemetry/api';
import type { Connection } from 'mongoose';
import { headers as natsHeaders } from 'nats';
import { eventually, mongoUrl, privateNats, uniqueDbName, type InfraProcess } from '@flywheel/testing';
import { AppError, BusRequestError, connectBus, connectMongo, createLogger, type Bus } from '@flywheel/service-kit';
import {
  DEAD_LETTER_STREAM,
  NOTIFICATIONS_STREAM,
  streamName,
  streamSubjects,
  type EventEnvelope,
  type NotificationEnvelope,
  type ServiceName,
} from '@flywheel/events';
import { sleep, storedEventIds, storedMessages } from './support';

// Real nats-server (one of this file's own) and the real FerretDB. Each test uses its own
// subject / consuming-service pair, so durables and stream contents do not interfere.

const logger = createLogger('test', 'silent');
const enc = new TextEncoder();
const dec = new TextDecoder();

let nats: InfraProcess;
let db: Connection;
const buses: Bus[] = [];

async function bus(service: ServiceName): Promise<Bus> {
  const b = await connectBus({ url: nats.url, service, logger, db });
  buses.push(b);
  return b;
}

beforeAll(async () => {
  nats = await privateNats();
  db = await connectMongo(mongoUrl(), uniqueDbName('bus'));
});
afterAll(async () => {
  for (const b of buses) await b.drain().catch(() => undefined);
  await db.dropDatabase();
  await db.close();
  await nats.stop();
});

const roomScheduled = (roomId: string) => ({ roomId, scheduledAt: '2030-01-01T10:00:00.000Z' });

describe('publish', () => {
  test('publishing the same event id twice stores one message, with the contract envelope', async () => {
    const live = await bus('live');
    const before = Date.now();
    const first = await live.publish('live.room.scheduled', roomScheduled('room-1'), { id: 'evt-room-1' });
    const second = await live.publish('live.room.scheduled', roomScheduled('room-1'), { id: 'evt-room-1' });
    expect(second.id).toBe(first.id);

    const stored = await storedMessages(live.jsm, streamName('live'), 'live.room.scheduled');
    expect(stored.map((m) => m.json<EventEnvelope>().id).filter((id) => id === 'evt-room-1')).toHaveLength(1);
    const msg = stored.find((m) => m.json<EventEnvelope>().id === 'evt-room-1')!;
    expect(msg.header.get('Nats-Msg-Id')).toBe('evt-room-1');

    const env = msg.json<EventEnvelope<'live.room.scheduled'>>();
    expect(Object.keys(env).sort()).toEqual(['data', 'id', 'occurredAt', 'source', 'type', 'version']);
    expect(env).toEqual({
      id: 'evt-room-1',
      type: 'live.room.scheduled',
      version: 1,
      occurredAt: first.occurredAt,
      source: 'live',
      data: roomScheduled('room-1'),
    });
    expect(new Date(env.occurredAt).toISOString()).toBe(env.occurredAt);
    expect(new Date(env.occurredAt).getTime()).toBeGreaterThanOrEqual(before - 1_000);
    expect(new Date(env.occurredAt).getTime()).toBeLessThanOrEqual(Date.now() + 1_000);
  });

  test('a payload that breaks the contract throws before anything is published', async () => {
    const live = await bus('live');
    const before = (await live.jsm.streams.info(streamName('live'))).state.messages;
    await expect(live.publish('live.room.scheduled', { roomId: 'room-2', scheduledAt: 'tomorrow' })).rejects.toThrow();
    await expect(live.publish('live.room.scheduled', { roomId: '' } as any)).rejects.toThrow();
    expect((await live.jsm.streams.info(streamName('live'))).state.messages).toBe(before);
  });

  test('each id without an explicit one is new: two publishes store two messages', async () => {
    const live = await bus('live');
    const a = await live.publish('live.room.scheduled', roomScheduled('room-3'));
    const b = await live.publish('live.room.scheduled', roomScheduled('room-3'));
    expect(a.id).not.toBe(b.id);
    const ids = await storedEventIds(live.jsm, streamName('live'));
    expect(ids).toEqual(expect.arrayContaining([a.id, b.id]));
  });
});

describe('streams', () => {
  test("the publisher's stream holds exactly its event subjects; a second replica leaves one stream", async () => {
    const first = await bus('membership');
    const info = await first.jsm.streams.info(streamName('membership'));
    const own = ['membership.member.erased', 'membership.member.registered', 'membership.segment.changed', 'membership.tier.changed'];
    expect([...info.config.subjects].sort()).toEqual(own);

    const second = await bus('membership');
    const again = await second.jsm.streams.info(streamName('membership'));
    expect([...again.config.subjects].sort()).toEqual(own);
    expect(again.created).toEqual(info.created);

    const names = await second.jsm.streams.names().next();
    expect(names.filter((n) => n === streamName('membership'))).toHaveLength(1);
    expect(names.filter((n) => n === DEAD_LETTER_STREAM)).toHaveLength(1);
    const dl = await second.jsm.streams.info(DEAD_LETTER_STREAM);
    expect(dl.config.subjects).toEqual(['deadletter.>']);
  });

  test('two replicas starting at the same moment both connect and share one stream', async () => {
    const [a, b] = await Promise.all([bus('orders'), bus('orders')]);
    expect(a.connected() && b.connected()).toBe(true);
    const names = await a.jsm.streams.names().next();
    expect(names.filter((n) => n === streamName('orders'))).toHaveLength(1);
    expect((await a.jsm.streams.info(streamName('orders'))).config.subjects).toEqual(streamSubjects('orders'));
  });

  test('a service gets one stream of its own holding exactly its event subjects', async () => {
    // Every service publishes events now: the stream a connecting service creates has its subjects only.
    const community = await bus('community');
    const { config } = await community.jsm.streams.info(streamName('community'));
    expect(config.subjects.sort()).toEqual(streamSubjects('community').sort());
    expect(config.subjects.every((s) => s.startsWith('community.'))).toBe(true);
  });
});

describe('consume', () => {
  test('a durable consumer receives an event; the same event delivered again is a no-op', async () => {
    const membership = await bus('membership');
    const referral = await bus('referral');
    const seen: EventEnvelope<'membership.member.registered'>[] = [];
    await referral.consume('membership.member.registered', async (env) => {
      seen.push(env);
    });
    const durable = 'referral_membership-member-registered';
    expect((await referral.jsm.consumers.info(streamName('membership'), durable)).config.durable_name).toBe(durable);

    const data = { memberId: 'm-1', registeredAt: '2030-01-01T00:00:00.000Z', invitedByCode: 'CODE1' };
    const env = await membership.publish('membership.member.registered', data, { id: 'evt-reg-1' });
    await eventually(async () => seen.length === 1);
    expect(seen[0]).toEqual(env);
    expect(await db.collection('processed_events').findOne({ _id: `${durable}:evt-reg-1` as any })).not.toBeNull();

    // The same envelope arrives again under another message id (a re-publish the stream's
    // dedupe window no longer covers); a later event proves the duplicate was processed first.
    await membership.js.publish('membership.member.registered', enc.encode(JSON.stringify(env)), { msgID: 'another-msg-id' });
    await membership.publish('membership.member.registered', { ...data, memberId: 'm-2' }, { id: 'evt-reg-2' });
    await eventually(async () => seen.some((e) => e.id === 'evt-reg-2'));
    expect(seen.map((e) => e.id)).toEqual(['evt-reg-1', 'evt-reg-2']);
    const info = await referral.jsm.consumers.info(streamName('membership'), durable);
    expect(info.num_ack_pending).toBe(0);
  });

  test('a handler that fails twice then succeeds is retried and its effect happens once', async () => {
    const catalog = await bus('catalog');
    const community = await bus('community');
    const attempts = new Map<string, number>();
    const effects: string[] = [];
    await community.consume(
      'catalog.product.changed',
      async (env) => {
        const n = (attempts.get(env.id) ?? 0) + 1;
        attempts.set(env.id, n);
        if (n <= 2) throw new Error(`transient failure ${n}`);
        effects.push(env.id);
      },
      { maxAttempts: 5, backoffMs: [50] },
    );
    await catalog.publish('catalog.product.changed', { productId: 'p-1', status: 'ACTIVE' }, { id: 'evt-prod-1' });
    await eventually(async () => effects.length === 1, 10_000, 25);
    await sleep(300);
    expect(effects).toEqual(['evt-prod-1']);
    expect(attempts.get('evt-prod-1')).toBe(3);
    const dl = await storedMessages(catalog.jsm, DEAD_LETTER_STREAM, 'deadletter.community_catalog-product-changed');
    expect(dl).toHaveLength(0);
  });

  test('a handler that always fails ends after maxAttempts in the dead-letter stream', async () => {
    const membership = await bus('membership');
    const orders = await bus('orders');
    let calls = 0;
    await orders.consume(
      'membership.member.erased',
      async () => {
        calls++;
        throw new Error('cannot erase: downstream refused');
      },
      { maxAttempts: 3, backoffMs: [50] },
    );
    const env = await membership.publish('membership.member.erased', { memberId: 'm-9' }, { id: 'evt-erase-1' });
    const subject = 'deadletter.orders_membership-member-erased';
    const [dead] = await eventually(async () => {
      const msgs = await storedMessages(orders.jsm, DEAD_LETTER_STREAM, subject);
      return msgs.length ? msgs : null;
    });
    expect(dead!.header.get('Flywheel-Original-Subject')).toBe('membership.member.erased');
    expect(dead!.header.get('Flywheel-Error')).toBe('cannot erase: downstream refused');
    expect(dead!.json()).toEqual(env);
    await sleep(400); // no further attempt after the dead letter
    expect(calls).toBe(3);
    expect(await storedMessages(orders.jsm, DEAD_LETTER_STREAM, subject)).toHaveLength(1);
    expect(await db.collection('processed_events').findOne({ _id: 'orders_membership-member-erased:evt-erase-1' as any })).toBeNull();
    const info = await orders.jsm.consumers.info(streamName('membership'), 'orders_membership-member-erased');
    expect(info.num_ack_pending).toBe(0);
    expect(info.num_pending).toBe(0);
  });

  test("processedLookup 'redelivered': a first delivery runs without the look-up, a redelivery already recorded is only acknowledged", async () => {
    const catalog = await bus('catalog');
    const content = await bus('content');
    const durable = 'content_catalog-product-changed';
    const calls: string[] = [];
    await content.consume(
      'catalog.product.changed',
      async (env) => {
        calls.push(env.id);
        if (env.id === 'evt-lookup-2') {
          // Recorded (by a replica whose acknowledgement was then lost), yet this attempt fails.
          await db.collection('processed_events').insertOne({ _id: `${durable}:${env.id}`, at: new Date() } as any);
          throw new Error('lost after recording');
        }
      },
      { maxAttempts: 5, backoffMs: [50], processedLookup: 'redelivered' },
    );
    // Recorded before it was ever delivered (a re-publish): the handler runs, it is a no-op by its own claims.
    await db.collection('processed_events').insertOne({ _id: `${durable}:evt-lookup-1`, at: new Date() } as any);
    await catalog.publish('catalog.product.changed', { productId: 'p-l1', status: 'ACTIVE' }, { id: 'evt-lookup-1' });
    await catalog.publish('catalog.product.changed', { productId: 'p-l2', status: 'ACTIVE' }, { id: 'evt-lookup-2' });
    await catalog.publish('catalog.product.changed', { productId: 'p-l3', status: 'ACTIVE' }, { id: 'evt-lookup-3' });
    await eventually(async () => {
      const info = await content.jsm.consumers.info(streamName('catalog'), durable);
      return info.num_pending === 0 && info.num_ack_pending === 0 && calls.includes('evt-lookup-3');
    });
    await sleep(300);
    // The redelivery of evt-lookup-2 found its record and never reached the handler.
    expect(calls.filter((id) => id.startsWith('evt-lookup-')).sort()).toEqual(['evt-lookup-1', 'evt-lookup-2', 'evt-lookup-3']);
    expect(await db.collection('processed_events').findOne({ _id: `${durable}:evt-lookup-3` as any })).not.toBeNull();
  });

  test('a malformed message goes to the dead-letter subject at once without calling the handler', async () => {
    const orders = await bus('orders');
    const membership = await bus('membership');
    const handled: string[] = [];
    await membership.consume(
      'orders.order.placed',
      async (env) => {
        handled.push(env.id);
      },
      { maxAttempts: 5, backoffMs: [50] },
    );
    const placed = {
      orderId: 'o-1',
      memberId: 'm-1',
      total: 1200,
      currency: 'CNY' as const,
      lines: [{ skuId: 's-1', productId: 'p-1', quantity: 2, unitPrice: 600 }],
      source: { kind: 'DIRECT' as const },
    };
    const base = { id: 'x', type: 'orders.order.placed', version: 1, occurredAt: new Date().toISOString(), source: 'orders', data: placed };
    // Not JSON at all; an envelope typed for another subject; a version newer than the consumer's.
    await orders.js.publish('orders.order.placed', enc.encode('{not json'), { msgID: 'bad-1' });
    await orders.js.publish('orders.order.placed', enc.encode(JSON.stringify({ ...base, id: 'bad-2', type: 'orders.order.paid' })), {
      msgID: 'bad-2',
    });
    await orders.js.publish('orders.order.placed', enc.encode(JSON.stringify({ ...base, id: 'bad-3', version: 2 })), { msgID: 'bad-3' });
    // Data that breaks the contract: zod's message is multi-line, which a NATS header cannot hold.
    await orders.js.publish('orders.order.placed', enc.encode(JSON.stringify({ ...base, id: 'bad-4', data: { ...placed, total: 'x' } })), {
      msgID: 'bad-4',
    });
    await orders.publish('orders.order.placed', placed, { id: 'good-1' });

    await eventually(async () => handled.includes('good-1'));
    expect(handled).toEqual(['good-1']);
    const dead = await storedMessages(orders.jsm, DEAD_LETTER_STREAM, 'deadletter.membership_orders-order-placed');
    expect(dead.map((m) => dec.decode(m.data))).toEqual([
      '{not json',
      JSON.stringify({ ...base, id: 'bad-2', type: 'orders.order.paid' }),
      JSON.stringify({ ...base, id: 'bad-3', version: 2 }),
      JSON.stringify({ ...base, id: 'bad-4', data: { ...placed, total: 'x' } }),
    ]);
    for (const m of dead) {
      expect(m.header.get('Flywheel-Original-Subject')).toBe('orders.order.placed');
      expect(m.header.get('Flywheel-Error')).not.toBe('');
    }
    expect(dead[2]!.header.get('Flywheel-Error')).toMatch(/newer than this consumer/);
  });
});

describe('notifications stream', () => {
  const at = { startsAt: '2030-01-01T10:00:00.000Z', sentAt: '2030-01-01T09:00:00.000Z' };
  const reminder = (memberId: string) => ({ memberId, roomId: 'room-n', stage: 'H1' as const, title: '新品首发', ...at });

  test("a notification goes to NOTIFICATIONS, not its publisher's stream; `notifications.>` and its own subject both consume it", async () => {
    const live = await bus('live');
    const streamOf = async (name: string) => (await live.jsm.streams.info(name)).config.subjects;
    expect(await streamOf(NOTIFICATIONS_STREAM)).toEqual(['notifications.>']);
    expect(await streamOf(streamName('live'))).toEqual(streamSubjects('live'));
    expect(streamSubjects('live')).not.toContain('notifications.live.reminder');

    const channel = await bus('community'); // a delivery channel: every notification, whoever publishes
    const own = await bus('referral'); // one kind only
    const all: NotificationEnvelope[] = [];
    const one: string[] = [];
    await channel.consume('notifications.>', async (env) => void all.push(env));
    await own.consume('notifications.live.reminder', async (env) => void one.push(env.data.memberId));
    const info = await channel.jsm.consumers.info(NOTIFICATIONS_STREAM, 'community_notifications-all');
    expect(info.config.filter_subject).toBe('notifications.>');

    const env = await live.publish('notifications.live.reminder', reminder('m-n1'), { id: 'evt-n1' });
    // An envelope stored under the old subject (an outbox record from before the rename) is published under the new one.
    await live.publishEnvelope({ ...env, id: 'evt-n2', type: 'live.notification.reminder' as never, data: reminder('m-n2') });
    await eventually(async () => all.length === 2 && one.length === 2);
    expect(all[0]).toEqual(env);
    expect(all.map((e) => [e.type, e.data.memberId])).toEqual([
      ['notifications.live.reminder', 'm-n1'],
      ['notifications.live.reminder', 'm-n2'],
    ]);
    expect(one).toEqual(['m-n1', 'm-n2']);
    expect(await storedEventIds(live.jsm, NOTIFICATIONS_STREAM)).toEqual(expect.arrayContaining(['evt-n1', 'evt-n2']));
  });

  test('a notification its handler keeps failing on, or one of a kind the consumer does not know, is dead-lettered under its own subject', async () => {
    const live = await bus('live');
    const channel = await bus('catalog');
    await channel.consume(
      'notifications.>',
      async () => {
        throw new Error('channel down');
      },
      { maxAttempts: 2, backoffMs: [50] },
    );
    const env = await live.publish('notifications.live.reminder', reminder('m-n3'), { id: 'evt-n3' });
    await live.js.publish(
      'notifications.community.reply',
      enc.encode(JSON.stringify({ ...env, id: 'evt-n4', type: 'notifications.community.reply' })),
    );
    // The consumer starts at the stream's beginning: the earlier test's notifications fail here too.
    const dead = await eventually(async () => {
      const msgs = await storedMessages(live.jsm, DEAD_LETTER_STREAM, 'deadletter.catalog_notifications-all');
      const mine = msgs.filter((m) => ['evt-n3', 'evt-n4'].includes(m.json<{ id: string }>().id));
      return mine.length === 2 ? mine : null;
    });
    const bySubject = Object.fromEntries(dead.map((m) => [m.header.get('Flywheel-Original-Subject'), m]));
    expect(bySubject['notifications.live.reminder']!.json()).toEqual(env);
    expect(bySubject['notifications.live.reminder']!.header.get('Flywheel-Error')).toBe('channel down');
    expect(bySubject['notifications.community.reply']!.header.get('Flywheel-Error')).toMatch(/not a notification this consumer knows/);
  });
});

// A trace context as it arrives from the gateway (W3C headers over HTTP): the bus must carry it
// into NATS headers and continue it in consumers and reply handlers.
function remoteParent(): SpanContext {
  const hex = (n: number) => Array.from({ length: n }, () => Math.floor(Math.random() * 16).toString(16)).join('');
  return { traceId: `1${hex(31)}`, spanId: `2${hex(15)}`, traceFlags: TraceFlags.SAMPLED, isRemote: true };
}
function withinSpan<T>(parent: SpanContext, fn: () => Promise<T>): Promise<T> {
  return context.with(trace.setSpan(context.active(), trace.wrapSpanContext(parent)), fn);
}

describe('trace context', () => {
  test('a message published inside an active span carries its traceparent, and the consumer continues the trace', async () => {
    const live = await bus('live');
    const catalog = await bus('catalog');
    const consumerTraces = new Map<string, string | undefined>();
    await catalog.consume('live.room.scheduled', async (env) => {
      consumerTraces.set(env.id, trace.getActiveSpan()?.spanContext().traceId);
    });
    const parent = remoteParent();
    await withinSpan(parent, () => live.publish('live.room.scheduled', roomScheduled('room-traced'), { id: 'evt-traced' }));

    const msg = (await storedMessages(live.jsm, streamName('live'))).find((m) => m.json<EventEnvelope>().id === 'evt-traced')!;
    expect(msg.header.get('traceparent')).toMatch(new RegExp(`^00-${parent.traceId}-[0-9a-f]{16}-01$`));

    await eventually(async () => consumerTraces.has('evt-traced'));
    expect(consumerTraces.get('evt-traced')).toBe(parent.traceId);
  });

  test('a span started in this process (telemetry loaded, no collector) is a real trace carried into NATS', async () => {
    // docs/architecture.md (observability): without a collector spans are still created, so trace ids reach logs and NATS.
    const live = await bus('live');
    const traceId = await trace.getTracer('bus-test').startActiveSpan('test-publish', async (span) => {
      await live.publish('live.room.scheduled', roomScheduled('room-local'), { id: 'evt-local-span' });
      span.end();
      return span.spanContext().traceId;
    });
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(traceId).not.toBe('0'.repeat(32));
    const msg = (await storedMessages(live.jsm, streamName('live'))).find((m) => m.json<EventEnvelope>().id === 'evt-local-span')!;
    expect(msg.header.get('traceparent')).toMatch(new RegExp(`^00-${traceId}-[0-9a-f]{16}-01$`));
  });
});

describe('request/reply', () => {
  const quote = (skuId: string, quantity = 1) => ({ lines: [{ skuId, quantity }] });
  let requester: Bus;
  let responder: Bus;
  const handled: string[] = [];
  const handlerTraces = new Map<string, string | undefined>();

  beforeAll(async () => {
    requester = await bus('orders');
  });

  test('no responder: UNAVAILABLE, quickly', async () => {
    const started = Date.now();
    const err = await requester.request('catalog.price.quote', quote('sku-1')).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BusRequestError);
    expect((err as BusRequestError).code).toBe('UNAVAILABLE');
    expect(Date.now() - started).toBeLessThan(1_000);
  });

  describe('with a responder', () => {
    beforeAll(async () => {
      responder = await bus('catalog');
      responder.reply('catalog.price.quote', async ({ lines }) => {
        const skuId = lines[0]!.skuId;
        handled.push(skuId);
        handlerTraces.set(skuId, trace.getActiveSpan()?.spanContext().traceId);
        if (skuId === 'missing') throw new AppError('NOT_FOUND', 'SKU missing not found');
        if (skuId === 'slow') await sleep(600);
        if (skuId === 'crash') throw new Error('mongo at 10.0.0.7 refused: secret detail');
        if (skuId === 'bad-reply') return { lines: [], total: 1.5, currency: 'CNY' };
        const out = lines.map((l) => ({
          ...l,
          productId: `p-${l.skuId}`,
          unitPrice: 250,
          priceKind: 'LIST' as const,
          name: 'Tea',
          skuName: '50g',
        }));
        return { lines: out, total: out.reduce((s, l) => s + l.unitPrice * l.quantity, 0), currency: 'CNY' };
      });
      await responder.nc.flush();
    });

    test('a reply handler answers with data parsed by the contract', async () => {
      const reply = await requester.request('catalog.price.quote', quote('sku-1', 3));
      expect(reply).toEqual({
        lines: [{ skuId: 'sku-1', quantity: 3, productId: 'p-sku-1', unitPrice: 250, priceKind: 'LIST', name: 'Tea', skuName: '50g' }],
        total: 750,
        currency: 'CNY',
      });
    });

    test("the caller's trace context reaches the reply handler", async () => {
      const parent = remoteParent();
      await withinSpan(parent, () => requester.request('catalog.price.quote', quote('sku-traced')));
      expect(handlerTraces.get('sku-traced')).toBe(parent.traceId);
    });

    test('a handler throwing AppError(NOT_FOUND) reaches the requester as BusRequestError NOT_FOUND', async () => {
      const err = await requester.request('catalog.price.quote', quote('missing')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BusRequestError);
      expect(err).toMatchObject({ code: 'NOT_FOUND', message: 'SKU missing not found' });
    });

    test('an unexpected handler error reaches the requester as INTERNAL_SERVER_ERROR without its detail', async () => {
      const err = await requester.request('catalog.price.quote', quote('crash')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BusRequestError);
      expect((err as BusRequestError).code).toBe('INTERNAL_SERVER_ERROR');
      expect((err as BusRequestError).message).not.toMatch(/secret|10\.0\.0\.7/);
    });

    test('a reply that breaks the contract is refused as INTERNAL_SERVER_ERROR', async () => {
      const err = await requester.request('catalog.price.quote', quote('bad-reply')).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(BusRequestError);
      expect((err as BusRequestError).code).toBe('INTERNAL_SERVER_ERROR');
    });

    test('a responder slower than timeoutMs: UNAVAILABLE at the timeout', async () => {
      const started = Date.now();
      const err = await requester.request('catalog.price.quote', quote('slow'), { timeoutMs: 200 }).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(BusRequestError);
      expect((err as BusRequestError).code).toBe('UNAVAILABLE');
      expect(elapsed).toBeGreaterThanOrEqual(150);
      expect(elapsed).toBeLessThan(550);
      await sleep(500); // let the slow handler finish before the next test
    });

    test('an invalid request body is refused with BAD_USER_INPUT before the handler runs', async () => {
      handled.length = 0;
      const h = natsHeaders();
      for (const body of [{ lines: [] }, { lines: [{ skuId: 'sku-1', quantity: 0 }] }, { nope: true }]) {
        const msg = await requester.nc.request('catalog.price.quote', enc.encode(JSON.stringify(body)), { timeout: 2_000, headers: h });
        const wire = JSON.parse(dec.decode(msg.data)) as { ok: boolean; error?: { code: string; message: string } };
        expect(wire.ok).toBe(false);
        expect(wire.error?.code).toBe('BAD_USER_INPUT');
        expect(wire.error?.message).toBeTruthy();
      }
      // The typed client validates too: nothing leaves the caller.
      await expect(requester.request('catalog.price.quote', { lines: [] })).rejects.toThrow();
      expect(handled).toEqual([]);
    });
  });
});
