import type { Bus } from '@flywheel/service-kit';
import type { CatalogModule } from './modules';

/**
 * Catalog answers orders over request/reply (price quotes, stock reservations and releases, flash
 * unholds) and consumes the order lifecycle (reservations/events.ts). It publishes
 * `catalog.product.changed` and `catalog.stock.low` through the outbox (Product, status and stock
 * ledger entries).
 */
export async function registerConsumers({ bus, modules }: { bus: Bus; modules: CatalogModule[] }): Promise<void> {
  for (const m of modules) await m.register?.(bus);
}
