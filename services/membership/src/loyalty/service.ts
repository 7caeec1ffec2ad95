import { createKeyQueue, decodeSeqCursor, encodeSeqCursor, ledgerHead, pageSize, requireRole, type Viewer } from '@flywheel/service-kit';
import {
  localDate,
  loyaltyProgramOf,
  LOYALTY_SETTINGS_KEY,
  loyaltyProgram,
  parseProgram,
  type LoyaltyProgram,
  type TierName,
} from '../program';
import { createLotAccounts, DAY_MS, pointsAccount, type LoyaltyContext, type LoyaltyDeps } from './accounts';
import { available, dropExpired, total } from './lots';
import type { LotEntryDoc } from './model';
import { createPointsFlows } from './points';
import { createTaskRewards } from './tasks';
import { createTiers } from './tiers';

export type { LoyaltyDeps } from './accounts';
export { PointsRefused } from './points';

export interface PointsView {
  memberId: string;
  balance: number;
  /** Unexpired points whose lots expire within the program's `expiringSoonDays`. */
  expiringSoon: number;
  expiringSoonBefore: Date;
}

export interface TierView {
  memberId: string;
  tier: TierName;
  growth: number;
  /** Set while growth is below the tier: the day the tier is lost unless growth recovers. */
  retainedUntil: Date | null;
  program: LoyaltyProgram;
}

/**
 * Points, growth and tiers, tasks, member day and birthdays, composed from the module's parts:
 * the lot accounts' writer (accounts.ts), tiers (tiers.ts), points flows (points.ts) and task
 * rewards (tasks.ts); the views, program updates and the sweep live here.
 */
export function createLoyaltyService(deps: LoyaltyDeps) {
  const { models, now } = deps;
  const queue = createKeyQueue().run;
  const program = () => loyaltyProgramOf(deps.settings);
  const ctx: LoyaltyContext = { ...deps, queue, program };
  const accounts = createLotAccounts(ctx);
  const { append, noteExpiry, headOf, pointsOf, growthOf } = accounts;
  const tiers = createTiers(ctx, accounts);
  const { evaluateTier, tierOf } = tiers;
  const { refundShare, ...points } = createPointsFlows(ctx, accounts, tiers);
  const { grantBirthday, ...tasks } = createTaskRewards(ctx, accounts, tiers);

  return {
    pointsOf,
    growthOf,
    grantBirthday,
    tierOf,
    evaluateTier,
    refundShare,
    program,

    async pointsView(memberId: string): Promise<PointsView> {
      const [p, head] = await Promise.all([program(), headOf(pointsAccount(memberId))]);
      const at = now();
      const soon = new Date(at.getTime() + p.expiringSoonDays * DAY_MS);
      const lots = head?.lots ?? [];
      return {
        memberId,
        balance: available(lots, at),
        expiringSoon: total(lots.filter((l) => l.expiresAt > at && l.expiresAt <= soon)),
        expiringSoonBefore: soon,
      };
    },

    async tierView(memberId: string): Promise<TierView> {
      const [p, head, growth] = await Promise.all([program(), ledgerHead(models.TierEntry, memberId), growthOf(memberId)]);
      const belowSince = head?.belowSince ?? null;
      return {
        memberId,
        tier: head?.tier ?? 'REGULAR',
        growth,
        retainedUntil: belowSince ? new Date(belowSince.getTime() + p.tierRetentionDays * DAY_MS) : null,
        program: p,
      };
    },

    /** The member's points history, newest first (seq-paged by `_id` look-ups). */
    async history(memberId: string, first: number, after?: string | null) {
      const size = pageSize(first, 100);
      const accountId = pointsAccount(memberId);
      const seq = decodeSeqCursor(after);
      const top = seq !== null ? seq - 1 : ((await headOf(accountId))?.seq ?? 0);
      const seqs = Array.from({ length: Math.min(size, top) }, (_, i) => top - i);
      const docs = await Promise.all(seqs.map((s) => models.LotEntry.findById(`${accountId}:${s}`).lean<LotEntryDoc>()));
      const entries = docs.filter((d): d is LotEntryDoc => Boolean(d));
      const last = entries.at(-1);
      return {
        edges: entries.map((e) => ({ node: e, cursor: encodeSeqCursor(e.seq) })),
        pageInfo: { hasNextPage: Boolean(last && last.seq > 1), endCursor: last ? encodeSeqCursor(last.seq) : null },
      };
    },

    ...points,
    ...tasks,

    async updateProgram(viewer: Viewer | null, patch: Record<string, unknown>): Promise<LoyaltyProgram> {
      const staff = requireRole(viewer, 'STAFF');
      const current = await program();
      const next = parseProgram(loyaltyProgram, { ...current, ...patch });
      return deps.settings.set(LOYALTY_SETTINGS_KEY, next, staff.id);
    },

    /**
     * Periodic work: writes EXPIRE entries for lots past their expiry (points and growth), moves
     * tiers whose retention ran out, grants today's birthday gifts. Each step is claimed, so
     * re-running at the same instant changes nothing.
     */
    async sweep(at: Date): Promise<Record<string, number>> {
      const tally = { expired: 0, tiersChecked: 0, birthdays: 0 };
      const due = await models.LoyaltyAccount.find({ nextExpiry: { $ne: null, $lte: at } })
        .limit(1000)
        .lean();
      const members = new Set<string>();
      for (const acc of due) {
        try {
          const head = await headOf(acc._id);
          const lots = head?.lots ?? [];
          const firstExpired = lots.find((l) => l.expiresAt <= at);
          if (!firstExpired) {
            await noteExpiry(acc._id, lots);
            continue;
          }
          const res = await append(acc._id, `expire:${acc._id}:${firstExpired.expiresAt.toISOString()}`, (cur) => {
            const d = dropExpired(cur, at);
            if (d.expired === 0) return null;
            return { kind: 'EXPIRE', delta: -d.expired, balance: total(d.lots), lots: d.lots, at, reason: 'Expired' };
          });
          if (res?.fresh) tally.expired += -res.entry.delta;
          if (acc._id.startsWith('g:')) members.add(acc._id.slice(2));
        } catch (err) {
          deps.logger.warn({ err, accountId: acc._id }, 'expiry failed; the next sweep retries');
        }
      }
      // Tiers waiting out their retention, and members whose growth just fell.
      const watched = await models.TierEntry.find({ belowSince: { $ne: null } }, { accountId: 1 }).lean();
      for (const w of watched) members.add(w.accountId);
      for (const memberId of members) {
        await evaluateTier(memberId, at);
        tally.tiersChecked++;
      }
      const p = await program();
      const today = localDate(at, p.timeZone).slice(5);
      const born = await deps.core.Member.find({ birthday: today }, { _id: 1 }).lean();
      for (const m of born) if (await grantBirthday(m._id.toHexString(), at)) tally.birthdays++;
      return tally;
    },
  };
}
export type LoyaltyService = ReturnType<typeof createLoyaltyService>;
