import type { FlashAdmission } from '../flash-sales/admission';
import type { FlashSaleService } from '../flash-sales/service';
import type { CatalogModule, ModuleDeps } from '../modules';
import type { StockAccounts } from '../stock/accounts';
import { registerReservationEvents } from './events';
import { createReservationFinals } from './finals';
import { createReservationService } from './service';

/** Orders' stock reservations: reserve, release, and how each one ends (sold or released). */
export function createReservationsModule(
  deps: ModuleDeps & { accounts: StockAccounts; admission: FlashAdmission; flashSales: FlashSaleService },
) {
  const finals = createReservationFinals(deps);
  const reservations = createReservationService({ ...deps, finals, reservationTtlSeconds: deps.config.RESERVATION_TTL_SECONDS });
  return {
    name: 'reservations',
    finals,
    reservations,
    register: (bus) => registerReservationEvents(bus, reservations),
  } satisfies CatalogModule & Record<string, unknown>;
}
