import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type OutboxRecord } from '@flywheel/service-kit';

/** What one side of an invite gets: a coupon of a template, or points. */
export interface RewardSpec {
  kind: 'COUPON' | 'POINTS';
  couponTemplateId?: string;
  points?: number;
}

/** A fraud rule as staff set it: on or off, and its threshold where it has one. */
export interface FraudRuleSettings {
  cycle: { enabled: boolean };
  velocity: { enabled: boolean; maxPerHour: number };
  samePhone: { enabled: boolean };
}

/**
 * The invite campaign (邀请有礼) as a versioned ledger (`accountId = 'invite'`, `seq` = version):
 * staff append with the version they read, so two editors cannot silently overwrite each other.
 */
export interface CampaignEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  active: boolean;
  inviterReward: RewardSpec;
  inviteeReward: RewardSpec;
  capPerInviterPerDay: number;
  capPerInviterPerMonth: number;
  afterSalesWindowDays: number;
  fraud: FraudRuleSettings;
  at: Date;
  by: string;
}

/**
 * A member's first paid order as referral saw it: `_id = memberId` is the claim, so a second
 * order (or a replayed event of another order) never counts as the first. `inviterId` when the
 * member was bound, for the sharer's funnel.
 */
export interface FirstOrderDoc {
  _id: string;
  orderId: string;
  total: number;
  paidAt: Date;
  inviterId?: string;
  eventId: string;
}

export type RewardDecision = 'GRANTED' | 'HELD' | 'REFUSED';

/**
 * The invite reward pair of one invitee, decided once: `_id = inviteeId` is the claim. The campaign
 * it was decided under is copied in, so a later edit changes nothing already decided. A review or
 * reversal is a step of its own (`RewardStepDoc`), never an update of this row.
 */
export interface InviteRewardDoc {
  _id: string;
  inviterId: string;
  orderId: string;
  orderTotal: number;
  paidAt: Date;
  campaignVersion: number;
  inviterReward: RewardSpec;
  inviteeReward: RewardSpec;
  afterSalesWindowDays: number;
  decision: RewardDecision;
  /** Why it was held or refused: the rule's reason code (SAME_PHONE, VELOCITY, CYCLE, DAILY_CAP, MONTHLY_CAP). */
  rule?: string;
  reason?: string;
  at: Date;
}

/**
 * A cap slot: `_id = inviterId:period:n` (period a local day `2026-12-03` or month `2026-12`), n in
 * 1..cap. The unique insert is the cap: concurrent first orders can never exceed it.
 */
export interface CapSlotDoc {
  _id: string;
  inviterId: string;
  period: string;
  inviteeId: string;
  at: Date;
}

/** `<inviteeId>:review` (staff APPROVED or REJECTED a HELD pair) and `<inviteeId>:reversal`: once each. */
export interface RewardStepDoc {
  _id: string;
  inviteeId: string;
  step: 'APPROVED' | 'REJECTED' | 'REVERSED';
  by?: string;
  note?: string;
  at: Date;
}

/**
 * One side's grant or its reversal, each once: `_id = <inviteeId>:<side>:GRANTED|REVERSED`, the
 * event (`referral.reward.granted|reversed`, rewardId `invite:<inviteeId>:<side>`) in `outbox`.
 */
export interface RewardGrantDoc {
  _id: string;
  inviteeId: string;
  memberId: string;
  side: 'INVITER' | 'INVITEE';
  op: 'GRANTED' | 'REVERSED';
  reward: RewardSpec;
  at: Date;
  outbox?: OutboxRecord;
}

/** A refund of an invitee's first order, once per refund: their sum decides "fully refunded". */
export interface FirstOrderRefundDoc {
  _id: string;
  orderId: string;
  memberId: string;
  amount: number;
  refundedAt: Date;
}

/** A member's keyed phone hash from registration (SAME_PHONE): `_id = memberId`. */
export interface PhoneDoc {
  _id: string;
  phoneHash: string;
  at: Date;
}

const reward = { kind: String, couponTemplateId: String, points: Number };

export function createCampaignModels(db: Connection) {
  const campaign = new Schema<CampaignEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      active: Boolean,
      inviterReward: reward,
      inviteeReward: reward,
      capPerInviterPerDay: Number,
      capPerInviterPerMonth: Number,
      afterSalesWindowDays: Number,
      fraud: {
        cycle: { enabled: Boolean },
        velocity: { enabled: Boolean, maxPerHour: Number },
        samePhone: { enabled: Boolean },
      },
      at: Date,
      by: String,
    },
    { versionKey: false },
  );
  for (const i of ledgerIndexes) campaign.index(i);

  const firstOrder = new Schema<FirstOrderDoc>(
    { _id: String, orderId: String, total: Number, paidAt: Date, inviterId: String, eventId: String },
    { versionKey: false },
  );
  firstOrder.index({ inviterId: 1 });

  const pair = new Schema<InviteRewardDoc>(
    {
      _id: String,
      inviterId: String,
      orderId: String,
      orderTotal: Number,
      paidAt: Date,
      campaignVersion: Number,
      inviterReward: reward,
      inviteeReward: reward,
      afterSalesWindowDays: Number,
      decision: String,
      rule: String,
      reason: String,
      at: Date,
    },
    { versionKey: false },
  );
  pair.index({ decision: 1 });

  const slot = new Schema<CapSlotDoc>(
    { _id: String, inviterId: String, period: String, inviteeId: String, at: Date },
    { versionKey: false },
  );
  slot.index({ inviterId: 1, period: 1 });
  slot.index({ inviteeId: 1 });

  const step = new Schema<RewardStepDoc>(
    { _id: String, inviteeId: String, step: String, by: String, note: String, at: Date },
    { versionKey: false },
  );
  step.index({ inviteeId: 1 });

  const grant = new Schema<RewardGrantDoc>(
    { _id: String, inviteeId: String, memberId: String, side: String, op: String, reward, at: Date, outbox: outboxPath },
    { versionKey: false },
  );
  grant.index({ inviteeId: 1 });

  const refund = new Schema<FirstOrderRefundDoc>(
    { _id: String, orderId: String, memberId: String, amount: Number, refundedAt: Date },
    { versionKey: false },
  );
  refund.index({ orderId: 1 });

  const phone = new Schema<PhoneDoc>({ _id: String, phoneHash: String, at: Date }, { versionKey: false });
  phone.index({ phoneHash: 1 });

  return {
    Campaign: db.model<CampaignEntryDoc>('InviteCampaign', campaign, 'invite_campaign'),
    FirstOrder: db.model<FirstOrderDoc>('InviteFirstOrder', firstOrder, 'invite_first_orders'),
    Reward: db.model<InviteRewardDoc>('InviteReward', pair, 'invite_rewards'),
    CapSlot: db.model<CapSlotDoc>('InviteCapSlot', slot, 'invite_cap_slots'),
    Step: db.model<RewardStepDoc>('InviteRewardStep', step, 'invite_reward_steps'),
    Grant: db.model<RewardGrantDoc>('InviteRewardGrant', grant, 'invite_reward_grants'),
    Refund: db.model<FirstOrderRefundDoc>('InviteFirstOrderRefund', refund, 'invite_first_order_refunds'),
    Phone: db.model<PhoneDoc>('InvitePhone', phone, 'invite_phones'),
  };
}
export type CampaignModels = ReturnType<typeof createCampaignModels>;
