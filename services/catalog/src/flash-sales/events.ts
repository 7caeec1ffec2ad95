import type { Bus } from '@flywheel/service-kit';
import type { FlashAdmission } from './admission';

/** A checkout that stopped before reserving gives back what its quote holds at the gate. */
export function registerFlashSaleEvents(bus: Bus, admission: FlashAdmission): void {
  bus.reply('catalog.flash.unhold', (request) => admission.unhold(request.orderId, request.flashSaleIds));
}
