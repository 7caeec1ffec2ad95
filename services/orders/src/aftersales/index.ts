import type { Fulfilment } from '../fulfilment/service';
import type { ModuleDeps } from '../service';
import type { OrderModule } from '../order';
import type { PaymentModels } from '../payments/model';
import type { PaymentProvider } from '../payments/provider';
import { createAfterSaleModels } from './model';
import { afterSaleResolvers } from './resolvers';
import { createAfterSales } from './service';

/** After-sales (售后): requests, staff's decisions, returns and refunds, all on the order's ledger. */
export function createAfterSalesModule(
  deps: ModuleDeps & { order: OrderModule; fulfilment: Fulfilment; paymentModels: PaymentModels; provider: PaymentProvider },
) {
  const afterSales = createAfterSales({
    models: deps.order.models,
    afterSaleModels: createAfterSaleModels(deps.db),
    paymentModels: deps.paymentModels,
    provider: deps.provider,
    ledger: deps.order.ledger,
    windowClosesAt: deps.fulfilment.windowClosesAt,
    now: deps.now,
    logger: deps.logger,
  });
  return { name: 'aftersales', afterSales, resolvers: afterSaleResolvers(afterSales) };
}
