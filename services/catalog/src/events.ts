import type { Bus } from '@flywheel/service-kit';
import type { CatalogService } from './service';

/**
 * Catalog answers price quotes for orders (request/reply, one queue group per service). It
 * publishes `catalog.product.changed` through the outbox: on the Product insert when a product is
 * created and on each status ledger entry afterwards. Stock reservation replies and the
 * order-event consumers (reservation → sold, release on cancel) arrive with the checkout saga.
 */
export async function registerConsumers({ bus, service }: { bus: Bus; service: CatalogService }): Promise<void> {
  bus.reply('catalog.price.quote', (request) => service.quote(request));
}
