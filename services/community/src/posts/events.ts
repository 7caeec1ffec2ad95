import { BusRequestError, ledgerHead, claimOnce, type Bus, type Logger } from '@flywheel/service-kit';
import type { PostDoc, PostModels } from './model';

/** Membership's refusals that are final for a grant key (the template stopped or ran out; the member's limit). */
const FINAL_REFUSALS = new Set(['BAD_USER_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'OUT_OF_STOCK']);
export const SHOWCASE_REWARD_RULE = 'showcase-reward';
const RETRY_BATCH = 50;

/**
 * Showcase rewards (好评送券): a verified showcase rated at least the rule's minimum earns the rule's
 * coupon, granted through `membership.coupon.grant` keyed `community:showcase:<postId>`. The reward
 * row (`_id` = postId) is the once-per-post claim; a grant that got no answer stays PENDING and the
 * sweep asks again under the same key, so a member never gets two. A later refund or hiding does
 * not take the coupon back.
 */
export function createShowcaseRewards(deps: { models: PostModels; bus: Bus; logger: Logger; now: () => Date }) {
  const { models } = deps;

  async function grant(reward: { _id: string; memberId: string; templateId: string }): Promise<void> {
    try {
      const { couponId } = await deps.bus.request('membership.coupon.grant', {
        key: `community:showcase:${reward._id}`,
        memberId: reward.memberId,
        templateId: reward.templateId,
        reason: 'Showcase reward (晒单好评)',
      });
      await models.ShowcaseReward.updateOne({ _id: reward._id }, { $set: { status: 'GRANTED', couponId } });
    } catch (err) {
      if (err instanceof BusRequestError && FINAL_REFUSALS.has(err.code)) {
        await models.ShowcaseReward.updateOne({ _id: reward._id }, { $set: { status: 'REFUSED' } });
        return;
      }
      deps.logger.warn({ err, postId: reward._id }, 'showcase reward grant failed; the sweep retries');
    }
  }

  return {
    /** After a showcase is published: claims its reward if the rule gives one, and asks membership for it. */
    async showcasePublished(post: PostDoc): Promise<void> {
      const rule = await ledgerHead(models.ShowcaseRewardRule, SHOWCASE_REWARD_RULE);
      if (!rule?.templateId || !post.showcase || !post.verified || post.showcase.rating < rule.minRating) return;
      const reward = { _id: post._id, memberId: post.memberId, templateId: rule.templateId, status: 'PENDING' as const, at: deps.now() };
      if (await claimOnce(models.ShowcaseReward, reward)) await grant(reward);
    },

    /** Asks again for the rewards still PENDING (the sweep). */
    async retry(): Promise<Record<string, number>> {
      const pending = await models.ShowcaseReward.find({ status: 'PENDING' }).limit(RETRY_BATCH).lean();
      for (const r of pending) await grant(r);
      return { rewardsRetried: pending.length };
    },
  };
}

export type ShowcaseRewards = ReturnType<typeof createShowcaseRewards>;
