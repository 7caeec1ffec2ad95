import type { CouponService } from '../coupons';
import type { LoyaltyService } from '../loyalty';
import type { MembershipModule, ModuleDeps } from '../modules';
import { benefitHandlers, replyToCheckouts } from './events';
import { createBenefitModels } from './model';
import { createBenefitService, type BenefitService } from './service';

export type { BenefitFinalDoc, BenefitLockDoc } from './model';
export type { BenefitService } from './service';

/**
 * A checkout's tier discount, coupon and points (`membership.benefits.quote|lock|release`),
 * settled by the order's paid, cancelled and refunded events (see service.ts). No SDL: checkout
 * reaches it over request/reply only.
 */
export function createBenefitsModule(
  deps: ModuleDeps & { coupons: CouponService; loyalty: LoyaltyService },
): MembershipModule & { benefits: BenefitService } {
  const benefits = createBenefitService({
    models: createBenefitModels(deps.db),
    bus: deps.bus,
    coupons: deps.coupons,
    loyalty: deps.loyalty,
    settings: deps.settings,
    logger: deps.logger,
    now: deps.now,
  });
  return {
    name: 'benefits',
    benefits,
    resolvers: {},
    init: async () => replyToCheckouts(deps.bus, benefits),
    on: benefitHandlers(benefits),
  };
}
