import {
  AppError,
  appendToLedger,
  isObjectId,
  ledgerHead,
  notFound,
  requireRole,
  wholeNumber,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import { feedId } from '@flywheel/events';
import type { Models } from '../model';
import type { LiveService } from '../service';
import type { LikeModels } from './model';

export const LIKE_LIMITS = {
  /** Taps one call may carry (a client batches a burst of taps into one call). */
  tapsPerCall: 50,
  /** Taps a member may send to one room per window, per replica; more is RATE_LIMITED. */
  tapsPerWindow: 300,
  windowMs: 10_000,
  /** How long a replica trusts a room's LIVE status for likes (they are not worth a read each). */
  statusTtlMs: 1_000,
} as const;

/** How often a replica writes the taps it counted: one ledger entry per room with taps, per flush. */
export const LIKE_FLUSH_MS = 1_000;

/**
 * Likes (点赞) without a write per like: taps are counted in memory per room and appended once a
 * second as one ledger entry per room (delta and running total), then announced on the feed. A
 * room's total is exact to within one flush interval per replica (`total` adds this replica's
 * unflushed taps; another replica's arrive at its next flush). A replica that stops flushes first;
 * one that crashes loses at most its last second of taps.
 */
export function createLikeService(deps: {
  models: LikeModels;
  core: Models;
  rooms: LiveService;
  now: () => Date;
  logger: Logger;
  announce: (roomId: string, id: string) => void;
  /** Told once per member and room per replica (lottery eligibility). */
  participated?: (roomId: string, memberId: string) => Promise<void>;
}) {
  const { models, now } = deps;
  const pending = new Map<string, number>();
  const status = new Map<string, { live: boolean; until: number }>();
  const taps = new Map<string, { windowStart: number; n: number }>();
  const known = new Set<string>();
  /** The room totals this replica last wrote or read. */
  const totals = new Map<string, number>();
  let flushing: Promise<void> = Promise.resolve();

  async function isLive(roomId: string): Promise<boolean> {
    const t = now().getTime();
    const cached = status.get(roomId);
    if (cached && cached.until > t) return cached.live;
    const s = await deps.rooms.statusOf(roomId);
    if (s === 'SCHEDULED' && !(await deps.core.LiveRoom.exists({ _id: roomId }))) throw notFound('Live room');
    status.set(roomId, { live: s === 'LIVE', until: t + LIKE_LIMITS.statusTtlMs });
    return s === 'LIVE';
  }

  async function flushNow(): Promise<void> {
    const batch = [...pending];
    pending.clear();
    for (const [roomId, delta] of batch) {
      try {
        const entry = await appendToLedger(models.LikeEntry, roomId, (head) => ({ delta, total: (head?.total ?? 0) + delta, at: now() }));
        if (entry) {
          totals.set(roomId, entry.total);
          deps.announce(roomId, feedId('likes', entry.total));
        }
      } catch (err) {
        pending.set(roomId, (pending.get(roomId) ?? 0) + delta); // next flush tries again
        deps.logger.warn({ err, roomId }, 'likes flush failed');
      }
    }
  }

  return {
    /** Counts `count` taps (1 to 50) by a member on a LIVE room; returns the room's total as this replica knows it. */
    async like(viewer: Viewer | null, roomId: string, count: number): Promise<number> {
      const member = requireRole(viewer, 'CUSTOMER');
      const n = wholeNumber(count, 'count', 1, LIKE_LIMITS.tapsPerCall);
      if (!isObjectId(roomId)) throw notFound('Live room');
      if (!(await isLive(roomId))) throw new AppError('CONFLICT', 'Likes are open while the room is LIVE');
      const key = `${roomId}:${member.id}`;
      const t = now().getTime();
      const w = taps.get(key);
      const window = w && t - w.windowStart < LIKE_LIMITS.windowMs ? w : { windowStart: t, n: 0 };
      if (window.n + n > LIKE_LIMITS.tapsPerWindow) {
        throw new AppError('RATE_LIMITED', 'Too many likes; slow down', {
          retryAfterSeconds: Math.ceil((window.windowStart + LIKE_LIMITS.windowMs - t) / 1000),
        });
      }
      window.n += n;
      taps.set(key, window);
      if (!known.has(key)) {
        await deps.participated?.(roomId, member.id);
        known.add(key);
      }
      pending.set(roomId, (pending.get(roomId) ?? 0) + n);
      const last = totals.get(roomId) ?? (await this.total(roomId)) - (pending.get(roomId) ?? 0);
      return last + (pending.get(roomId) ?? 0);
    },

    /** The room's likes: the ledger head's total plus this replica's taps not yet flushed. */
    async total(roomId: string): Promise<number> {
      const head = await ledgerHead(models.LikeEntry, roomId);
      totals.set(roomId, Math.max(totals.get(roomId) ?? 0, head?.total ?? 0));
      return (head?.total ?? 0) + (pending.get(roomId) ?? 0);
    },

    /** Writes what was counted (one flush at a time). */
    flush(): Promise<void> {
      flushing = flushing.then(flushNow);
      return flushing;
    },

    /** Forgets rate windows and status copies that ran out (the timer calls it). */
    prune(): void {
      const t = now().getTime();
      for (const [k, w] of taps) if (t - w.windowStart >= LIKE_LIMITS.windowMs) taps.delete(k);
      for (const [k, s] of status) if (s.until <= t) status.delete(k);
      if (known.size > 100_000) known.clear();
      if (totals.size > 10_000) totals.clear();
    },
  };
}

export type LikeService = ReturnType<typeof createLikeService>;
