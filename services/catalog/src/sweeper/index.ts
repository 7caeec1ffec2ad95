import type { FlashSaleService } from '../flash-sales/service';
import type { CatalogModule, ModuleDeps } from '../modules';
import type { ReservationFinals } from '../reservations/finals';
import { createSweeperService } from './service';

/**
 * The periodic repair work on its timer (started once consumers are registered, stopped first on
 * shutdown). `alsoRun` are further passes of the same tick (the product listings' repair pass).
 */
export function createSweeperModule(
  deps: ModuleDeps & { finals: ReservationFinals; flashSales: FlashSaleService; alsoRun: (() => Promise<unknown>)[] },
) {
  const sweeper = createSweeperService(deps);
  const timer = sweeper.sweeper(deps.config.STOCK_SWEEP_INTERVAL_SECONDS * 1000, deps.alsoRun);
  return { name: 'sweeper', sweeper, timer } satisfies CatalogModule & Record<string, unknown>;
}
