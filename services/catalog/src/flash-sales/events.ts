import type { Bus } from '@flywheel/service-kit';
import type { FlashAdmission } from './admission';
import type { FlashSaleService } from './service';

/**
 * A checkout that stopped before reserving gives back what its quote holds at the gate; a live
 * room linking a flash sale as its flash deal reads its SKU, product and window.
 */
export function registerFlashSaleEvents(bus: Bus, admission: FlashAdmission, flashSales: FlashSaleService): void {
  bus.reply('catalog.flash.unhold', (request) => admission.unhold(request.orderId, request.flashSaleIds));
  bus.reply('catalog.flash.describe', (request) => flashSales.describe(request.flashSaleId));
}
