import type { EventHandlers } from '@flywheel/service-kit';
import type { AfterSales } from '../aftersales/service';
import type { Models } from '../order/model';
import type { ModuleDeps } from '../service';
import type { GroupBuyHoldModels } from './model';
import { groupBuyResolvers } from './resolvers';
import { createGroupBuyHolds } from './service';

export { createGroupBuyHoldModels } from './model';

/** Group-buy orders held until referral's `referral.groupbuy.succeeded|failed` (release, or refund in full). */
export function createGroupBuyModule(deps: ModuleDeps & { models: Models & GroupBuyHoldModels; afterSales: AfterSales }) {
  const holds = createGroupBuyHolds({ models: deps.models, afterSales: deps.afterSales, now: deps.now, logger: deps.logger });
  const on: EventHandlers = {
    'referral.groupbuy.succeeded': (env) => holds.succeeded(env.data, env.id),
    'referral.groupbuy.failed': (env) => holds.failed(env.data, env.id),
  };
  return { name: 'groupbuy', holds, resolvers: groupBuyResolvers(holds), on };
}
