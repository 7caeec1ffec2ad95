import type { ModuleDeps, ReferralModule } from '../modules';
import { createBargainModels } from './model';
import { bargainResolvers } from './resolvers';
import { createBargainService, type BargainService } from './service';

export { BARGAIN_LIMITS, type BargainService } from './service';
export { bargainCuts } from './cuts';

/**
 * Bargains (砍价): staff offers, members' bargains as per-member ledgers, helpers' cuts as slot
 * claims, the one purchase per bargain as a claim held by a checkout (`referral.price.*` with
 * offer kind BARGAIN), BOUGHT on `orders.order.paid`, given back on `orders.order.cancelled`,
 * expiry in the sweep.
 */
export function createBargainModule(deps: ModuleDeps): ReferralModule & { bargains: BargainService } {
  const models = createBargainModels(deps.db);
  const bargains = createBargainService({ models, bus: deps.bus, now: deps.now });
  return {
    name: 'bargain',
    bargains,
    resolvers: bargainResolvers(bargains),
    on: {
      'orders.order.paid': (env) => bargains.orderPaid(env.data, env.id),
      // An unpaid order cancelled gives its bargain back to the starter (a checkout that failed is
      // released by orders' `referral.price.release` instead).
      'orders.order.cancelled': async (env) => {
        await bargains.release(env.data.orderId);
      },
    },
    pricing: {
      kind: 'BARGAIN',
      quote: (req) => bargains.quote(req),
      lock: (req) => bargains.lock(req),
      release: (checkoutId) => bargains.release(checkoutId),
    },
    sweep: (at) => bargains.sweep(at),
  };
}
