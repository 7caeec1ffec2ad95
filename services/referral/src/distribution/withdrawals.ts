import {
  AppError,
  appendOnce,
  claimOnce,
  notFound,
  optionalText,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  sha256,
  text,
  wholeNumber,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { DistributionModels, WithdrawalDoc, WithdrawalStepDoc } from './model';
import type { PayoutProvider } from './payouts';
import type { DistributorService } from './service';

export const WITHDRAWAL_LIMITS = { maxAmount: 100_000_000, idempotencyKey: 100, reason: 200 } as const;
/** How far back the sweep looks for approved withdrawals still unpaid. */
const RETRY_WINDOW_MS = 30 * 86_400_000;

export type WithdrawalStatus = 'REQUESTED' | 'APPROVED' | 'REJECTED' | 'PAID';

/** What `Withdrawal` resolves from. */
export interface WithdrawalView {
  id: string;
  memberId: string;
  amount: number;
  status: WithdrawalStatus;
  requestedAt: Date;
  decidedAt: Date | null;
  reason: string | null;
  paidAt: Date | null;
  providerPayoutId: string | null;
  lastError: string | null;
}

export interface WithdrawalDeps {
  models: DistributionModels;
  distributors: DistributorService;
  payouts: PayoutProvider;
  now: () => Date;
  logger: Logger;
}

/**
 * Withdrawals (提现) of the settled balance: the request holds the amount by a ledger entry
 * (`hold:<id>`, refused against the real head, so two requests can never overdraw); staff decide
 * once (the `<id>:decision` claim); an approved one is paid through the provider under the
 * withdrawal's id and recorded once (`<id>:paid`); the sweep retries a payout that failed.
 */
export function createWithdrawalService(deps: WithdrawalDeps) {
  const { models, distributors, payouts, now, logger } = deps;

  async function view(w: WithdrawalDoc): Promise<WithdrawalView> {
    const steps = await models.WithdrawalStep.find({ _id: { $in: [`${w._id}:decision`, `${w._id}:paid`] } }).lean<WithdrawalStepDoc[]>();
    const decision = steps.find((s) => s.step === 'DECISION');
    const paid = steps.find((s) => s.step === 'PAID');
    const status: WithdrawalStatus = paid ? 'PAID' : (decision?.decision ?? 'REQUESTED');
    return {
      id: w._id,
      memberId: w.memberId,
      amount: w.amount,
      status,
      requestedAt: w.requestedAt,
      decidedAt: decision?.at ?? null,
      reason: decision?.reason ?? null,
      paidAt: paid?.at ?? null,
      providerPayoutId: paid?.providerPayoutId ?? null,
      lastError: paid ? null : (w.lastError ?? null),
    };
  }

  async function find(rawId: string): Promise<WithdrawalDoc> {
    const id = requireObjectId(rawId, 'withdrawalId').toLowerCase();
    const w = await models.Withdrawal.findById(id).lean<WithdrawalDoc>();
    if (!w) throw notFound('Withdrawal');
    return w;
  }

  /** Decides once; a replay of the same decision goes on, the other one is CONFLICT. */
  async function decide(w: WithdrawalDoc, decision: 'APPROVED' | 'REJECTED', by: string, reason?: string) {
    const won = await claimOnce(models.WithdrawalStep, {
      _id: `${w._id}:decision`,
      withdrawalId: w._id,
      step: 'DECISION',
      decision,
      by,
      at: now(),
      ...(reason ? { reason } : {}),
    });
    if (won) return;
    const first = await models.WithdrawalStep.findById(`${w._id}:decision`).lean<WithdrawalStepDoc>();
    if (first?.decision !== decision) {
      throw new AppError('CONFLICT', `This withdrawal was ${first?.decision ?? 'decided'} already`, {
        reason: first?.decision ?? 'DECIDED',
      });
    }
  }

  /** Pays an approved withdrawal unless it was paid: the provider is idempotent on the id, the record is a claim. */
  async function payOnce(w: WithdrawalDoc): Promise<boolean> {
    if (await models.WithdrawalStep.exists({ _id: `${w._id}:paid` })) return false;
    try {
      const { providerPayoutId } = await payouts.payout({ payoutId: w._id, memberId: w.memberId, amount: w.amount, currency: 'CNY' });
      return claimOnce(models.WithdrawalStep, { _id: `${w._id}:paid`, withdrawalId: w._id, step: 'PAID', providerPayoutId, at: now() });
    } catch (err) {
      logger.warn({ err, withdrawalId: w._id }, 'payout failed; the sweep retries');
      // A projection for staff: which failure the next sweep will retry.
      await models.Withdrawal.updateOne({ _id: w._id }, { $set: { lastError: (err as Error).message.slice(0, 200) } });
      return false;
    }
  }

  return {
    /**
     * Holds `amount` of the settled balance: at least the minimum, at most the settled balance at
     * the ledger's head. A replay of the key returns the first request.
     */
    async request(viewer: Viewer | null, input: { amount: number; idempotencyKey: string }): Promise<WithdrawalView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const key = text(input.idempotencyKey, 'idempotencyKey', WITHDRAWAL_LIMITS.idempotencyKey);
      const amount = wholeNumber(input.amount, 'amount', 1, WITHDRAWAL_LIMITS.maxAmount);
      const id = sha256(`requestWithdrawal\0${memberId}\0${key}`).slice(0, 24);
      const first = await models.Withdrawal.findById(id).lean<WithdrawalDoc>();
      if (first) return view(first);
      const { minWithdrawal } = await distributors.settings();
      if (amount < minWithdrawal) {
        throw new AppError('BAD_USER_INPUT', `At least ${minWithdrawal} fen`, {
          field: 'amount',
          reason: 'BELOW_MINIMUM',
          minimum: minWithdrawal,
        });
      }
      const at = now();
      await appendOnce(models.CommissionEntry, memberId, `hold:${id}`, (head) => {
        const t = head ?? { pending: 0, settled: 0, withdrawn: 0 };
        if (t.settled < amount) {
          throw new AppError('CONFLICT', 'More than the settled balance', {
            reason: 'INSUFFICIENT_BALANCE',
            available: Math.max(0, t.settled),
          });
        }
        return {
          kind: 'HOLD' as const,
          amount,
          withdrawalId: id,
          pending: t.pending,
          settled: t.settled - amount,
          withdrawn: t.withdrawn + amount,
          shortfall: 0,
          at,
        };
      });
      const doc: WithdrawalDoc = { _id: id, memberId, amount, requestedAt: at };
      await claimOnce(models.Withdrawal, { ...doc });
      return view((await models.Withdrawal.findById(id).lean<WithdrawalDoc>()) ?? doc);
    },

    /** Staff: approves and pays (once); a replay pays nothing more. A failed payout stays APPROVED with `lastError`. */
    async approve(viewer: Viewer | null, rawId: string): Promise<WithdrawalView> {
      const by = requireRole(viewer, 'STAFF').id;
      const w = await find(rawId);
      await decide(w, 'APPROVED', by);
      await payOnce(w);
      return view((await models.Withdrawal.findById(w._id).lean<WithdrawalDoc>()) ?? w);
    },

    /** Staff: rejects, and the held amount returns to the settled balance (once: op `release:<id>`). */
    async reject(viewer: Viewer | null, rawId: string, rawReason: string | null | undefined): Promise<WithdrawalView> {
      const by = requireRole(viewer, 'STAFF').id;
      const w = await find(rawId);
      const reason = optionalText(rawReason, 'reason', WITHDRAWAL_LIMITS.reason) ?? undefined;
      await decide(w, 'REJECTED', by, reason);
      await appendOnce(models.CommissionEntry, w.memberId, `release:${w._id}`, (head) => {
        const t = head ?? { pending: 0, settled: 0, withdrawn: 0 };
        return {
          kind: 'RELEASE' as const,
          amount: w.amount,
          withdrawalId: w._id,
          pending: t.pending,
          settled: t.settled + w.amount,
          withdrawn: t.withdrawn - w.amount,
          shortfall: 0,
          at: now(),
        };
      });
      return view(w);
    },

    async read(viewer: Viewer | null, rawId: string): Promise<WithdrawalView> {
      const w = await find(rawId);
      requireSelfOrStaff(viewer, w.memberId);
      return view(w);
    },

    /** Pays approved withdrawals whose payout failed. */
    async sweep(at: Date): Promise<number> {
      const approved = await models.WithdrawalStep.find({
        step: 'DECISION',
        decision: 'APPROVED',
        at: { $gte: new Date(at.getTime() - RETRY_WINDOW_MS) },
      })
        .limit(500)
        .lean<WithdrawalStepDoc[]>();
      if (!approved.length) return 0;
      const paid = new Set(
        (
          await models.WithdrawalStep.find({ _id: { $in: approved.map((s) => `${s.withdrawalId}:paid`) } }, { withdrawalId: 1 }).lean<
            WithdrawalStepDoc[]
          >()
        ).map((s) => s.withdrawalId),
      );
      let n = 0;
      for (const s of approved) {
        if (paid.has(s.withdrawalId)) continue;
        const w = await models.Withdrawal.findById(s.withdrawalId).lean<WithdrawalDoc>();
        if (w && (await payOnce(w))) n++;
      }
      return n;
    },
  };
}

export type WithdrawalService = ReturnType<typeof createWithdrawalService>;
