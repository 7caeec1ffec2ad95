import {
  AppError,
  BusRequestError,
  appendToLedger,
  claimOnce,
  isSelfOrStaff,
  ledgerHead,
  optionalText,
  requireRole,
  wholeNumber,
  type Bus,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { PostDoc, PostModels, ShowcaseRewardDoc, ShowcaseRewardReversalDoc } from './model';

/** Membership's refusals that are final for a grant key (the template stopped or ran out; the member's limit). */
const FINAL_REFUSALS = new Set(['BAD_USER_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'OUT_OF_STOCK']);
export const SHOWCASE_REWARD_RULE = 'showcase-reward';
const RETRY_BATCH = 50;
const MAX_POINTS = 10_000;

/** Why a showcase's reward is taken back. */
export type RewardTrigger = ShowcaseRewardReversalDoc['trigger'];

/** What `Post.reward` shows its author and staff. */
export interface PostRewardView {
  status: ShowcaseRewardDoc['status'] | ShowcaseRewardReversalDoc['status'];
  couponId: string | null;
  points: number;
  reversalTrigger: RewardTrigger | null;
  couponState: string | null;
  pointsTaken: number;
  pointsShortfall: number;
  at: Date;
}

/** A final refusal's code, or null when membership gave no answer (the sweep asks again). */
const finalRefusal = (err: unknown): string | null => (err instanceof BusRequestError && FINAL_REFUSALS.has(err.code) ? err.code : null);

/**
 * Showcase rewards (好评送积分/券): a verified showcase rated at least the rule's minimum earns the
 * rule's coupon and points, granted through `membership.coupon.grant` / `membership.points.grant`
 * keyed `community:showcase:<postId>`. The reward row (`_id` = postId) is the once-per-post claim;
 * a grant that got no answer stays PENDING and the sweep asks again under the same key, so a
 * member never gets two.
 *
 * Removed by moderation or its order fully refunded, the showcase's reward is taken back once:
 * the reversal row (`_id` = postId) is that claim, and `membership.coupon.revoke` /
 * `membership.points.revoke` under the same key do it; unanswered, it stays REVERSING and the
 * sweep asks again. A coupon LOCKED by an unpaid order is asked again too (it ends USED or comes
 * back AVAILABLE); USED or points spent are a REVERSAL_SHORTFALL. Restoring a hidden post does not
 * grant again: the reversal is final.
 */
export function createShowcaseRewards(deps: { models: PostModels; bus: Bus; logger: Logger; now: () => Date }) {
  const { models, bus, now } = deps;
  const keyOf = (postId: string) => `community:showcase:${postId}`;

  /** Asks membership for every part not answered yet; writes the whole answer. */
  async function grant(reward: ShowcaseRewardDoc): Promise<ShowcaseRewardDoc> {
    const next = { ...reward };
    let unanswered = false;
    const key = keyOf(reward._id);
    const reason = 'Showcase reward (晒单好评)';
    if (next.templateId && !next.couponId && !next.couponRefusal) {
      try {
        ({ couponId: next.couponId } = await bus.request('membership.coupon.grant', {
          key,
          memberId: reward.memberId,
          templateId: next.templateId,
          reason,
        }));
      } catch (err) {
        next.couponRefusal = finalRefusal(err);
        if (!next.couponRefusal) {
          unanswered = true;
          deps.logger.warn({ err, postId: reward._id }, 'showcase reward coupon grant failed; the sweep retries');
        }
      }
    }
    const points = next.points ?? 0;
    if (points > 0 && !next.pointsGranted && !next.pointsRefusal) {
      try {
        await bus.request('membership.points.grant', { key, memberId: reward.memberId, points, reason });
        next.pointsGranted = true;
      } catch (err) {
        next.pointsRefusal = finalRefusal(err);
        if (!next.pointsRefusal) {
          unanswered = true;
          deps.logger.warn({ err, postId: reward._id }, 'showcase reward points grant failed; the sweep retries');
        }
      }
    }
    next.status = unanswered ? 'PENDING' : next.couponId || next.pointsGranted ? 'GRANTED' : 'REFUSED';
    const { _id, ...fields } = next;
    await models.ShowcaseReward.updateOne({ _id }, { $set: fields });
    return next;
  }

  /** Takes back what the reward granted, the parts not answered yet; writes the whole answer. */
  async function settle(reversal: ShowcaseRewardReversalDoc): Promise<void> {
    let reward = await models.ShowcaseReward.findById(reversal._id).lean<ShowcaseRewardDoc>();
    if (!reward) return;
    // What was granted must be known before it is taken back: a PENDING grant is asked first
    // (under its key, so this never grants twice), and a grant landing after a revoke is impossible.
    if (reward.status === 'PENDING') reward = await grant(reward);
    if (reward.status === 'PENDING') return;
    const next = { ...reversal };
    let unanswered = false;
    const key = keyOf(reversal._id);
    const reason = reversal.trigger === 'HIDDEN' ? 'Showcase removed by moderation' : 'Showcase order refunded';
    if (reward.couponId && !next.couponState) {
      try {
        const res = await bus.request('membership.coupon.revoke', { key, reason });
        // LOCKED by an unpaid order: it ends USED (a shortfall) or AVAILABLE (revoked) — ask again later.
        if (res.state === 'LOCKED') unanswered = true;
        else next.couponState = res.state;
      } catch (err) {
        unanswered = true;
        deps.logger.warn({ err, postId: reversal._id }, 'showcase reward coupon revoke failed; the sweep retries');
      }
    }
    if (reward.pointsGranted && next.pointsTaken == null) {
      try {
        const res = await bus.request('membership.points.revoke', { key, reason });
        next.pointsTaken = res.taken;
        next.pointsShortfall = res.shortfall;
      } catch (err) {
        unanswered = true;
        deps.logger.warn({ err, postId: reversal._id }, 'showcase reward points revoke failed; the sweep retries');
      }
    }
    if (!unanswered) {
      const short = next.couponState === 'USED' || (next.pointsShortfall ?? 0) > 0;
      next.status = short ? 'REVERSAL_SHORTFALL' : 'REVERSED';
      next.settledAt = now();
    }
    const { _id, ...fields } = next;
    await models.ShowcaseRewardReversal.updateOne({ _id }, { $set: fields });
  }

  /** Claims the reversal of a post's reward (once, the first trigger names it) and settles it. */
  async function reverse(postId: string, trigger: RewardTrigger): Promise<void> {
    const reward = await models.ShowcaseReward.findById(postId, { memberId: 1 }).lean();
    if (!reward) return; // nothing was claimed: no reward to take back
    await claimOnce(models.ShowcaseRewardReversal, { _id: postId, memberId: reward.memberId, trigger, status: 'REVERSING', at: now() });
    const reversal = await models.ShowcaseRewardReversal.findById(postId).lean<ShowcaseRewardReversalDoc>();
    if (reversal?.status === 'REVERSING') await settle(reversal);
  }

  return {
    /** After a showcase is published: claims its reward if the rule gives one, and asks membership for it. */
    async showcasePublished(post: PostDoc): Promise<void> {
      const rule = await ledgerHead(models.ShowcaseRewardRule, SHOWCASE_REWARD_RULE);
      const points = rule?.points ?? 0;
      if (!rule || (!rule.templateId && points <= 0)) return;
      if (!post.showcase || !post.verified || post.showcase.rating < rule.minRating) return;
      const reward: ShowcaseRewardDoc = {
        _id: post._id,
        memberId: post.memberId,
        templateId: rule.templateId,
        points,
        status: 'PENDING',
        at: now(),
      };
      if (!(await claimOnce(models.ShowcaseReward, { ...reward }))) return;
      await grant(reward);
      // A removal that looked for the reward before it was claimed found none: the post's state,
      // read after the claim, catches it (the state is written before a removal looks).
      const current = await models.Post.findById(post._id, { hidden: 1, verified: 1 }).lean();
      if (current && (current.hidden || !current.verified)) await reverse(post._id, current.hidden ? 'HIDDEN' : 'REFUNDED');
    },

    /**
     * The post was hidden by moderation or unverified by a full refund: its reward is taken back.
     * Called on every such change, repeats included (a redelivered refund), so a crash between the
     * state change and this finishes on the repeat.
     */
    showcaseRemoved: reverse,

    /** Asks again for the rewards still PENDING and the reversals still REVERSING (the sweep). */
    async retry(): Promise<Record<string, number>> {
      const pending = await models.ShowcaseReward.find({ status: 'PENDING' }).limit(RETRY_BATCH).lean<ShowcaseRewardDoc[]>();
      for (const r of pending) await grant(r);
      const reversing = await models.ShowcaseRewardReversal.find({ status: 'REVERSING' })
        .limit(RETRY_BATCH)
        .lean<ShowcaseRewardReversalDoc[]>();
      for (const r of reversing) await settle(r);
      return { rewardsRetried: pending.length, reversalsRetried: reversing.length };
    },

    /** A post's reward as its author and staff see it; null for anyone else, or when it earned none. */
    async rewardOf(viewer: Viewer | null, post: PostDoc): Promise<PostRewardView | null> {
      if (!isSelfOrStaff(viewer, post.memberId)) return null;
      const [reward, reversal] = await Promise.all([
        models.ShowcaseReward.findById(post._id).lean<ShowcaseRewardDoc>(),
        models.ShowcaseRewardReversal.findById(post._id).lean<ShowcaseRewardReversalDoc>(),
      ]);
      if (!reward) return null;
      return {
        status: reward.status === 'REFUSED' || !reversal ? reward.status : reversal.status,
        couponId: reward.couponId ?? null,
        points: reward.pointsGranted ? (reward.points ?? 0) : 0,
        reversalTrigger: reversal?.trigger ?? null,
        couponState: reversal?.couponState ?? null,
        pointsTaken: reversal?.pointsTaken ?? 0,
        pointsShortfall: reversal?.pointsShortfall ?? 0,
        at: reward.at,
      };
    },

    async rule(viewer: Viewer | null) {
      requireRole(viewer, 'STAFF');
      const head = await ledgerHead(models.ShowcaseRewardRule, SHOWCASE_REWARD_RULE);
      return {
        couponTemplateId: head?.templateId ?? null,
        points: head?.points ?? 0,
        minRating: head?.minRating ?? 4,
        version: head?.seq ?? 0,
      };
    },

    /** Staff set (or, with no template and no points, stop) the showcase reward; CONFLICT over a newer version than `expectedVersion`. */
    async setRule(
      viewer: Viewer | null,
      input: { couponTemplateId?: string | null; points?: number | null; minRating: number; expectedVersion: number },
    ) {
      const staff = requireRole(viewer, 'STAFF');
      const templateId = optionalText(input.couponTemplateId, 'couponTemplateId', 64);
      const points = wholeNumber(input.points ?? 0, 'points', 0, MAX_POINTS);
      const minRating = wholeNumber(input.minRating, 'minRating', 1, 5);
      const expected = wholeNumber(input.expectedVersion, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER);
      let stale = false;
      const entry = await appendToLedger(models.ShowcaseRewardRule, SHOWCASE_REWARD_RULE, (head) => {
        stale = (head?.seq ?? 0) !== expected;
        return stale ? null : { templateId, points, minRating, at: now(), by: staff.id };
      });
      if (!entry || stale) throw new AppError('CONFLICT', 'The showcase reward changed since you read it; reload and save again');
      return { couponTemplateId: entry.templateId, points: entry.points ?? 0, minRating: entry.minRating, version: entry.seq };
    },
  };
}

export type ShowcaseRewards = ReturnType<typeof createShowcaseRewards>;
