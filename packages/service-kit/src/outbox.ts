import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { Schema, type Connection, type Model } from 'mongoose';
import type { EventData, EventEnvelope, EventSubject } from '@flywheel/events';
import { envelope } from '@flywheel/events';
import type { Bus } from './bus';
import { findByIds } from './loaders';
import type { Logger } from './logger';

// DESIGN.md §3, outbox without transactions: a state change and the event it causes become
// durable in ONE insert — the aggregate's append-only entry carries its event in `outbox`.
// The relay publishes entries not yet marked sent (Nats-Msg-Id = event id, so a re-publish after
// a crash is deduplicated) and records each in `outbox_sent` — a separate insert, so the entry
// itself is never rewritten (FerretDB rewrites whole documents on update).

export interface OutboxRecord {
  id: string;
  subject: string;
  occurredAt: Date;
  envelope: EventEnvelope;
  /** W3C trace context of the write, so the relayed event continues the request's trace. */
  trace?: Record<string, string>;
}

/** Schema path to embed in any entry that carries an event. */
export const outboxPath = {
  type: new Schema<OutboxRecord>(
    { id: String, subject: String, occurredAt: Date, envelope: Schema.Types.Mixed, trace: Schema.Types.Mixed },
    { _id: false },
  ),
  required: false,
};

/** Builds the `outbox` value for an entry from a validated event. */
export function outboxRecord<S extends EventSubject>(subject: S, data: EventData<S>, id: string, at = new Date()): OutboxRecord {
  const trace: Record<string, string> = {};
  propagation.inject(context.active(), trace);
  return { id, subject, occurredAt: at, envelope: envelope(subject, data, { id, occurredAt: at }) as EventEnvelope, trace };
}

interface SentMarker {
  _id: string;
  at: Date;
}

export interface OutboxRelay {
  /** Publish pending entries now (called right after an entry is written). */
  kick(): void;
  /** One full pass begun after the call; resolves with how many events it published. */
  flush(): Promise<number>;
  stop(): Promise<void>;
}

export function createOutboxRelay(opts: {
  db: Connection;
  bus: Bus;
  sources: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  logger: Logger;
  intervalMs?: number;
  /** How far back the first pass after start looks for unsent entries. */
  lookbackMs?: number;
}): OutboxRelay {
  const { db, bus, sources, logger } = opts;
  const sent: Model<SentMarker> =
    (db.models.OutboxSent as Model<SentMarker> | undefined) ??
    db.model<SentMarker>('OutboxSent', new Schema<SentMarker>({ _id: String, at: Date }, { versionKey: false }), 'outbox_sent');
  // Entries older than this watermark are known sent; clock skew between writers is covered by a margin.
  let since = new Date(Date.now() - (opts.lookbackMs ?? 24 * 3600_000));
  const SKEW_MS = 5_000;
  const BATCH = 500;
  // Ids this process published recently: a pass looks only at entries written since the last
  // one (minus a skew margin), so a short memory saves re-reading the same markers every pass.
  const sentHere = new Set<string>();
  const remember = (id: string) => {
    if (sentHere.size >= 50_000) sentHere.clear();
    sentHere.add(id);
  };
  let running: Promise<number> | null = null;
  let again = false;
  let stopped = false;

  async function pass(): Promise<number> {
    let published = 0;
    const started = new Date();
    let oldestUnsent: Date | null = null;
    for (const model of sources) {
      // Keyset pages on (occurredAt, _id): a window holding more than one batch (a burst, or a
      // restart with a long lookback) is read through to its end in this pass.
      let after: { at: Date; id: unknown } | null = null;
      for (;;) {
        const filter: Record<string, unknown> = after
          ? { $or: [{ 'outbox.occurredAt': { $gt: after.at } }, { 'outbox.occurredAt': after.at, _id: { $gt: after.id } }] }
          : { 'outbox.occurredAt': { $gte: since } };
        const docs = (await model.find(filter, { outbox: 1 }).sort({ 'outbox.occurredAt': 1, _id: 1 }).limit(BATCH).lean()) as {
          _id: unknown;
          outbox?: OutboxRecord;
        }[];
        // What this process published itself needs no marker look-up (each one is a read by id).
        const records = docs.map((d) => d.outbox).filter((r): r is OutboxRecord => Boolean(r?.id) && !sentHere.has(r!.id));
        const done = records.length
          ? new Set(
              (
                await findByIds<{ _id: unknown }>(
                  sent,
                  records.map((r) => r.id),
                  { _id: 1 },
                )
              ).map((d) => d._id),
            )
          : new Set<string>();
        for (const r of records) {
          if (done.has(r.id)) {
            remember(r.id);
            continue;
          }
          try {
            await context.with(propagation.extract(ROOT_CONTEXT, r.trace ?? {}), () => bus.publishEnvelope(r.envelope));
            await sent.create({ _id: r.id, at: new Date() }).catch(() => undefined);
            remember(r.id);
            published++;
          } catch (err) {
            logger.warn({ err, eventId: r.id, subject: r.subject }, 'outbox publish failed; will retry');
            if (!oldestUnsent || r.occurredAt < oldestUnsent) oldestUnsent = new Date(r.occurredAt);
          }
        }
        const last = docs.at(-1);
        if (docs.length < BATCH || !last?.outbox) break;
        after = { at: last.outbox.occurredAt, id: last._id };
      }
    }
    since = oldestUnsent ?? new Date(started.getTime() - SKEW_MS);
    return published;
  }

  function run(): Promise<number> {
    if (running) {
      again = true;
      return running;
    }
    running = pass()
      .catch((err: unknown) => {
        logger.error({ err }, 'outbox pass failed');
        return 0;
      })
      .finally(() => {
        running = null;
        if (again && !stopped) {
          again = false;
          void run();
        }
      });
    return running;
  }

  const timer = setInterval(() => void run(), opts.intervalMs ?? 2_000);
  timer.unref();
  void run();
  return {
    kick: () => void run(),
    // A pass already running may have started before the caller's entry was written: wait for it,
    // then run a fresh one.
    flush: async () => {
      if (running) await running;
      return run();
    },
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
