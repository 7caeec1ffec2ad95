import { Schema, type Connection } from 'mongoose';
import { modelOn, outboxPath, type OutboxRecord } from '@flywheel/service-kit';
import type { TaskName, TierName } from '../program';
import type { Lot } from './lots';

export type LotKind = 'EARN' | 'GRANT' | 'SPEND' | 'RETURN' | 'CLAWBACK' | 'EXPIRE';

/**
 * One entry of a lot ledger (docs/concurrency.md, "Ledgers"): `p:<memberId>` holds points, `g:<memberId>` growth
 * value. Append-only, `_id = accountId:seq`; `op` is unique, so an operation (an order's earn, a
 * checkout's spend, a refund's claw-back, a task claim) lands at most once whoever retries it.
 */
export interface LotEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  op: string;
  kind: LotKind;
  /** Signed change of the account's total. */
  delta: number;
  /** Sum of `lots` after this entry (expired lots included until their EXPIRE entry). */
  balance: number;
  lots: Lot[];
  at: Date;
  reason: string;
  orderId?: string;
  refundId?: string;
  /** For a SPEND: the lots it took, so a return restores the same expiries. */
  taken?: Lot[];
  /** For a CLAWBACK: what could not be taken back because it was already spent. */
  shortfall?: number;
}

/** A member's tier over time; the head is the current tier. Changes carry `membership.tier.changed`. */
export interface TierEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  tier: TierName;
  /** Since when growth has been below this tier's threshold (the retention clock), else null. */
  belowSince: Date | null;
  growth: number;
  at: Date;
  /** When the member entered this tier (carried forward by entries that do not move it). */
  tierSince?: Date;
  direction?: 'UP' | 'DOWN';
  outbox?: OutboxRecord;
}

/** What a paid order earned, keyed by order id: refunds claw back their share of it. */
export interface LoyaltyOrderDoc {
  _id: string;
  memberId: string;
  total: number;
  points: number;
  growth: number;
  paidAt: Date;
}

/** The refunds of one order as a ledger (`accountId = orderId`, unique `op = refundId`): the running total orders them. */
export interface RefundEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  op: string;
  amount: number;
  cumulative: number;
  at: Date;
}

/** At-most-once facts: task rewards per period, sign-in days, birthday gifts per year. */
export interface LoyaltyClaimDoc {
  _id: string;
  memberId: string;
  at: Date;
  /** For a sign-in: the streak it makes. */
  streak?: number;
  points?: number;
  growth?: number;
  /** For a task that needs evidence (REVIEW): the piece of evidence this period's claim uses. */
  evidenceId?: string;
  /** For an evidence use (`_id = use:<evidenceId>`): the task claim it was used by. */
  claimId?: string;
}

/**
 * Evidence that a member did a task, from another service's event (REVIEW: a published showcase,
 * `community.post.published` with kind SHOWCASE; SHARE: a share, `referral.share.created`).
 * `_id = <task>:<postId or shareId>`, so a redelivered or republished event records nothing new.
 * Its use by a reward is a separate claim (`use:<_id>` in loyalty_claims): one reward per piece of
 * evidence.
 */
export interface TaskEvidenceDoc {
  _id: string;
  memberId: string;
  task: TaskName;
  /** REVIEW: the showcase. */
  postId?: string;
  /** SHARE: the share (referral). */
  shareId?: string;
  eventId: string;
  at: Date;
}

/** Read model for the sweeper: members holding lots and their earliest expiry. */
export interface LoyaltyAccountDoc {
  _id: string;
  nextExpiry: Date | null;
  updatedAt: Date;
}

const lotSchema = new Schema<Lot>({ expiresAt: Date, n: Number }, { _id: false });

export function createLoyaltyModels(db: Connection) {
  const entry = new Schema<LotEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      kind: { type: String, required: true },
      delta: Number,
      balance: Number,
      lots: [lotSchema],
      at: Date,
      reason: String,
      orderId: String,
      refundId: String,
      taken: { type: [lotSchema], default: undefined },
      shortfall: Number,
    },
    { versionKey: false },
  );
  entry.index({ op: 1 }, { unique: true });
  entry.index({ accountId: 1, seq: -1 });

  const tier = new Schema<TierEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      tier: String,
      belowSince: Date,
      growth: Number,
      at: Date,
      tierSince: Date,
      direction: String,
      outbox: outboxPath,
    },
    { versionKey: false },
  );

  const refund = new Schema<RefundEntryDoc>(
    { _id: String, accountId: String, seq: Number, op: String, amount: Number, cumulative: Number, at: Date },
    { versionKey: false },
  );
  refund.index({ op: 1 }, { unique: true });

  const evidence = new Schema<TaskEvidenceDoc>(
    { _id: String, memberId: String, task: String, postId: String, shareId: String, eventId: String, at: Date },
    { versionKey: false },
  );
  evidence.index({ memberId: 1, task: 1, at: 1 });

  return {
    LotEntry: modelOn(db, 'LotEntry', entry, 'loyalty_entries'),
    TierEntry: modelOn(db, 'TierEntry', tier, 'tier_changes'),
    LoyaltyOrder: modelOn(
      db,
      'LoyaltyOrder',
      new Schema<LoyaltyOrderDoc>(
        { _id: String, memberId: String, total: Number, points: Number, growth: Number, paidAt: Date },
        { versionKey: false },
      ),
      'loyalty_orders',
    ),
    RefundEntry: modelOn(db, 'RefundEntry', refund, 'loyalty_refunds'),
    LoyaltyClaim: modelOn(
      db,
      'LoyaltyClaim',
      new Schema<LoyaltyClaimDoc>(
        { _id: String, memberId: String, at: Date, streak: Number, points: Number, growth: Number, evidenceId: String, claimId: String },
        { versionKey: false },
      ),
      'loyalty_claims',
    ),
    TaskEvidence: modelOn(db, 'TaskEvidence', evidence, 'loyalty_task_evidence'),
    LoyaltyAccount: modelOn(
      db,
      'LoyaltyAccount',
      new Schema<LoyaltyAccountDoc>({ _id: String, nextExpiry: Date, updatedAt: Date }, { versionKey: false }),
      'loyalty_accounts',
    ),
  };
}
export type LoyaltyModels = ReturnType<typeof createLoyaltyModels>;
