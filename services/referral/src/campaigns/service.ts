import { randomUUID } from 'node:crypto';
import type { Model } from 'mongoose';
import type { EventData } from '@flywheel/events';
import {
  AppError,
  appendToLedger,
  badInput,
  claimOnce,
  fromBusError,
  isObjectId,
  ledgerHead,
  localDate,
  notFound,
  optionalText,
  outboxRecord,
  requireObjectId,
  requireRole,
  requireViewer,
  isStaff,
  wholeNumber,
  type Bus,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { InviteBindingDoc } from '../model';
import { countInWindow, inviteCycle, samePhone, takeSlot, velocity, type FraudVerdict } from './fraud';
import type {
  CampaignEntryDoc,
  CampaignModels,
  FraudRuleSettings,
  InviteRewardDoc,
  RewardGrantDoc,
  RewardSpec,
  RewardStepDoc,
} from './model';

const CAMPAIGN = 'invite';
const MAX_POINTS = 100_000;

/** The campaign as staff read it: version 0 before anyone set it (inactive, nothing granted). */
export interface CampaignShape {
  version: number;
  active: boolean;
  inviterReward: RewardSpec | null;
  inviteeReward: RewardSpec | null;
  capPerInviterPerDay: number;
  capPerInviterPerMonth: number;
  afterSalesWindowDays: number;
  fraud: FraudRuleSettings;
}

export const DEFAULT_FRAUD: FraudRuleSettings = {
  cycle: { enabled: true },
  velocity: { enabled: true, maxPerHour: 10 },
  samePhone: { enabled: true },
};

export interface SetInviteCampaignInput {
  active: boolean;
  inviterReward: { couponTemplateId?: string | null; points?: number | null };
  inviteeReward: { couponTemplateId?: string | null; points?: number | null };
  capPerInviterPerDay: number;
  capPerInviterPerMonth: number;
  afterSalesWindowDays: number;
  fraud?: {
    cycle?: { enabled: boolean } | null;
    velocity?: { enabled: boolean; maxPerHour: number } | null;
    samePhone?: { enabled: boolean } | null;
  } | null;
}

export type RewardStatus = 'GRANTED' | 'HELD' | 'REFUSED' | 'REJECTED' | 'REVERSED';

/** What `InviteReward` resolves from: the decided pair and its steps. */
export interface RewardView {
  pair: InviteRewardDoc;
  status: RewardStatus;
  review: RewardStepDoc | null;
  reversal: RewardStepDoc | null;
}

/** What `InviteRewardConnection` resolves from. */
export interface RewardPage {
  nodes: RewardView[];
  hasNextPage: boolean;
}

export interface CampaignDeps {
  models: CampaignModels;
  bindings: Model<InviteBindingDoc>;
  bus: Bus;
  kick: () => void;
  now: () => Date;
  logger: Logger;
  /** The zone of the per-day and per-month caps. */
  timeZone: string;
}

const SIDES = ['INVITER', 'INVITEE'] as const;
const rewardId = (inviteeId: string, side: (typeof SIDES)[number]) => `invite:${inviteeId}:${side}`;

function shapeOf(head: CampaignEntryDoc | null): CampaignShape {
  return {
    version: head?.seq ?? 0,
    active: head?.active ?? false,
    inviterReward: head?.inviterReward ?? null,
    inviteeReward: head?.inviteeReward ?? null,
    capPerInviterPerDay: head?.capPerInviterPerDay ?? 0,
    capPerInviterPerMonth: head?.capPerInviterPerMonth ?? 0,
    afterSalesWindowDays: head?.afterSalesWindowDays ?? 0,
    fraud: head?.fraud ?? DEFAULT_FRAUD,
  };
}

function viewOf(pair: InviteRewardDoc, steps: RewardStepDoc[]): RewardView {
  const review = steps.find((s) => s._id === `${pair._id}:review`) ?? null;
  const reversal = steps.find((s) => s._id === `${pair._id}:reversal`) ?? null;
  const decided: RewardStatus = review ? (review.step === 'APPROVED' ? 'GRANTED' : 'REJECTED') : pair.decision;
  const status = reversal && decided === 'GRANTED' ? 'REVERSED' : decided;
  return { pair, status, review, reversal };
}

export function createCampaignService(deps: CampaignDeps) {
  const { models, bindings, bus, kick, now, logger } = deps;

  async function campaign(): Promise<CampaignShape> {
    return shapeOf(await ledgerHead(models.Campaign, CAMPAIGN));
  }

  async function rewardSpec(raw: SetInviteCampaignInput['inviterReward'], field: string): Promise<RewardSpec> {
    const templateId = optionalText(raw?.couponTemplateId, `${field}.couponTemplateId`, 64);
    const points = raw?.points ?? 0;
    if (!!templateId === points > 0) throw badInput(`${field}: a coupon template or points, exactly one`, field);
    if (!templateId) return { kind: 'POINTS', points: wholeNumber(points, `${field}.points`, 1, MAX_POINTS) };
    if (!isObjectId(templateId)) throw notFound('Coupon template');
    const t = await bus.request('membership.coupon.template', { templateId }).catch(fromBusError);
    if (!t.active) throw badInput(`${field}: the coupon template is not active`, `${field}.couponTemplateId`);
    return { kind: 'COUPON', couponTemplateId: templateId };
  }

  async function steps(inviteeIds: string[]): Promise<RewardStepDoc[]> {
    return models.Step.find({ inviteeId: { $in: inviteeIds } }).lean<RewardStepDoc[]>();
  }

  async function view(inviteeId: string): Promise<RewardView | null> {
    const pair = await models.Reward.findById(inviteeId).lean<InviteRewardDoc>();
    return pair ? viewOf(pair, await steps([inviteeId])) : null;
  }

  /** Each side's `referral.reward.granted`, once (`<invitee>:<side>:GRANTED`); then any reversal already decided. */
  async function writeGrants(pair: InviteRewardDoc): Promise<void> {
    const at = now();
    for (const side of SIDES) {
      const memberId = side === 'INVITER' ? pair.inviterId : pair._id;
      const reward = side === 'INVITER' ? pair.inviterReward : pair.inviteeReward;
      const data = {
        rewardId: rewardId(pair._id, side),
        memberId,
        kind: reward.kind,
        ...(reward.couponTemplateId ? { couponTemplateId: reward.couponTemplateId } : {}),
        ...(reward.points ? { points: reward.points } : {}),
        reason: side === 'INVITER' ? 'Invite reward: your invitee paid their first order' : 'Welcome reward: your first order',
      };
      const doc: RewardGrantDoc = {
        _id: `${pair._id}:${side}:GRANTED`,
        inviteeId: pair._id,
        memberId,
        side,
        op: 'GRANTED',
        reward,
        at,
        outbox: outboxRecord('referral.reward.granted', data, randomUUID(), at),
      };
      if (await claimOnce(models.Grant, doc as never)) kick();
    }
    // A reversal that raced this grant (staff approving as the refund came in) must still take it back.
    if (await models.Step.exists({ _id: `${pair._id}:reversal` })) await writeReversals(pair._id);
  }

  /** Each granted side's `referral.reward.reversed`, once (`<invitee>:<side>:REVERSED`). */
  async function writeReversals(inviteeId: string): Promise<number> {
    const granted = await models.Grant.find({ inviteeId, op: 'GRANTED' }).lean<RewardGrantDoc[]>();
    const at = now();
    let n = 0;
    for (const g of granted) {
      const data = {
        rewardId: rewardId(inviteeId, g.side),
        memberId: g.memberId,
        kind: g.reward.kind,
        ...(g.reward.couponTemplateId ? { couponTemplateId: g.reward.couponTemplateId } : {}),
        ...(g.reward.points ? { points: g.reward.points } : {}),
        reason: 'Invite reward reversed: the first order was refunded',
      };
      const doc = {
        ...g,
        _id: `${inviteeId}:${g.side}:REVERSED`,
        op: 'REVERSED',
        at,
        outbox: outboxRecord('referral.reward.reversed', data, randomUUID(), at),
      };
      if (await claimOnce(models.Grant, doc as never)) n++;
    }
    if (n) kick();
    return n;
  }

  /** The invitee's cap slots (a day's and a month's), reusing what an interrupted delivery took; null naming the cap that is full. */
  async function takeCapSlots(
    inviterId: string,
    inviteeId: string,
    paidAt: Date,
    c: CampaignShape,
  ): Promise<FraudVerdict | { rule: string; reason: string } | null> {
    const day = localDate(paidAt, deps.timeZone);
    const periods = [
      { period: day.slice(0, 7), cap: c.capPerInviterPerMonth, rule: 'MONTHLY_CAP', unit: 'a month' },
      { period: day, cap: c.capPerInviterPerDay, rule: 'DAILY_CAP', unit: 'a day' },
    ];
    const mine = await models.CapSlot.find({ inviteeId }).lean();
    const taken: string[] = [];
    for (const p of periods) {
      if (mine.some((s) => s.period === p.period)) continue;
      const body = { inviterId, period: p.period, inviteeId, at: now() };
      const slot = await takeSlot(models.CapSlot, `${inviterId}:${p.period}`, p.cap, body, { inviterId, period: p.period });
      if (!slot) {
        // Give back what this attempt took: a refused reward holds no place under the other cap.
        if (taken.length) await models.CapSlot.deleteMany({ _id: { $in: taken }, inviteeId });
        return { rule: p.rule, reason: `The inviter reached the cap of ${p.cap} invite rewards ${p.unit}` };
      }
      taken.push(slot);
    }
    return null;
  }

  async function fraudVerdict(inviteeId: string, binding: InviteBindingDoc, rules: FraudRuleSettings): Promise<FraudVerdict | null> {
    if (rules.cycle.enabled) {
      const inviterOf = async (id: string) => (await bindings.findById(id, { inviterId: 1 }).lean())?.inviterId ?? null;
      const v = await inviteCycle(inviteeId, binding.inviterId, inviterOf);
      if (v) return v;
    }
    if (rules.velocity.enabled) {
      const n = await countInWindow(bindings, { inviterId: binding.inviterId }, 'boundAt', new Date(binding.boundAt));
      const v = velocity(n, rules.velocity.maxPerHour);
      if (v) return v;
    }
    if (rules.samePhone.enabled) {
      const mine = await models.Phone.findById(inviteeId).lean();
      if (mine) {
        const others = await models.Phone.countDocuments({ phoneHash: mine.phoneHash, _id: { $ne: inviteeId } });
        const v = samePhone(others);
        if (v) return v;
      }
    }
    return null;
  }

  async function setCampaign(viewer: Viewer | null, input: SetInviteCampaignInput, expectedVersion: number): Promise<CampaignShape> {
    const staff = requireRole(viewer, 'STAFF');
    const expected = wholeNumber(expectedVersion, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER);
    const day = wholeNumber(input.capPerInviterPerDay, 'capPerInviterPerDay', 1, 10_000);
    const month = wholeNumber(input.capPerInviterPerMonth, 'capPerInviterPerMonth', 1, 100_000);
    const windowDays = wholeNumber(input.afterSalesWindowDays, 'afterSalesWindowDays', 0, 365);
    const f = input.fraud ?? {};
    const fraud: FraudRuleSettings = {
      cycle: { enabled: f.cycle?.enabled ?? DEFAULT_FRAUD.cycle.enabled },
      velocity: {
        enabled: f.velocity?.enabled ?? DEFAULT_FRAUD.velocity.enabled,
        maxPerHour: wholeNumber(f.velocity?.maxPerHour ?? DEFAULT_FRAUD.velocity.maxPerHour, 'fraud.velocity.maxPerHour', 1, 10_000),
      },
      samePhone: { enabled: f.samePhone?.enabled ?? DEFAULT_FRAUD.samePhone.enabled },
    };
    const inviterReward = await rewardSpec(input.inviterReward, 'inviterReward');
    const inviteeReward = await rewardSpec(input.inviteeReward, 'inviteeReward');
    let stale = false;
    const entry = await appendToLedger(models.Campaign, CAMPAIGN, (head) => {
      stale = (head?.seq ?? 0) !== expected;
      if (stale) return null;
      return {
        active: input.active,
        inviterReward,
        inviteeReward,
        capPerInviterPerDay: day,
        capPerInviterPerMonth: month,
        afterSalesWindowDays: windowDays,
        fraud,
        at: now(),
        by: staff.id,
      };
    });
    if (!entry || stale) {
      throw new AppError('CONFLICT', 'The invite campaign changed since you read it; reload and save again', { reason: 'STALE_VERSION' });
    }
    return shapeOf(entry);
  }

  return {
    campaign,
    setCampaign,

    /** Staff only. */
    async campaignFor(viewer: Viewer | null): Promise<CampaignShape> {
      requireRole(viewer, 'STAFF');
      return campaign();
    },
    view,

    /** Registration: the member's keyed phone hash, once, for SAME_PHONE. */
    async memberRegistered(data: EventData<'membership.member.registered'>): Promise<void> {
      if (!data.phoneHash) return;
      await claimOnce(models.Phone, { _id: data.memberId, phoneHash: data.phoneHash, at: new Date(data.registeredAt) });
    },

    /**
     * A paid order: only the buyer's first (a claim per member) can reward an invite, and only once
     * (a claim per invitee); a replay of the same order finishes what an interrupted delivery left.
     */
    async orderPaid(eventId: string, data: EventData<'orders.order.paid'>): Promise<RewardView | null> {
      const { memberId: inviteeId, orderId } = data;
      const binding = await bindings.findById(inviteeId).lean<InviteBindingDoc>();
      const paidAt = new Date(data.paidAt);
      const first = { _id: inviteeId, orderId, total: data.total, paidAt, eventId, ...(binding ? { inviterId: binding.inviterId } : {}) };
      if (!(await claimOnce(models.FirstOrder, first))) {
        const winner = await models.FirstOrder.findById(inviteeId).lean();
        if (winner?.orderId !== orderId) return null; // not the first paid order
      }
      if (!binding) return null;
      const decided = await models.Reward.findById(inviteeId).lean<InviteRewardDoc>();
      if (decided) {
        if (decided.decision === 'GRANTED') await writeGrants(decided);
        return view(inviteeId);
      }
      const c = await campaign();
      if (!c.active || !c.inviterReward || !c.inviteeReward) return null;
      const refusal = await takeCapSlots(binding.inviterId, inviteeId, paidAt, c);
      const held = refusal ? null : await fraudVerdict(inviteeId, binding, c.fraud);
      const pair: InviteRewardDoc = {
        _id: inviteeId,
        inviterId: binding.inviterId,
        orderId,
        orderTotal: data.total,
        paidAt,
        campaignVersion: c.version,
        inviterReward: c.inviterReward,
        inviteeReward: c.inviteeReward,
        afterSalesWindowDays: c.afterSalesWindowDays,
        decision: refusal ? 'REFUSED' : held ? 'HELD' : 'GRANTED',
        ...(refusal ?? held ?? {}),
        at: now(),
      };
      const won = await claimOnce(models.Reward, pair as never);
      const winner = won ? pair : (await models.Reward.findById(inviteeId).lean<InviteRewardDoc>())!;
      if (winner.decision === 'GRANTED') await writeGrants(winner);
      if (winner.decision !== 'GRANTED')
        logger.info({ inviteeId, decision: winner.decision, rule: winner.rule }, 'invite reward not granted');
      return view(inviteeId);
    },

    /** A refund: the invitee's first order fully refunded within the window reverses both sides, once. */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<number> {
      const { memberId: inviteeId, orderId, refundId } = data;
      const first = await models.FirstOrder.findById(inviteeId).lean();
      if (first?.orderId !== orderId) return 0;
      const refundedAt = new Date(data.refundedAt);
      await claimOnce(models.Refund, { _id: refundId, orderId, memberId: inviteeId, amount: data.amount, refundedAt });
      const pair = await models.Reward.findById(inviteeId).lean<InviteRewardDoc>();
      if (!pair || pair.decision === 'REFUSED') return 0;
      const refunds = await models.Refund.find({ orderId }).lean();
      if (refunds.reduce((s, r) => s + r.amount, 0) < pair.orderTotal) return 0;
      if (refundedAt.getTime() - new Date(pair.paidAt).getTime() > pair.afterSalesWindowDays * 86_400_000) {
        logger.info({ inviteeId, orderId }, 'first order refunded after the after-sales window: invite reward kept');
        return 0;
      }
      await claimOnce(models.Step, { _id: `${inviteeId}:reversal`, inviteeId, step: 'REVERSED', at: now(), note: `refund ${refundId}` });
      return writeReversals(inviteeId);
    },

    /** Staff: HELD rewards nobody reviewed yet, oldest invitee id first, after the cursor. */
    async forReview(viewer: Viewer | null, first: number, after?: string | null): Promise<RewardPage> {
      requireRole(viewer, 'STAFF');
      const limit = wholeNumber(first, 'first', 1, 100);
      const out: RewardView[] = [];
      let cursor = after ?? null;
      for (;;) {
        const batch = await models.Reward.find({ decision: 'HELD', ...(cursor ? { _id: { $gt: cursor } } : {}) })
          .sort({ _id: 1 })
          .limit(limit + 1)
          .lean<InviteRewardDoc[]>();
        const all = await steps(batch.map((b) => b._id));
        for (const p of batch) {
          const v = viewOf(p, all);
          if (v.status === 'HELD' && !v.reversal) out.push(v);
          cursor = p._id;
          if (out.length > limit) break;
        }
        if (out.length > limit || batch.length <= limit) break;
      }
      return { nodes: out.slice(0, limit), hasNextPage: out.length > limit };
    },

    /** Staff decides a HELD reward once: APPROVED grants both sides, REJECTED grants nothing; the other answer is CONFLICT. */
    async review(
      viewer: Viewer | null,
      rawInviteeId: string,
      decision: 'APPROVED' | 'REJECTED',
      note?: string | null,
    ): Promise<RewardView> {
      const staff = requireRole(viewer, 'STAFF');
      const inviteeId = requireObjectId(rawInviteeId, 'inviteeId');
      const text = optionalText(note, 'note', 200);
      const current = await view(inviteeId);
      if (!current) throw notFound('Invite reward');
      if (current.pair.decision !== 'HELD') {
        throw new AppError('CONFLICT', `This reward was ${current.pair.decision.toLowerCase()}, not held for review`, {
          reason: 'NOT_HELD',
        });
      }
      if (current.reversal && !current.review) {
        throw new AppError('CONFLICT', 'The first order was refunded; nothing is left to grant', { reason: 'REVERSED' });
      }
      const step = { _id: `${inviteeId}:review`, inviteeId, step: decision, by: staff.id, at: now(), ...(text ? { note: text } : {}) };
      if (!(await claimOnce(models.Step, step))) {
        const first = await models.Step.findById(step._id).lean<RewardStepDoc>();
        if (first?.step !== decision) {
          throw new AppError('CONFLICT', `This reward was already ${first?.step.toLowerCase()}`, { reason: 'ALREADY_REVIEWED' });
        }
      }
      if (decision === 'APPROVED') await writeGrants(current.pair);
      return (await view(inviteeId))!;
    },

    /** Staff, the invitee or the inviter. */
    async rewardOf(viewer: Viewer | null, rawInviteeId: string): Promise<RewardView | null> {
      const v = requireViewer(viewer);
      const inviteeId = requireObjectId(rawInviteeId, 'inviteeId');
      const found = await view(inviteeId);
      if (!found) return null;
      if (!isStaff(v) && v.id !== inviteeId && v.id !== found.pair.inviterId) return null;
      return found;
    },

    /** The sharer's funnel past the click: members bound by their code, and those invitees' first paid orders. */
    async funnelOf(inviterId: string): Promise<{ registrations: number; firstPaidOrders: number }> {
      const [registrations, firstPaidOrders] = await Promise.all([
        bindings.countDocuments({ inviterId }),
        models.FirstOrder.countDocuments({ inviterId }),
      ]);
      return { registrations, firstPaidOrders };
    },
  };
}

export type CampaignService = ReturnType<typeof createCampaignService>;
