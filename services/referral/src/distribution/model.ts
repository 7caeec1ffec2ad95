import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OpLedgerEntry, type OutboxRecord } from '@flywheel/service-kit';

export const DISTRIBUTOR_MODES = ['EVERYONE', 'APPROVED'] as const;
export type DistributorMode = (typeof DISTRIBUTOR_MODES)[number];
export const ATTRIBUTIONS = ['FIRST_TOUCH', 'LAST_TOUCH'] as const;
export type Attribution = (typeof ATTRIBUTIONS)[number];
export type CommissionLevel = 1 | 2;

export interface ProductRate {
  productId: string;
  level1Bps: number;
  level2Bps: number;
}

/** Staff's distribution settings as a versioned ledger (accountId `distribution`): the head is the rule, seq its version. */
export interface SettingsEntryDoc extends LedgerEntry {
  mode: DistributorMode;
  attribution: Attribution;
  bindingDays: number;
  level1Bps: number;
  level2Bps: number;
  productRates: ProductRate[];
  /** Fen. */
  minWithdrawal: number;
  by: string;
  at: Date;
}

/** A member's distributor status as a ledger (accountId = memberId): the head is the status. */
export interface DistributorEntryDoc extends LedgerEntry {
  status: 'APPLIED' | 'APPROVED' | 'REVOKED';
  by: string;
  reason?: string;
  at: Date;
}

/** Who a buyer is bound to (accountId = buyerId): the head is the binding, valid until `expiresAt`. */
export interface BuyerBindingDoc extends LedgerEntry {
  distributorId: string;
  code: string;
  via: 'LINK' | 'ORDER';
  boundAt: Date;
  expiresAt: Date;
}

/**
 * What a paid order earned (`_id` = orderId, the once-per-order claim): the levels it books, or why
 * it books none. Written before any commission entry, so a redelivery re-applies exactly these.
 */
export interface OrderDecisionDoc {
  _id: string;
  buyerId: string;
  orderTotal: number;
  /** Absent when commissions were booked. */
  refusal?: 'SELF_REFERRAL' | 'NOT_REFERRED' | 'NOT_A_DISTRIBUTOR' | 'ZERO_COMMISSION';
  levels: { level: CommissionLevel; distributorId: string; amount: number }[];
  at: Date;
}

/**
 * One order's commission at one level as a ledger (accountId `orderId:level`): booking, settling
 * and every reversal are decided against its head, so a refund racing the settlement splits
 * exactly. Each entry carries its `referral.commission.*` event (outbox).
 */
export interface OrderCommissionEntryDoc extends OpLedgerEntry {
  kind: 'BOOK' | 'SETTLE' | 'REVERSE';
  orderId: string;
  level: CommissionLevel;
  distributorId: string;
  buyerId: string;
  orderTotal: number;
  /** This entry's fen: booked, settled or reversed now. */
  amount: number;
  /** Of a reversal: the refund it answers, its fen, and how much came out of the settled balance. */
  refundId?: string;
  refund?: number;
  fromSettled?: number;
  /** Running: booked, reversed, refunded (of the order), and whether it has settled. */
  booked: number;
  reversed: number;
  refunded: number;
  settled: boolean;
  at: Date;
  outbox?: OutboxRecord;
}

/**
 * A distributor's commission ledger (accountId = distributorId): every entry carries the running
 * pending / settled / withdrawn balances. `settled` may go negative (a clawback after a payout):
 * the entry then records the `shortfall` it caused, never silently.
 */
export interface CommissionEntryDoc extends OpLedgerEntry {
  kind: 'BOOK' | 'SETTLE' | 'REVERSE' | 'HOLD' | 'RELEASE';
  amount: number;
  orderId?: string;
  level?: CommissionLevel;
  withdrawalId?: string;
  pending: number;
  settled: number;
  withdrawn: number;
  /** Fen of this entry that the settled balance could not cover. */
  shortfall: number;
  at: Date;
}

/** A withdrawal request (`_id` derived from the member and their idempotency key); its hold is the ledger entry `hold:<id>`. */
export interface WithdrawalDoc {
  _id: string;
  memberId: string;
  amount: number;
  requestedAt: Date;
  /** The last payout failure (a projection for staff; the sweep retries). */
  lastError?: string;
}

/** The steps of a withdrawal as claims: `<id>:decision` (approve or reject, once), `<id>:paid` (the payout, once). */
export interface WithdrawalStepDoc {
  _id: string;
  withdrawalId: string;
  step: 'DECISION' | 'PAID';
  decision?: 'APPROVED' | 'REJECTED';
  reason?: string;
  by?: string;
  providerPayoutId?: string;
  at: Date;
}

export function createDistributionModels(db: Connection) {
  const settings = new Schema<SettingsEntryDoc>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      mode: String,
      attribution: String,
      bindingDays: Number,
      level1Bps: Number,
      level2Bps: Number,
      productRates: [{ _id: false, productId: String, level1Bps: Number, level2Bps: Number }],
      minWithdrawal: Number,
      by: String,
      at: Date,
    },
    { versionKey: false },
  );
  const distributor = new Schema<DistributorEntryDoc>(
    { _id: String, accountId: String, seq: Number, status: String, by: String, reason: String, at: Date },
    { versionKey: false },
  );
  distributor.index(...ledgerIndexes);
  const binding = new Schema<BuyerBindingDoc>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      distributorId: String,
      code: String,
      via: String,
      boundAt: Date,
      expiresAt: Date,
    },
    { versionKey: false },
  );
  binding.index(...ledgerIndexes);
  binding.index({ distributorId: 1 });
  const decision = new Schema<OrderDecisionDoc>(
    {
      _id: String,
      buyerId: String,
      orderTotal: Number,
      refusal: String,
      levels: [{ _id: false, level: Number, distributorId: String, amount: Number }],
      at: Date,
    },
    { versionKey: false },
  );
  const orderEntry = new Schema<OrderCommissionEntryDoc>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      op: { type: String, required: true, unique: true },
      kind: String,
      orderId: String,
      level: Number,
      distributorId: String,
      buyerId: String,
      orderTotal: Number,
      amount: Number,
      refundId: String,
      refund: Number,
      fromSettled: Number,
      booked: Number,
      reversed: Number,
      refunded: Number,
      settled: Boolean,
      at: Date,
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  orderEntry.index(...ledgerIndexes);
  orderEntry.index({ distributorId: 1, at: 1 });
  orderEntry.index({ orderId: 1 });
  const entry = new Schema<CommissionEntryDoc>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      op: { type: String, required: true, unique: true },
      kind: String,
      amount: Number,
      orderId: String,
      level: Number,
      withdrawalId: String,
      pending: Number,
      settled: Number,
      withdrawn: Number,
      shortfall: Number,
      at: Date,
    },
    { versionKey: false },
  );
  entry.index(...ledgerIndexes);
  const withdrawal = new Schema<WithdrawalDoc>(
    { _id: String, memberId: String, amount: Number, requestedAt: Date, lastError: String },
    { versionKey: false },
  );
  withdrawal.index({ memberId: 1 });
  const step = new Schema<WithdrawalStepDoc>(
    {
      _id: String,
      withdrawalId: String,
      step: String,
      decision: String,
      reason: String,
      by: String,
      providerPayoutId: String,
      at: Date,
    },
    { versionKey: false },
  );
  step.index({ step: 1, decision: 1, at: 1 });

  return {
    Settings: db.model<SettingsEntryDoc>('DistributionSettings', settings, 'distribution_settings'),
    Distributor: db.model<DistributorEntryDoc>('Distributor', distributor, 'distributors'),
    BuyerBinding: db.model<BuyerBindingDoc>('BuyerBinding', binding, 'distribution_bindings'),
    OrderDecision: db.model<OrderDecisionDoc>('OrderDecision', decision, 'distribution_orders'),
    OrderCommission: db.model<OrderCommissionEntryDoc>('OrderCommission', orderEntry, 'order_commissions'),
    CommissionEntry: db.model<CommissionEntryDoc>('CommissionEntry', entry, 'commission_entries'),
    Withdrawal: db.model<WithdrawalDoc>('Withdrawal', withdrawal, 'withdrawals'),
    WithdrawalStep: db.model<WithdrawalStepDoc>('WithdrawalStep', step, 'withdrawal_steps'),
  };
}
export type DistributionModels = ReturnType<typeof createDistributionModels>;
