import type { CatalogModule, ModuleDeps } from '../modules';
import type { StockAccounts } from '../stock/accounts';
import { createFlashAdmission } from './admission';
import { registerFlashSaleEvents } from './events';
import { createMemoryFlashGate, createRedisFlashGate, shareGateChanges } from './gate';
import { flashSaleResolvers } from './resolvers';
import { createFlashSaleService } from './service';

/**
 * Flash sales: their creation and views, the gate that decides buyers at quote time (Redis when
 * configured, else in memory and shared over NATS), and settling ended ones.
 */
export function createFlashSalesModule(
  deps: ModuleDeps & { accounts: StockAccounts; onFlashSaleCreated?: (productId: string) => Promise<unknown> },
) {
  const { config, bus, logger } = deps;
  const holdMs = config.FLASH_GATE_HOLD_SECONDS * 1000;
  const gate = config.REDIS_URL
    ? createRedisFlashGate({ url: config.REDIS_URL, holdMs, keyPrefix: config.FLASH_GATE_KEY_PREFIX })
    : shareGateChanges(createMemoryFlashGate({ holdMs }), bus.nc, (err) => logger.warn({ err }, 'flash gate message ignored'));
  logger.info({ flashGate: gate.kind }, 'flash gate');
  const admission = createFlashAdmission({ ...deps, gate });
  const flashSales = createFlashSaleService({ ...deps, admission });
  return {
    name: 'flash-sales',
    admission,
    flashSales,
    resolvers: flashSaleResolvers(flashSales),
    register: (b) => registerFlashSaleEvents(b, admission, flashSales),
    stop: () => gate.close(),
  } satisfies CatalogModule & Record<string, unknown>;
}
