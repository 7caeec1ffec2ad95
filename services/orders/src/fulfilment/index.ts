import type { ModuleDeps } from '../service';
import type { OrderModule } from '../order';
import type { OrderDoc } from '../order/model';
import { fulfilmentResolvers } from './resolvers';
import { createFulfilment } from './service';

/** Shipments (one ledger entry per parcel), delivery and completion, with their sweepers. */
export function createFulfilmentModule(deps: ModuleDeps & { order: OrderModule; requireReleased?: (order: OrderDoc) => Promise<void> }) {
  const { order, config } = deps;
  const fulfilment = createFulfilment({
    models: order.models,
    ledger: order.ledger,
    orders: order.orders,
    now: deps.now,
    autoConfirmDays: config.AUTO_CONFIRM_DAYS,
    afterSaleWindowDays: config.AFTER_SALE_WINDOW_DAYS,
    requireReleased: deps.requireReleased,
    logger: deps.logger,
  });
  return { name: 'fulfilment', fulfilment, resolvers: fulfilmentResolvers(fulfilment) };
}
