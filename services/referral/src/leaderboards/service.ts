import type { Model } from 'mongoose';
import type { FirstOrderDoc } from '../campaigns/model';
import type { OrderDecisionDoc } from '../distribution/model';
import type { GroupBuyDoc, GroupBuyOutcomeDoc } from '../groupbuy/model';
import {
  addDays,
  badInput,
  findByIds,
  localClock,
  localDate,
  localMidnight,
  requireViewer,
  wholeNumber,
  type Viewer,
} from '@flywheel/service-kit';

export type Board = 'INVITES' | 'GROUP_BUYS' | 'DISTRIBUTION_SALES';
export type Period = 'WEEK' | 'MONTH';

/** A board is recounted at most this often per replica. */
export const BOARD_CACHE_MS = 30_000;
export const BOARD_LIMITS = { first: 50 };

/** The records each board counts, as the modules that decide them store them (read-only here). */
export interface BoardSources {
  /** campaigns: an invitee's first paid order (`_id` = inviteeId), with its inviter when bound. */
  firstOrders: Model<FirstOrderDoc>;
  /** groupbuy: a group's outcome, once (`_id` = groupId, or `groupId:late:<orderId>` for a late payment). */
  groupOutcomes: Model<GroupBuyOutcomeDoc>;
  groups: Model<GroupBuyDoc>;
  /** distribution: what a paid order booked, once per order (`_id` = orderId). */
  orderDecisions: Model<OrderDecisionDoc>;
}

export interface Standing {
  rank: number;
  memberId: string;
  score: number;
}

/** The period holding `at` in `timeZone`: [from, to). */
export function periodOf(period: Period, at: Date, timeZone: string): { from: Date; to: Date } {
  const day = localDate(at, timeZone);
  if (period === 'WEEK') {
    const monday = addDays(day, 1 - localClock(at, timeZone).weekday);
    return { from: localMidnight(monday, timeZone), to: localMidnight(addDays(monday, 7), timeZone) };
  }
  const first = `${day.slice(0, 7)}-01`;
  const [y, m] = [Number(day.slice(0, 4)), Number(day.slice(5, 7))];
  const next = m === 12 ? `${y + 1}-01-01` : `${y}-${String(m + 1).padStart(2, '0')}-01`;
  return { from: localMidnight(first, timeZone), to: localMidnight(next, timeZone) };
}

/** Ranks by score (highest first), ties to whoever reached it first, then by member id. */
export function rank(scores: Map<string, { score: number; last: number }>, first: number): Standing[] {
  return [...scores.entries()]
    .filter(([, s]) => s.score > 0)
    .sort((a, b) => b[1].score - a[1].score || a[1].last - b[1].last || a[0].localeCompare(b[0]))
    .slice(0, first)
    .map(([memberId, s], i) => ({ rank: i + 1, memberId, score: s.score }));
}

/**
 * Referral leaderboards: each board is counted from the records its module decided once (first
 * paid orders, group outcomes, order commission decisions) within the period, so it is exact for
 * the instant it was counted; a replica keeps a count for BOARD_CACHE_MS.
 */
export function createLeaderboardService(deps: { sources: BoardSources; now: () => Date; timeZone: string }) {
  const { sources, now, timeZone } = deps;
  const cache = new Map<string, { at: number; countedAt: Date; standings: Standing[] }>();

  function add(scores: Map<string, { score: number; last: number }>, memberId: string, by: number, at: Date) {
    const s = scores.get(memberId) ?? { score: 0, last: 0 };
    s.score += by;
    s.last = Math.max(s.last, at.getTime());
    scores.set(memberId, s);
  }

  async function count(board: Board, from: Date, to: Date): Promise<Standing[]> {
    const scores = new Map<string, { score: number; last: number }>();
    if (board === 'INVITES') {
      const rows = await sources.firstOrders.find({ paidAt: { $gte: from, $lt: to } }, { inviterId: 1, paidAt: 1 }).lean();
      for (const r of rows) if (r.inviterId) add(scores, r.inviterId, 1, r.paidAt);
    } else if (board === 'GROUP_BUYS') {
      const rows = await sources.groupOutcomes
        .find({ at: { $gte: from, $lt: to }, outcome: 'SUCCEEDED' }, { groupId: 1, virtual: 1, at: 1 })
        .lean();
      // One outcome per group counts (late payments carry a record of their own); virtual ones do not.
      const real = rows.filter((r) => !r.virtual && r._id === r.groupId);
      const leaders = new Map(
        (
          await findByIds<{ _id: string; leaderId: string }>(
            sources.groups,
            real.map((r) => r.groupId),
            { leaderId: 1 },
          )
        ).map((g) => [g._id, g.leaderId]),
      );
      for (const r of real) {
        const leader = leaders.get(r.groupId);
        if (leader) add(scores, leader, 1, r.at);
      }
    } else {
      const rows = await sources.orderDecisions.find({ at: { $gte: from, $lt: to } }, { orderTotal: 1, levels: 1, at: 1 }).lean();
      for (const r of rows) {
        const l1 = r.levels?.find((l) => l.level === 1);
        if (l1) add(scores, l1.distributorId, r.orderTotal, r.at);
      }
    }
    return rank(scores, BOARD_LIMITS.first);
  }

  return {
    async leaderboard(viewer: Viewer | null, args: { board: Board; period: Period; at?: Date | null; first?: number | null }) {
      requireViewer(viewer);
      const first = wholeNumber(args.first ?? 10, 'first', 1, BOARD_LIMITS.first);
      const at = args.at ?? now();
      if (Number.isNaN(at.getTime())) throw badInput('at must be an ISO-8601 time', 'at');
      const { from, to } = periodOf(args.period, at, timeZone);
      const key = `${args.board}:${from.toISOString()}`;
      let hit = cache.get(key);
      if (!hit || Date.now() - hit.at > BOARD_CACHE_MS) {
        const countedAt = now();
        hit = { at: Date.now(), countedAt, standings: await count(args.board, from, to) };
        if (cache.size > 200) cache.clear();
        cache.set(key, hit);
      }
      return { board: args.board, period: args.period, from, to, countedAt: hit.countedAt, standings: hit.standings.slice(0, first) };
    },
  };
}
export type LeaderboardService = ReturnType<typeof createLeaderboardService>;
export type LeaderboardShape = Awaited<ReturnType<LeaderboardService['leaderboard']>>;
