import { context, propagation, ROOT_CONTEXT } from '@opentelemetry/api';
import { Schema, type Connection, type Model } from 'mongoose';
import type { EventData, EventEnvelope, EventSubject } from '@flywheel/events';
import { envelope } from '@flywheel/events';
import type { Bus } from './bus';
import { findByIds } from './loaders';
import type { Logger } from './logger';

// docs/concurrency.md ("The outbox"), outbox without transactions: a state change and the event it causes become
// durable in ONE insert — the aggregate's append-only entry carries its event in `outbox`.
// The relay publishes entries not yet marked sent (Nats-Msg-Id = event id, so a re-publish after
// a crash is deduplicated) and records each in `outbox_sent` — a separate insert, so the entry
// itself is never rewritten (FerretDB rewrites whole documents on update).
//
// The relay finds entries by when they were WRITTEN, never by the business time they carry:
// `occurredAt` is whatever the writer says happened (an RFM sweep stamps every change with the
// sweep's start, a recovery stamps the time it recovers from), and an entry stamped before the
// relay's last pass would otherwise never be looked at. `writtenAt` is set by the schema itself
// at validation, i.e. immediately before the insert, so no caller can get it wrong.

export interface OutboxRecord {
  id: string;
  subject: string;
  /** Business time of the event (the envelope's `occurredAt`). */
  occurredAt: Date;
  /** When the entry was inserted (set by the schema): what the relay scans by. */
  writtenAt?: Date;
  envelope: EventEnvelope;
  /** W3C trace context of the write, so the relayed event continues the request's trace. */
  trace?: Record<string, string>;
}

const outboxSchema = new Schema<OutboxRecord>(
  {
    id: String,
    subject: String,
    occurredAt: Date,
    // `index: true` on the embedded path gives every entry model an `outbox.writtenAt` index.
    writtenAt: { type: Date, index: true },
    envelope: Schema.Types.Mixed,
    trace: Schema.Types.Mixed,
  },
  { _id: false },
);
// Runs for create(), save() and insertMany() alike, on every attempt (a ledger append that lost
// its race and retries is stamped again).
outboxSchema.pre('validate', function stampWrittenAt() {
  this.writtenAt = new Date();
});

/** Schema path to embed in any entry that carries an event (indexed by write time). */
export const outboxPath = { type: outboxSchema, required: false };

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
  /** How far back the first pass after start, and each deep pass, look for unsent entries. */
  lookbackMs?: number;
  /**
   * How far before the previous pass's start a pass looks: covers an insert still in flight when
   * that pass read (its `writtenAt` is a moment before the insert landed) and clock skew between
   * writers on different replicas.
   */
  marginMs?: number;
  /** A deep pass (the whole look-back) runs this often: the net under anything slower than the margin. */
  deepPassMs?: number;
}): OutboxRelay {
  const { db, bus, sources, logger } = opts;
  const sent: Model<SentMarker> =
    (db.models.OutboxSent as Model<SentMarker> | undefined) ??
    db.model<SentMarker>('OutboxSent', new Schema<SentMarker>({ _id: String, at: Date }, { versionKey: false }), 'outbox_sent');
  const lookbackMs = opts.lookbackMs ?? 24 * 3600_000;
  const marginMs = opts.marginMs ?? 30_000;
  const deepPassMs = opts.deepPassMs ?? 10 * 60_000;
  // Entries written before this watermark were seen by an earlier pass (minus the margin).
  let since = new Date(Date.now() - lookbackMs);
  let lastDeep = Date.now();
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
    if (started.getTime() - lastDeep >= deepPassMs) {
      lastDeep = started.getTime();
      since = new Date(started.getTime() - lookbackMs);
    }
    let oldestUnsent: Date | null = null;
    for (const model of sources) {
      // Keyset pages on (writtenAt, _id): a window holding more than one batch (a burst, or a
      // restart with a long lookback) is read through to its end in this pass.
      let after: { at: Date; id: unknown } | null = null;
      for (;;) {
        const filter: Record<string, unknown> = after
          ? { $or: [{ 'outbox.writtenAt': { $gt: after.at } }, { 'outbox.writtenAt': after.at, _id: { $gt: after.id } }] }
          : { 'outbox.writtenAt': { $gte: since } };
        const docs = (await model.find(filter, { outbox: 1 }).sort({ 'outbox.writtenAt': 1, _id: 1 }).limit(BATCH).lean()) as {
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
            const written = new Date(r.writtenAt ?? r.occurredAt);
            if (!oldestUnsent || written < oldestUnsent) oldestUnsent = written;
          }
        }
        const last = docs.at(-1);
        if (docs.length < BATCH || !last?.outbox?.writtenAt) break;
        after = { at: last.outbox.writtenAt, id: last._id };
      }
    }
    const watermark = new Date(started.getTime() - marginMs);
    since = oldestUnsent && oldestUnsent < watermark ? oldestUnsent : watermark;
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
