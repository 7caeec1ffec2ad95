import { randomUUID } from 'node:crypto';
import { context, propagation, trace, SpanKind, SpanStatusCode, type Context } from '@opentelemetry/api';
import {
  AckPolicy,
  connect,
  DeliverPolicy,
  ErrorCode as NatsErrorCode,
  headers as natsHeaders,
  nanos,
  RetentionPolicy,
  StorageType,
  type ConsumerMessages,
  type JetStreamClient,
  type JetStreamManager,
  type JsMsg,
  type MsgHdrs,
  type NatsConnection,
  type StreamConfig,
  type Subscription,
} from 'nats';
import type { Connection as MongoConnection, Model } from 'mongoose';
import { Schema } from 'mongoose';
import {
  DEAD_LETTER_PREFIX,
  DEAD_LETTER_STREAM,
  envelope as buildEnvelope,
  isEventSubject,
  isNotificationSubject,
  NOTIFICATIONS_FILTER,
  parseEnvelope,
  publisherStreams,
  RENAMED_SUBJECTS,
  ReplyWire,
  requests,
  streamOf,
  type EventData,
  type EventEnvelope,
  type EventStream,
  type EventSubject,
  type NotificationEnvelope,
  type ReplyData,
  type RequestData,
  type RequestSubject,
  type ServiceName,
} from '@flywheel/events';
import { insertDoc, isDuplicateKey } from './claims';
import { AppError, ErrorCode } from './errors';
import type { Logger } from './logger';

const tracer = trace.getTracer('flywheel-bus');
const enc = new TextEncoder();
const dec = new TextDecoder();

const headerSetter = { set: (h: MsgHdrs, k: string, v: string) => h.set(k, v) };
const headerGetter = {
  get: (h: MsgHdrs | undefined, k: string) => h?.get(k) || undefined,
  keys: (h: MsgHdrs | undefined) => (h ? h.keys() : []),
};

/** A failed request/reply: `code` is one of the GraphQL error codes (UNAVAILABLE for no answer). */
export class BusRequestError extends Error {
  constructor(
    public readonly code: string,
    message: string,
    /** The refusal's `extensions.reason`, when the replier gave one. */
    public readonly reason?: string,
  ) {
    super(message);
  }
}

/**
 * Rethrows a request's failure as the client should see it: another service's refusal keeps its
 * code (an unknown code becomes INTERNAL_SERVER_ERROR), no answer at all is UNAVAILABLE (set by
 * `request`); anything else is rethrown as it is.
 */
export function fromBusError(err: unknown): never {
  if (err instanceof BusRequestError) {
    const code = (Object.values(ErrorCode) as string[]).includes(err.code) ? (err.code as ErrorCode) : ErrorCode.INTERNAL_SERVER_ERROR;
    throw new AppError(code, err.message, err.reason ? { reason: err.reason } : {});
  }
  throw err;
}

export interface ConsumeOptions {
  /** Handler attempts before the message goes to the dead-letter subject. */
  maxAttempts?: number;
  /** Delay before redelivery after attempt n (ms); the last value repeats. */
  backoffMs?: number[];
  ackWaitMs?: number;
  /**
   * Messages handled at once by this replica (default 1: one after another). Above 1 the handler
   * must be safe against itself, as it already is against other replicas (claims, ledgers).
   */
  concurrency?: number;
  /**
   * When the processed-event record is looked up before the handler runs: on every delivery
   * (default), or only on a redelivery — for a hot consumer whose handlers already make a repeated
   * event a no-op by their own claims (a first delivery can still repeat an event: a re-publish
   * after the stream's duplicate window). The record is written after the handler either way.
   */
  processedLookup?: 'always' | 'redelivered';
}

export interface Bus {
  nc: NatsConnection;
  js: JetStreamClient;
  jsm: JetStreamManager;
  connected(): boolean;
  publishEnvelope(env: EventEnvelope): Promise<void>;
  publish<S extends EventSubject>(subject: S, data: EventData<S>, opts?: { id?: string }): Promise<EventEnvelope<S>>;
  /**
   * A durable consumer of one subject, in the stream that holds it (`<service>_<subject with
   * dashes>`); or of every notification, whoever publishes it, with `notifications.>`
   * (`<service>_notifications-all`). Handlers see only envelopes their contract parses.
   */
  consume<S extends EventSubject>(subject: S, handler: (env: EventEnvelope<S>) => Promise<void>, opts?: ConsumeOptions): Promise<void>;
  consume(filter: typeof NOTIFICATIONS_FILTER, handler: (env: NotificationEnvelope) => Promise<void>, opts?: ConsumeOptions): Promise<void>;
  request<S extends RequestSubject>(subject: S, data: RequestData<S>, opts?: { timeoutMs?: number }): Promise<ReplyData<S>>;
  reply<S extends RequestSubject>(subject: S, handler: (data: RequestData<S>) => Promise<ReplyData<S>>): void;
  /** Stops consumers and replies, flushes and closes the connection. */
  drain(): Promise<void>;
}

interface ProcessedEvent {
  _id: string;
  at: Date;
}

export interface BusOptions {
  url: string;
  service: ServiceName;
  logger: Logger;
  /** The service's database: holds the processed-event records that make redelivery a no-op. */
  db: MongoConnection;
  streamReplicas?: number;
}

export async function connectBus(opts: BusOptions): Promise<Bus> {
  const { service, logger, db } = opts;
  const nc = await connect({
    servers: opts.url.split(','),
    name: service,
    maxReconnectAttempts: -1,
    reconnectTimeWait: 500,
    waitOnFirstConnect: true,
  });
  let isUp = true;
  void (async () => {
    for await (const s of nc.status()) {
      if (s.type === 'disconnect') {
        isUp = false;
        logger.warn({ server: s.data }, 'nats disconnected');
      } else if (s.type === 'reconnect') {
        isUp = true;
        logger.info({ server: s.data }, 'nats reconnected');
      }
    }
  })();

  const jsm = await nc.jetstreamManager();
  const js = nc.jetstream();
  const processed: Model<ProcessedEvent> =
    (db.models.ProcessedEvent as Model<ProcessedEvent> | undefined) ??
    db.model<ProcessedEvent>(
      'ProcessedEvent',
      new Schema<ProcessedEvent>({ _id: String, at: Date }, { versionKey: false }),
      'processed_events',
    );

  const ensured = new Set<string>();
  async function ensureStream(config: Partial<StreamConfig> & { name: string; subjects: string[] }) {
    if (ensured.has(config.name)) return;
    const full: Partial<StreamConfig> = {
      retention: RetentionPolicy.Limits,
      storage: StorageType.File,
      num_replicas: opts.streamReplicas ?? 1,
      duplicate_window: nanos(2 * 60_000),
      ...config,
    };
    try {
      const info = await jsm.streams.info(config.name);
      const missing = config.subjects.filter((s) => !info.config.subjects.includes(s));
      if (missing.length) await jsm.streams.update(config.name, { ...info.config, subjects: [...info.config.subjects, ...missing] });
    } catch (err) {
      if ((err as { code?: string }).code !== '404') throw err;
      try {
        await jsm.streams.add(full);
      } catch (addErr) {
        // Another replica created it between our info and add.
        await jsm.streams.info(config.name).catch(() => {
          throw addErr;
        });
      }
    }
    ensured.add(config.name);
  }
  // The streams this service publishes to: its own and, if it sends notifications, NOTIFICATIONS.
  for (const stream of publisherStreams(service)) await ensureStream({ name: stream.name, subjects: stream.subjects });
  await ensureStream({ name: DEAD_LETTER_STREAM, subjects: [`${DEAD_LETTER_PREFIX}.>`], max_age: nanos(14 * 24 * 3600_000) });

  const consumers: ConsumerMessages[] = [];
  const subs: Subscription[] = [];
  const loops: Promise<void>[] = [];

  async function publishEnvelope(stored: EventEnvelope) {
    const renamed = RENAMED_SUBJECTS[stored.type];
    const env = renamed ? { ...stored, type: renamed } : stored;
    const h = natsHeaders();
    propagation.inject(context.active(), h, headerSetter);
    // Nats-Msg-Id = event id: a re-publish (outbox relay after a crash) is deduplicated by the stream.
    await js.publish(env.type, enc.encode(JSON.stringify(env)), { msgID: env.id, headers: h });
  }

  const bus: Bus = {
    nc,
    js,
    jsm,
    connected: () => isUp && !nc.isClosed(),
    publishEnvelope,
    async publish(subject, data, o = {}) {
      const env = buildEnvelope(subject, data, { id: o.id ?? randomUUID() });
      await publishEnvelope(env as EventEnvelope);
      return env;
    },

    async consume(
      subject: EventSubject | typeof NOTIFICATIONS_FILTER,
      handler: (env: EventEnvelope<any>) => Promise<void>, // eslint-disable-line @typescript-eslint/no-explicit-any
      o: ConsumeOptions = {},
    ) {
      const maxAttempts = o.maxAttempts ?? 5;
      const lookupAlways = (o.processedLookup ?? 'always') === 'always';
      const backoff = o.backoffMs ?? [1_000, 5_000, 15_000, 60_000];
      if (subject !== NOTIFICATIONS_FILTER && !isEventSubject(subject)) throw new Error(`unknown event subject ${String(subject)}`);
      const holder: EventStream = streamOf(subject);
      await ensureStream({ name: holder.name, subjects: holder.subjects });
      const stream = holder.name;
      const durable = `${service}_${subject.replace(/\./g, '-').replace('>', 'all')}`;
      /** The contract a message is parsed by: the consumer's subject, or (for the filter) the message's own. */
      const contractOf = (m: JsMsg): EventSubject => {
        if (subject !== NOTIFICATIONS_FILTER) return subject;
        if (!isNotificationSubject(m.subject)) throw new Error(`${m.subject} is not a notification this consumer knows`);
        return m.subject;
      };
      const consumerConfig = {
        durable_name: durable,
        filter_subject: subject,
        ack_policy: AckPolicy.Explicit,
        deliver_policy: DeliverPolicy.All,
        ack_wait: nanos(o.ackWaitMs ?? 30_000),
        // Backstop only: attempts are counted below and end in the dead-letter subject.
        max_deliver: maxAttempts + 2,
      };
      try {
        await jsm.consumers.add(stream, consumerConfig);
      } catch {
        // Exists with an older configuration: bring the mutable settings up to date.
        const { ack_wait, max_deliver } = consumerConfig;
        await jsm.consumers.update(stream, durable, { ack_wait, max_deliver });
      }
      const messages = await (await js.consumers.get(stream, durable)).consume({ max_messages: 32 });
      consumers.push(messages);

      const handle = async (m: JsMsg) => {
        const parent: Context = propagation.extract(context.active(), m.headers, headerGetter);
        await context.with(parent, () =>
          tracer.startActiveSpan(
            `consume ${m.subject}`,
            { kind: SpanKind.CONSUMER, attributes: { 'messaging.consumer': durable } },
            async (span) => {
              let env: EventEnvelope | undefined;
              try {
                env = parseEnvelope(contractOf(m), JSON.parse(dec.decode(m.data))) as EventEnvelope;
                span.setAttribute('messaging.message.id', env.id);
                const key = `${durable}:${env.id}`;
                // The driver directly (records of two fixed fields): no mongoose machinery per event.
                const lookUp = lookupAlways || m.info.deliveryCount > 1;
                if (lookUp && (await processed.collection.findOne({ _id: key } as never, { projection: { _id: 1 } }))) {
                  m.ack();
                  return;
                }
                await handler(env);
                // Recorded after the effect: handlers key their own writes on the event id, so a
                // crash between effect and record replays into a no-op, and this makes it cheap.
                await insertDoc(processed, { _id: key, at: new Date() }, { raw: true }).catch((e: unknown) => {
                  if (!isDuplicateKey(e)) throw e;
                });
                m.ack();
              } catch (err) {
                span.recordException(err as Error);
                span.setStatus({ code: SpanStatusCode.ERROR });
                const attempt = m.info.deliveryCount;
                const poison = env === undefined; // unparseable: retrying cannot help
                if (poison || attempt >= maxAttempts) {
                  logger.error({ err, subject: m.subject, durable, attempt, eventId: env?.id }, 'event dead-lettered');
                  try {
                    const h = natsHeaders();
                    h.set('Flywheel-Original-Subject', m.subject);
                    // Header values cannot hold line breaks (zod messages are multi-line JSON).
                    h.set(
                      'Flywheel-Error',
                      String((err as Error).message)
                        .replace(/[\r\n]+/g, ' ')
                        .slice(0, 500),
                    );
                    await js.publish(`${DEAD_LETTER_PREFIX}.${durable}`, m.data, { headers: h });
                    m.term();
                  } catch (dlqErr) {
                    logger.error({ err: dlqErr, durable }, 'dead-letter publish failed; will redeliver');
                    m.nak(backoff.at(-1) ?? 1_000);
                  }
                } else {
                  const delay = backoff[Math.min(attempt - 1, backoff.length - 1)] ?? 1_000;
                  logger.warn({ err, subject: m.subject, durable, attempt, delay, eventId: env?.id }, 'event handler failed; will retry');
                  m.nak(delay);
                }
              } finally {
                span.end();
              }
            },
          ),
        );
      };
      const concurrency = Math.max(1, o.concurrency ?? 1);
      loops.push(
        (async () => {
          const inFlight = new Set<Promise<void>>();
          for await (const m of messages) {
            // One bad message must never end the loop (and with it the consumer).
            const p = handle(m).catch((err: unknown) => {
              logger.error({ err, durable }, 'message handling failed');
              m.nak(1_000);
            });
            inFlight.add(p);
            void p.finally(() => inFlight.delete(p));
            if (inFlight.size >= concurrency) await Promise.race(inFlight);
          }
          await Promise.all(inFlight);
        })().catch((err: unknown) => logger.error({ err, durable }, 'consumer loop ended')),
      );
      logger.info({ subject, durable }, 'consuming');
    },

    async request(subject, data, o = {}) {
      const def = requests[subject];
      const h = natsHeaders();
      propagation.inject(context.active(), h, headerSetter);
      let raw: Uint8Array;
      try {
        const parsed = def.request.safeParse(data);
        if (!parsed.success) throw new BusRequestError('BAD_USER_INPUT', parsed.error.issues[0]?.message ?? 'invalid request');
        const msg = await nc.request(subject, enc.encode(JSON.stringify(parsed.data)), {
          timeout: o.timeoutMs ?? 3_000,
          headers: h,
        });
        raw = msg.data;
      } catch (err) {
        if (err instanceof BusRequestError) throw err;
        const code = (err as { code?: string }).code;
        if (code === NatsErrorCode.NoResponders) throw new BusRequestError('UNAVAILABLE', `${subject}: no service is answering`);
        if (code === NatsErrorCode.Timeout) throw new BusRequestError('UNAVAILABLE', `${subject}: timed out`);
        throw err;
      }
      const wire = ReplyWire.parse(JSON.parse(dec.decode(raw)));
      if (!wire.ok) throw new BusRequestError(wire.error.code, wire.error.message, wire.error.reason);
      return def.reply.parse(wire.data) as ReplyData<typeof subject>;
    },

    reply(subject, handler) {
      const def = requests[subject];
      const sub = nc.subscribe(subject, {
        queue: service,
        callback: (err, msg) => {
          if (err) return logger.error({ err, subject }, 'reply subscription error');
          const parent = propagation.extract(context.active(), msg.headers, headerGetter);
          void context.with(parent, async () => {
            let body: unknown;
            try {
              const parsed = def.request.safeParse(JSON.parse(dec.decode(msg.data)));
              if (!parsed.success) {
                body = { ok: false, error: { code: 'BAD_USER_INPUT', message: parsed.error.issues[0]?.message ?? 'invalid request' } };
              } else {
                body = { ok: true, data: def.reply.parse(await handler(parsed.data as RequestData<typeof subject>)) };
              }
            } catch (e) {
              const { code, reason } = (e as { extensions?: { code?: string; reason?: unknown } }).extensions ?? {};
              if (!code) logger.error({ err: e, subject }, 'reply handler failed');
              body = {
                ok: false,
                error: {
                  code: code ?? 'INTERNAL_SERVER_ERROR',
                  message: code ? (e as Error).message : 'internal error',
                  ...(code && typeof reason === 'string' && reason.length <= 64 ? { reason } : {}),
                },
              };
            }
            msg.respond(enc.encode(JSON.stringify(body)));
          });
        },
      });
      subs.push(sub);
    },

    async drain() {
      for (const c of consumers) c.stop();
      await Promise.allSettled(loops);
      if (!nc.isClosed()) await nc.drain();
    },
  };
  return bus;
}

export type { JsMsg };
