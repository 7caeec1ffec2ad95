import { requireRole } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { createCampaigns } from './campaigns';
import type { CouponsService } from './service';

/** Translates GraphQL to the coupon service and back; every rule lives in the service. */
export function createCouponResolvers(service: CouponsService, campaigns: ReturnType<typeof createCampaigns>): Resolvers {
  return {
    Query: {
      couponCampaigns: (_p, _a, ctx) => {
        requireRole(ctx.viewer, 'STAFF');
        return campaigns.current();
      },
      couponTemplates: (_p, args, ctx) => service.listTemplates(ctx.viewer, args),
      couponTemplate: (_p, { id }, ctx) => service.templateFor(ctx.viewer, id),
    },
    Mutation: {
      createCouponTemplate: (_p, { input }, ctx) => service.createTemplate(ctx.viewer, input),
      stopCouponTemplate: (_p, { input }, ctx) => service.stopTemplate(ctx.viewer, input.id),
      grantCoupon: (_p, { input }, ctx) => service.grantByStaff(ctx.viewer, input),
      claimCoupon: (_p, { input }, ctx) => service.claim(ctx.viewer, input),
      updateCouponCampaigns: (_p, { input }, ctx) =>
        campaigns.update(ctx.viewer, {
          ...(input.welcomeTemplateId !== undefined ? { welcomeTemplateId: input.welcomeTemplateId } : {}),
          ...(input.winBackTemplateId !== undefined ? { winBackTemplateId: input.winBackTemplateId } : {}),
        }),
    },
    Member: {
      coupons: (member, _a, ctx) => service.walletFor(ctx.viewer, String(member._id)),
    },
    CouponWallet: {
      available: async (w) => (await service.walletSummary(w)).available,
      locked: async (w) => (await service.walletSummary(w)).locked,
      used: async (w) => (await service.walletSummary(w)).used,
      expired: async (w) => (await service.walletSummary(w)).expired,
      revoked: async (w) => (await service.walletSummary(w)).revoked,
      coupons: (w, args) => service.walletCoupons(w, args),
    },
    CouponTemplate: {
      // Another subgraph's reference (content's coupon cards): what `couponTemplate(id)` would answer.
      __resolveReference: (ref, ctx) => service.templateFor(ctx.viewer, ref.id),
      id: (t) => String(t._id),
      remaining: (t) => service.remaining(t),
    },
    Coupon: {
      id: (c) => c._id,
      template: async (c) => {
        const t = await service.template(c.templateId);
        if (!t) throw new Error(`coupon ${c._id}: template ${c.templateId} missing`);
        return t;
      },
      state: (c) => service.stateOf(c),
    },
  };
}
