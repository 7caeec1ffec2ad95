import type { ModuleDeps, ReferralModule } from '../modules';
import { createGroupBuyModels } from './model';
import { groupBuyResolvers } from './resolvers';
import { createGroupBuyService, type GroupBuyService } from './service';

export { GROUP_BUY_LIMITS, groupIdFor, type GroupBuyService } from './service';

/**
 * Group buys (拼团): staff offers, groups opened and joined through checkout's referral pricing
 * (slots claimed at lock, freed on a failed checkout or a cancelled unpaid order), payments from
 * `orders.order.paid`, and the outcome once per group (`referral.groupbuy.succeeded|failed`), on
 * filling or by the sweep at expiry.
 */
export function createGroupBuyModule(deps: ModuleDeps): ReferralModule & { groupBuys: GroupBuyService } {
  const models = createGroupBuyModels(deps.db);
  const groupBuys = createGroupBuyService({ models, bus: deps.bus, kick: deps.kick, now: deps.now, logger: deps.logger });
  return {
    name: 'groupbuy',
    groupBuys,
    resolvers: groupBuyResolvers(groupBuys, deps.now),
    outboxSources: [models.GroupBuyOutcome],
    pricing: groupBuys.pricing,
    on: {
      'orders.order.paid': (env) => groupBuys.orderPaid(env.data),
      'orders.order.cancelled': (env) => groupBuys.orderCancelled(env.data),
    },
    sweep: (at) => groupBuys.sweep(at),
  };
}
