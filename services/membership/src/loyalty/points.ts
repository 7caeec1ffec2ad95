import { AppError, appendOnce, badInput, claimOnce, ledgerHead } from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';
import { localDate } from '../program';
import { growthAccount, pointsAccount, type LotAccounts, type LoyaltyContext } from './accounts';
import { addLots, available, portionOf, proRata, takeFifo, takeNewest, total, type Lot } from './lots';
import type { LotEntryDoc } from './model';
import type { Tiers } from './tiers';

/** A spend the balance does not cover: refused against the ledger's head, nothing taken. */
export class PointsRefused extends AppError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

/** Points moved by orders, checkouts and grants: earn and claw back, spend and give back. */
export function createPointsFlows(ctx: LoyaltyContext, accounts: LotAccounts, tiers: Tiers) {
  const { models, now, queue, program } = ctx;
  const { append, creditPoints, appendGrowth } = accounts;
  const { evaluateTier } = tiers;

  /** The refund's place among the order's refunds: the running total before and after it. */
  async function refundShare(orderId: string, refundId: string, amount: number): Promise<{ before: number; after: number }> {
    const found = await models.RefundEntry.findOne({ op: refundId }).lean();
    const entry =
      found ??
      (await queue(
        `refund:${orderId}`,
        async () =>
          // Null: this refund is already recorded (a replay, or another replica got there first).
          (await appendOnce(models.RefundEntry, orderId, refundId, (head) => ({
            amount,
            cumulative: (head?.cumulative ?? 0) + amount,
            at: now(),
          }))) ?? (await models.RefundEntry.findOne({ op: refundId }).lean()),
      ));
    if (!entry) throw new Error(`refund ${refundId} of ${orderId} not recorded`);
    return { before: entry.cumulative - entry.amount, after: entry.cumulative };
  }

  /**
   * The one claw-back: takes up to `n` from the newest lots, never below zero; what the member
   * already spent is the entry's `shortfall` (refunds, and grants taken back by their granter).
   */
  const clawBack =
    (n: number, reason: string, extra: { orderId?: string; refundId?: string } = {}) =>
    (lots: Lot[]) => {
      if (n <= 0) return null;
      const res = takeNewest(lots, n, now());
      return {
        kind: 'CLAWBACK' as const,
        delta: -(n - res.shortfall),
        balance: total(res.lots),
        lots: res.lots,
        at: now(),
        reason,
        ...extra,
        taken: res.taken,
        shortfall: res.shortfall,
      };
    };

  /** The record of a keyed grant (`membership.points.grant`): who got how many, what a revoke takes back. */
  const grantRecord = (key: string) => `points:${key}`;

  return {
    refundShare,

    /**
     * Points granted by another service under its `key` (a showcase reward), once: the record
     * (`points:<key>` in loyalty_claims) is the claim, the credit is applied under it as op, so a
     * crash in between is finished by the repeat. A key reused for other points is CONFLICT.
     */
    async grantByKey(input: { key: string; memberId: string; points: number; reason: string }): Promise<{ points: number }> {
      if (!Number.isSafeInteger(input.points) || input.points <= 0 || input.points > 1_000_000) {
        throw badInput('Points must be 1 to 1,000,000', 'points');
      }
      const record = { _id: grantRecord(input.key), memberId: input.memberId, points: input.points, at: now() };
      if (!(await claimOnce(models.LoyaltyClaim, record))) {
        const first = await models.LoyaltyClaim.findById(record._id).lean();
        if (!first || first.memberId !== input.memberId || first.points !== input.points) {
          throw new AppError('CONFLICT', 'This key was already used for another grant', { reason: 'KEY_REUSED' });
        }
      }
      await creditPoints(input.memberId, record._id, input.points, 'GRANT', input.reason.slice(0, 200));
      return { points: input.points };
    },

    /**
     * Takes back what `grantByKey` gave under `key`, once (op `revoke:points:<key>`): the refund
     * claw-back, so points already spent are a shortfall, never a negative balance. A repeat
     * answers from the entry written the first time. Unknown key: nothing taken.
     */
    async revokeByKey(key: string, reason: string): Promise<{ revoked: boolean; taken: number; shortfall: number }> {
      const grant = await models.LoyaltyClaim.findById(grantRecord(key)).lean();
      if (!grant?.points) return { revoked: false, taken: 0, shortfall: 0 };
      const account = pointsAccount(grant.memberId);
      const op = `revoke:${grant._id}`;
      // A repeat answers from the first entry (a look-up by op, the rare path) without appending.
      let entry = await models.LotEntry.findOne({ op: `${account}:${op}` }).lean<LotEntryDoc>();
      if (!entry) {
        // Finish a grant a crash interrupted, so the claw-back takes what was really given.
        if (!(await models.LotEntry.exists({ op: `${account}:${grant._id}` }))) {
          await creditPoints(grant.memberId, grant._id, grant.points, 'GRANT', 'Granted');
        }
        entry = (await append(account, op, clawBack(grant.points, reason.slice(0, 200))))?.entry ?? null;
      }
      return { revoked: true, taken: entry ? -entry.delta : 0, shortfall: entry?.shortfall ?? 0 };
    },

    /**
     * Points and growth for a paid order at the member's tier rate (× member day); once per order.
     * Growth goes first so that the tier read after it can settle the tier without a second read
     * (see `evaluateTier`); the points use that tier, the one before this order's own upgrade.
     * Steady state, one replica: four commands (growth insert, tier read, order claim, points insert).
     */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      const p = await program();
      const { memberId, orderId } = data;
      const paidAt = new Date(data.paidAt);
      const yuan = Math.floor(data.total / 100);
      const memberDay = p.memberDay && Number(localDate(paidAt, p.timeZone).slice(8, 10)) === p.memberDay.dayOfMonth;
      const reason = memberDay ? `Order ${orderId} (member day)` : `Order ${orderId}`;
      const op = `earn:${orderId}`;
      const earned = await appendGrowth(memberId, op, yuan * p.growthPerYuan, reason, { orderId });
      const tierHead = await ledgerHead(models.TierEntry, memberId);
      const tier = tierHead?.tier ?? 'REGULAR';
      const multiplier = p.tiers[tier].pointsMultiplierPercent * (memberDay ? p.memberDay!.pointsMultiplierPercent : 100);
      const points = Math.floor((yuan * p.pointsPerYuan * multiplier) / 10_000);
      // What the order earned, for refunds; its insert is the claim that fixes the points once.
      // Growth is what the ledger holds for the order (a replay finds the first delivery's).
      const record = { _id: orderId, memberId, total: data.total, points, growth: earned?.entry.delta ?? 0, paidAt };
      if (!(await claimOnce(models.LoyaltyOrder, record, { raw: true }))) {
        const first = await models.LoyaltyOrder.findById(orderId).lean();
        if (first) Object.assign(record, first);
      }
      await creditPoints(memberId, op, record.points, 'EARN', reason, { orderId });
      // A replay evaluates too (reading both heads): its first delivery may have stopped short of it.
      if (earned) await evaluateTier(memberId, now(), earned.fresh ? { growthHead: earned.entry, tierHead } : {});
    },

    /**
     * A refund claws back its pro-rata share of what the order earned (cumulative over the
     * order's refunds, so several partial refunds add up exactly). Never below zero: points
     * already spent are recorded as a shortfall.
     */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const order = await models.LoyaltyOrder.findById(data.orderId).lean();
      // The paid event has not been handled yet: redeliver later rather than lose the claw-back.
      if (!order) throw new Error(`refund ${data.refundId}: order ${data.orderId} not earned yet`);
      const { before, after } = await refundShare(data.orderId, data.refundId, data.amount);
      const points = proRata(order.points, after, order.total) - proRata(order.points, before, order.total);
      const growth = proRata(order.growth, after, order.total) - proRata(order.growth, before, order.total);
      const reason = `Refund ${data.refundId} of order ${data.orderId}`;
      const claw = (n: number) => clawBack(n, reason, { orderId: data.orderId, refundId: data.refundId });
      await append(pointsAccount(data.memberId), `clawback:${data.refundId}`, claw(points));
      const g = await append(growthAccount(data.memberId), `clawback:${data.refundId}`, claw(growth));
      if (g?.fresh) await evaluateTier(data.memberId, now(), { refundOf: order.paidAt, growthHead: g.entry });
    },

    /**
     * Debits `n` points for a checkout (FIFO), once; returns the lots taken (what a release or
     * refund gives back). `PointsRefused` (CONFLICT) when the balance no longer covers it: then
     * nothing was taken. `firstAttempt`: the caller just won the claim this spend hangs on, so it
     * cannot be a replay and a refusal is final without a ledger search.
     */
    async spend(memberId: string, checkoutId: string, n: number, opts: { firstAttempt?: boolean } = {}): Promise<Lot[]> {
      const res = await append(
        pointsAccount(memberId),
        `spend:${checkoutId}`,
        (lots) => {
          const res = takeFifo(lots, n, now());
          if (!res) throw new PointsRefused(`Not enough points: ${available(lots, now())} available, ${n} asked`);
          return {
            kind: 'SPEND',
            delta: -n,
            balance: total(res.lots),
            lots: res.lots,
            at: now(),
            reason: `Checkout ${checkoutId}`,
            orderId: checkoutId,
            taken: res.taken,
          };
        },
        { mayBeReplay: !opts.firstAttempt },
      );
      return res?.entry.taken ?? [];
    },

    /**
     * Gives back `n` of what a checkout spent (all of it on release, a refund's share on refund),
     * with the expiries they had; once per `op`.
     */
    async giveBack(memberId: string, checkoutId: string, n: number, op: string, reason: string, taken?: Lot[]): Promise<void> {
      if (n <= 0) return;
      // What the spend took, as the caller kept it, else from the ledger (a scan: the rare path).
      const spent = taken?.length
        ? taken
        : (await models.LotEntry.findOne({ op: `${pointsAccount(memberId)}:spend:${checkoutId}` }).lean<LotEntryDoc>())?.taken;
      if (!spent?.length) return;
      const portion = portionOf(spent, n);
      await append(pointsAccount(memberId), op, (lots) => {
        const next = addLots(lots, portion);
        return { kind: 'RETURN', delta: n, balance: total(next), lots: next, at: now(), reason, orderId: checkoutId };
      });
    },

    /** Points granted by staff or another service (referral rewards), once per `op`. */
    async grantPoints(memberId: string, op: string, n: number, reason: string) {
      if (!Number.isSafeInteger(n) || n <= 0 || n > 1_000_000) throw badInput('Points must be 1 to 1,000,000', 'points');
      const res = await creditPoints(memberId, op, n, 'GRANT', reason);
      return res?.entry ?? null;
    },
  };
}
