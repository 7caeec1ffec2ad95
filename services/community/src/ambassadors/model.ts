import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

export type AmbassadorStatus = 'APPLIED' | 'APPROVED' | 'REVOKED';

/**
 * One member's ambassador (体验官) history (account = member id): APPLIED → APPROVED → REVOKED, and
 * APPLIED again after a revoke. Each entry carries the state it leaves, so the head is the status;
 * deciding a move is appending the next entry, so two racing moves land one.
 */
export interface AmbassadorEntry extends LedgerEntry {
  status: AmbassadorStatus;
  /** The application's note (of the current round). */
  note: string;
  appliedAt: Date;
  approvedAt: Date | null;
  /** approvedAt + the showcase days staff gave. */
  showcaseDueAt: Date | null;
  revokedAt: Date | null;
  reason: string | null;
  /** Who made this move. */
  by: string;
  at: Date;
}

export type TrialStatus = 'ISSUED' | 'ORDERED' | 'SHOWCASED';

/**
 * A trial (试用) staff sent an ambassador: a coupon of a template, granted through membership under
 * `community:trial:<id>`. `_id` = hash(member, idempotency key): the claim that makes a replay the
 * same trial. Written once, never updated: its progress is in its steps.
 */
export interface TrialDoc {
  _id: string;
  memberId: string;
  templateId: string;
  couponId: string;
  /** The staff member who sent it. */
  by: string;
  issuedAt: Date;
}

/**
 * A step of a trial (`_id = <trialId>:<step>`, so each happens once): ORDERED when the member's
 * order that used the coupon was paid, SHOWCASED when they published a showcase of that order.
 * The trial's status is its latest step (ISSUED without any).
 */
export interface TrialStepDoc {
  _id: string;
  trialId: string;
  step: Exclude<TrialStatus, 'ISSUED'>;
  orderId: string;
  postId: string | null;
  at: Date;
}

/** The first showcase seen of an order (`_id` = order id), kept so a trial ordered later still finds it. */
export interface OrderShowcaseDoc {
  _id: string;
  postId: string;
  memberId: string;
  at: Date;
}

export function createAmbassadorModels(db: Connection) {
  const schema = new Schema<AmbassadorEntry>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      status: String,
      note: String,
      appliedAt: Date,
      approvedAt: Date,
      showcaseDueAt: Date,
      revokedAt: Date,
      reason: String,
      by: String,
      at: Date,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) schema.index(idx);
  schema.index({ status: 1 });
  const trial = new Schema<TrialDoc>(
    { _id: String, memberId: String, templateId: String, couponId: String, by: String, issuedAt: Date },
    { versionKey: false },
  );
  trial.index({ memberId: 1, issuedAt: -1 });
  trial.index({ couponId: 1 });
  const step = new Schema<TrialStepDoc>(
    { _id: String, trialId: String, step: String, orderId: String, postId: String, at: Date },
    { versionKey: false },
  );
  step.index({ trialId: 1 });
  step.index({ orderId: 1 });
  const seen = new Schema<OrderShowcaseDoc>({ _id: String, postId: String, memberId: String, at: Date }, { versionKey: false });
  return {
    Entry: db.model<AmbassadorEntry>('AmbassadorEntry', schema, 'ambassador_entries'),
    Trial: db.model<TrialDoc>('AmbassadorTrial', trial, 'ambassador_trials'),
    TrialStep: db.model<TrialStepDoc>('AmbassadorTrialStep', step, 'ambassador_trial_steps'),
    OrderShowcase: db.model<OrderShowcaseDoc>('AmbassadorOrderShowcase', seen, 'ambassador_order_showcases'),
  };
}
export type AmbassadorModels = ReturnType<typeof createAmbassadorModels>;
