import type { Bus } from '@flywheel/service-kit';
import type { InventoryService } from './inventory/service';
import type { CatalogService } from './service';

/**
 * Catalog answers orders over request/reply (one queue group per service): price quotes, stock
 * reservations and releases. It consumes the order lifecycle to finish what a reservation started:
 * paid → sold, cancelled → released, refunded → returned goods restocked. Each handler is
 * idempotent on its own claims (`<orderId>:final`, op keys per refund), so a redelivery is a
 * no-op and a half-finished one is completed. It publishes `catalog.product.changed` and
 * `catalog.stock.low` through the outbox (Product, status and stock ledger entries).
 */
export async function registerConsumers({
  bus,
  service,
  inventory,
}: {
  bus: Bus;
  service: CatalogService;
  inventory: InventoryService;
}): Promise<void> {
  bus.reply('catalog.price.quote', (request) => service.quote(request));
  bus.reply('catalog.stock.reserve', (request) => inventory.reserve(request));
  bus.reply('catalog.stock.release', (request) => inventory.release(request.orderId));
  bus.reply('catalog.flash.unhold', (request) => inventory.unhold(request.orderId, request.flashSaleIds));
  await bus.consume('orders.order.paid', (env) => inventory.orderPaid(env.data, env.id));
  await bus.consume('orders.order.cancelled', (env) => inventory.orderCancelled(env.data, env.id));
  await bus.consume('orders.order.refunded', (env) => inventory.orderRefunded(env.data, env.id));
}
