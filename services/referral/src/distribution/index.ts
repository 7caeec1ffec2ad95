import type { ModuleDeps, ReferralModule } from '../modules';
import { createCommissionService, type CommissionService } from './commissions';
import { createDistributionModels } from './model';
import { TestPayoutProvider, type PayoutProvider } from './payouts';
import { createReportService } from './reports';
import { distributionResolvers } from './resolvers';
import { createDistributorService, type DistributorService } from './service';
import { createWithdrawalService, type WithdrawalService } from './withdrawals';

export { TestPayoutProvider, type PayoutProvider } from './payouts';

/**
 * Distribution (分销): settings, distributors and buyer bindings (`service.ts`), commissions from
 * order events (`commissions.ts`), withdrawals and payouts (`withdrawals.ts`, `payouts.ts`), the
 * ledger and team reads (`reports.ts`). The payout provider is the test one unless one is given.
 */
export function createDistributionModule(deps: ModuleDeps & { payouts?: PayoutProvider }): ReferralModule & {
  distributors: DistributorService;
  commissions: CommissionService;
  withdrawals: WithdrawalService;
  payouts: PayoutProvider;
} {
  const models = createDistributionModels(deps.db);
  const payouts = deps.payouts ?? new TestPayoutProvider();
  const distributors = createDistributorService({ models, invites: deps.invites, now: deps.now });
  const commissions = createCommissionService({
    models,
    distributors,
    invites: deps.invites,
    kick: deps.kick,
    now: deps.now,
    logger: deps.logger,
  });
  const withdrawals = createWithdrawalService({ models, distributors, payouts, now: deps.now, logger: deps.logger });
  const reports = createReportService({ models, db: deps.db });
  return {
    name: 'distribution',
    distributors,
    commissions,
    withdrawals,
    payouts,
    resolvers: distributionResolvers({ distributors, withdrawals, reports }),
    outboxSources: [models.OrderCommission],
    on: {
      'orders.order.paid': async (env) => {
        await commissions.orderPaid(env.data);
      },
      'orders.order.completed': (env) => commissions.orderCompleted(env.data),
      'orders.order.refunded': (env) => commissions.orderRefunded(env.data),
    },
    sweep: async (at) => ({ payouts: await withdrawals.sweep(at) }),
  };
}
