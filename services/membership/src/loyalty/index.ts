import type { CouponService } from '../coupons';
import type { Models } from '../model';
import type { MembershipModule, ModuleDeps } from '../modules';
import { registerLoyaltyRepliers } from './events';
import { createLoyaltyModels } from './model';
import { loyaltyResolvers } from './resolvers';
import { createLoyaltyService, type LoyaltyService } from './service';

export { PointsRefused, type LoyaltyService } from './service';

/**
 * Points, growth and tiers, tasks, member day and birthdays. Reacts to paid orders (earn at the
 * tier's rate) and refunds (claw back the refunded share), to referral point rewards, and to
 * published showcases (the evidence a REVIEW task reward needs).
 */
export function createLoyaltyModule(
  deps: ModuleDeps & { coupons: CouponService; models: Models },
): MembershipModule & { loyalty: LoyaltyService } {
  const models = createLoyaltyModels(deps.db);
  const loyalty = createLoyaltyService({
    models,
    core: deps.models,
    settings: deps.settings,
    coupons: deps.coupons,
    kick: deps.kick,
    now: deps.now,
    logger: deps.logger,
  });
  return {
    name: 'loyalty',
    loyalty,
    resolvers: loyaltyResolvers(loyalty),
    outboxSources: [models.TierEntry],
    on: {
      'orders.order.paid': (env) => loyalty.orderPaid(env.data),
      'orders.order.refunded': (env) => loyalty.orderRefunded(env.data),
      'community.post.published': async (env) => {
        // REVIEW evidence: a published showcase (晒单), once per post.
        await loyalty.postPublished(env.id, env.data);
      },
      // A removed showcase's unused REVIEW evidence is dropped (tasks.ts postRemoved).
      'community.post.removed': async (env) => {
        await loyalty.postRemoved(env.data);
      },
      'referral.share.created': async (env) => {
        // SHARE evidence: a share the member made, once per share.
        await loyalty.shareCreated(env.id, env.data);
      },
      // Keyed grants (`referral:<rewardId>`), so `referral.reward.reversed` takes back exactly them.
      'referral.reward.granted': async (env) => {
        const d = env.data;
        if (d.kind !== 'POINTS' || !d.points) return;
        await loyalty.grantByKey({
          key: `referral:${d.rewardId}`,
          memberId: d.memberId,
          points: d.points,
          reason: d.reason || 'Referral reward',
        });
      },
      'referral.reward.reversed': async (env) => {
        if (env.data.kind !== 'POINTS') return;
        await loyalty.revokeByKey(`referral:${env.data.rewardId}`, env.data.reason || 'Referral reward reversed');
      },
    },
    sweep: (at) => loyalty.sweep(at),
    init: async () => registerLoyaltyRepliers(deps.bus, loyalty),
  };
}
