import { randomUUID } from 'node:crypto';
import { appendToLedger, ledgerHead, outboxRecord } from '@flywheel/service-kit';
import { TIERS, type LoyaltyProgram, type TierName } from '../program';
import { DAY_MS, growthAccount, type EntryBody, type LotAccounts, type LoyaltyContext } from './accounts';
import { available } from './lots';
import type { LotEntryDoc, TierEntryDoc } from './model';

const tierFor = (p: LoyaltyProgram, growth: number): TierName =>
  [...TIERS].reverse().find((t) => growth >= p.tiers[t].threshold) ?? 'REGULAR';
const rank = (t: TierName) => TIERS.indexOf(t);

/** Growth and tiers: the tier ledger's evaluations, and growth credits that evaluate it. */
export function createTiers(ctx: LoyaltyContext, accounts: LotAccounts) {
  const { models, now, queue, program } = ctx;
  const { headOf, appendGrowth } = accounts;

  /**
   * Moves the member's tier to what their growth earns: up at once; down only once growth has
   * been below the current tier for the retention period (the first evaluation below it starts
   * the clock, one that finds growth recovered stops it). Each change is a tier entry carrying
   * `membership.tier.changed`; concurrent evaluations append at most one entry per head.
   *
   * `refundOf`: the paid time of an order whose refund just took growth back. If the member
   * reached their tier after paying that order, the order paid for the upgrade: it is undone at
   * once. Otherwise (and when growth ages out of its window) the retention period applies.
   *
   * Exact across replicas by one rule: whoever appends a tier entry reads the growth head again
   * afterwards and, if growth moved meanwhile, decides again on the newer figure. So a decision of
   * "no change" made on a tier head read after a growth entry was written (`tierHead`, read by the
   * caller) stands without reading the tier again: any tier entry appended since that read was
   * decided by an evaluator that re-checks growth after appending, and sees that growth entry.
   * `growthHead`: the growth entry the caller just wrote (the head when it was written).
   */
  async function evaluateTier(
    memberId: string,
    at: Date,
    opts: { refundOf?: Date; growthHead?: LotEntryDoc | null; tierHead?: TierEntryDoc | null } = {},
  ): Promise<TierEntryDoc | null> {
    const p = await program();
    return queue(`tier:${memberId}`, async () => {
      // Read inside the queue: a growth figure taken before it could be older than the tier head.
      let growthHead = opts.growthHead !== undefined ? opts.growthHead : await headOf(growthAccount(memberId));
      let known = opts.tierHead;
      let last: TierEntryDoc | null = null;
      for (let round = 1; ; round++) {
        const growth = available(growthHead?.lots ?? [], at);
        const decide = (head: TierEntryDoc | null) => decideTier(p, memberId, at, growth, head, opts.refundOf);
        // A known head (or knowing there is none yet) saves the read unless the tier moves.
        const entry =
          known !== undefined && decide(known) === null
            ? null
            : await appendToLedger(models.TierEntry, memberId, decide, known ? { knownHead: known } : {});
        if (!entry) return last;
        last = entry;
        if (entry.outbox) ctx.kick();
        const latest = await headOf(growthAccount(memberId));
        if ((latest?.seq ?? 0) === (growthHead?.seq ?? 0) || round >= 5) return last;
        growthHead = latest;
        known = entry;
      }
    });
  }

  /** The tier entry `head` leads to at `growth` (null: none, the tier stands as it is). */
  function decideTier(p: LoyaltyProgram, memberId: string, at: Date, growth: number, head: TierEntryDoc | null, refundOf?: Date) {
    const current: TierName = head?.tier ?? 'REGULAR';
    const earned = tierFor(p, growth);
    const base = { growth, at, tierSince: head?.tierSince ?? head?.at ?? at };
    const move = (direction: 'UP' | 'DOWN') => ({
      ...base,
      tier: earned,
      belowSince: null,
      tierSince: at,
      direction,
      // The relay finds entries by when they were written (the wall clock), whatever `at` says.
      outbox: outboxRecord(
        'membership.tier.changed',
        { memberId, from: current, to: earned, direction, growth, changedAt: at.toISOString() },
        randomUUID(),
        new Date(),
      ),
    });
    if (rank(earned) > rank(current)) return move('UP');
    if (rank(earned) === rank(current)) return head?.belowSince ? { ...base, tier: current, belowSince: null } : null;
    // A refund of the order that paid for this tier takes it back at once.
    if (refundOf && head && base.tierSince.getTime() >= refundOf.getTime()) return move('DOWN');
    // Below the current tier: start the retention clock, or downgrade once it has run out.
    if (!head?.belowSince) return { ...base, tier: current, belowSince: at };
    if (at.getTime() - head.belowSince.getTime() < p.tierRetentionDays * DAY_MS) return null;
    return move('DOWN');
  }

  async function tierOf(memberId: string): Promise<TierName> {
    return (await ledgerHead(models.TierEntry, memberId))?.tier ?? 'REGULAR';
  }

  async function creditGrowth(memberId: string, op: string, n: number, reason: string, extra: Partial<EntryBody> = {}) {
    const res = await appendGrowth(memberId, op, n, reason, extra);
    if (res?.fresh) await evaluateTier(memberId, now(), { growthHead: res.entry });
    return res;
  }

  return { evaluateTier, tierOf, creditGrowth };
}

export type Tiers = ReturnType<typeof createTiers>;
