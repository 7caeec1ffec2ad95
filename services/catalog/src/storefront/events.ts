import { randomUUID } from 'node:crypto';
import { z } from 'zod';
import { OBJECT_ID, type Bus, type Logger } from '@flywheel/service-kit';
import type { ReadModel, ReadModelChange } from './service';

// How every replica's read model learns what any replica changed: a small message on a core NATS
// subject (ids, and stock heads which are four numbers) that every replica subscribes to without
// a queue group. Core NATS rather than a JetStream consumer: the read model is per-process
// memory rebuilt from the database at start, so there is nothing to replay or keep, and catalog's
// JetStream events do not cover price or stock changes (nor should other services pay for them).
//
// Core NATS may drop a message (a disconnect, a slow consumer), so loss is detected rather than
// prevented. Each replica numbers its messages and repeats its current number in a heartbeat every
// `heartbeatMs`: a peer whose number skips, or whose heartbeat names a message never received,
// makes this replica doubt its copy — reads go to the database until a full reload has run. A
// replica that has not heard its own heartbeat for 3 × heartbeatMs (its connection or
// subscription is down) reads the database too. So a change announced by a live replica is
// served from memory within about one heartbeat at worst, or not served from memory at all.
// Changes never announced (a replica crashing between its write and its message) are caught by
// the listing projection's repair pass, which re-announces what it re-projects, and by the full
// reload every `refreshMs`.

/** Not a contract with other services: only catalog replicas publish and read it. */
export const READ_MODEL_SUBJECT = 'catalog.readmodel.invalidate';

const count = z.number().int().min(0);
const messageSchema = z.object({
  from: z.string().min(1).max(64),
  seq: count,
  productIds: z.array(z.string().regex(OBJECT_ID)).max(10_000).optional(),
  heads: z
    .array(z.object({ accountId: z.string().min(1).max(64), head: z.object({ seq: count, onHand: count, reserved: count, sold: count }) }))
    .max(10_000)
    .optional(),
  categories: z.boolean().optional(),
});

export interface ReadModelFeedOptions {
  bus: Bus;
  readModel: ReadModel;
  logger: Logger;
  heartbeatMs: number;
  refreshMs: number;
}

/** Messages batched per tick: a burst of stock moves is one message, not one each. */
export function createReadModelFeed({ bus, readModel, logger, heartbeatMs, refreshMs }: ReadModelFeedOptions) {
  const replica = randomUUID();
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  let seq = 0;
  let pending: { productIds: Set<string>; heads: Map<string, NonNullable<ReadModelChange['heads']>[number]>; categories: boolean } | null =
    null;
  const peers = new Map<string, number>();
  let subscribedAt = 0;
  let lastEcho = 0;
  const timers: NodeJS.Timeout[] = [];
  let stopped = false;

  function send(body: ReadModelChange) {
    if (stopped || bus.nc.isClosed()) return;
    try {
      bus.nc.publish(READ_MODEL_SUBJECT, enc.encode(JSON.stringify({ from: replica, seq, ...body })));
    } catch (err) {
      // Peers notice the gap at the next heartbeat and reload; nothing else to do here.
      logger.warn({ err }, 'read model announcement not sent');
    }
  }

  function flush() {
    if (!pending) return;
    const { productIds, heads, categories } = pending;
    pending = null;
    seq++;
    send({
      ...(productIds.size ? { productIds: [...productIds] } : {}),
      ...(heads.size ? { heads: [...heads.values()] } : {}),
      ...(categories ? { categories } : {}),
    });
  }

  function received(data: Uint8Array) {
    const parsed = messageSchema.safeParse(JSON.parse(dec.decode(data)));
    if (!parsed.success) return logger.warn({ issues: parsed.error.issues }, 'malformed read model message ignored');
    const msg = parsed.data;
    const at = Date.now();
    if (msg.from === replica) {
      // Deaf for a while (disconnected, or the process stalled): peers' messages may be lost.
      if (lastEcho && at - lastEcho > 3 * heartbeatMs) readModel.doubt();
      lastEcho = at;
      return;
    }
    const carries = Boolean(msg.productIds?.length || msg.heads?.length || msg.categories);
    const known = peers.get(msg.from);
    const expected = known === undefined ? (carries ? 1 : 0) : known + (carries ? 1 : 0);
    // A peer first heard just after start-up: what it sent before is in the initial load.
    const justStarted = known === undefined && at - subscribedAt < 2 * heartbeatMs;
    if (msg.seq !== expected && !justStarted) {
      logger.info({ peer: msg.from, seq: msg.seq, expected }, 'read model message missed; reloading');
      readModel.doubt();
    }
    peers.set(msg.from, msg.seq);
    if (carries) readModel.apply(msg);
  }

  return {
    /** Queues a change of this replica for the others (sent at the end of the tick). */
    announce(change: ReadModelChange) {
      if (stopped) return;
      if (!pending) {
        pending = { productIds: new Set(), heads: new Map(), categories: false };
        setImmediate(flush);
      }
      for (const id of change.productIds ?? []) pending.productIds.add(id);
      for (const h of change.heads ?? []) {
        const queued = pending.heads.get(h.accountId);
        if (!queued || queued.head.seq < h.head.seq) pending.heads.set(h.accountId, h);
      }
      if (change.categories) pending.categories = true;
    },

    /** False while this replica could be missing its peers' messages. */
    live: () => !stopped && Date.now() - lastEcho < 3 * heartbeatMs,

    /** Subscribes first, then loads: a change made during the load is announced after it and read again. */
    async start(): Promise<void> {
      subscribedAt = Date.now();
      bus.nc.subscribe(READ_MODEL_SUBJECT, {
        callback: (err, msg) => {
          if (stopped) return;
          if (err) return logger.warn({ err }, 'read model subscription error');
          try {
            received(msg.data);
          } catch (e) {
            logger.warn({ err: e }, 'read model message ignored');
          }
        },
      });
      await readModel.reloadAll();
      const beat = () => {
        flush();
        send({});
      };
      beat();
      timers.push(
        setInterval(beat, heartbeatMs),
        setInterval(() => void readModel.reloadAll(), refreshMs),
      );
      for (const t of timers) t.unref();
    },

    async stop(): Promise<void> {
      flush();
      stopped = true;
      for (const t of timers) clearInterval(t);
      await readModel.settled();
    },
  };
}

export type ReadModelFeed = ReturnType<typeof createReadModelFeed>;
