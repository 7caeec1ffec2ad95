import type { Bus } from '@flywheel/service-kit';
import type { ReservationService } from './service';

/**
 * Orders reserves and releases stock over request/reply, and the order lifecycle finishes what a
 * reservation started: paid → sold, cancelled → released, refunded → returned goods restocked.
 * Each handler is idempotent on its own claims (`<orderId>:final`, op keys per refund), so a
 * redelivery is a no-op and a half-finished one is completed.
 */
export async function registerReservationEvents(bus: Bus, reservations: ReservationService): Promise<void> {
  bus.reply('catalog.stock.reserve', (request) => reservations.reserve(request));
  bus.reply('catalog.stock.release', (request) => reservations.release(request.orderId));
  await bus.consume('orders.order.paid', (env) => reservations.orderPaid(env.data, env.id));
  await bus.consume('orders.order.cancelled', (env) => reservations.orderCancelled(env.data, env.id));
  await bus.consume('orders.order.refunded', (env) => reservations.orderRefunded(env.data, env.id));
}
