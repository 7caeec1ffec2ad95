import type { EventEnvelope } from '@flywheel/events';
import type { SalesService } from './service';

/**
 * Order events credit the room an order came from (source LIVE). Delivery is at least once; the
 * handlers make a repeat a no-op by themselves (keyed by the order id and the refund id).
 */
export function salesHandlers(sales: SalesService) {
  return {
    'orders.order.paid': (env: EventEnvelope<'orders.order.paid'>) => sales.orderPaid(env.data),
    'orders.order.refunded': (env: EventEnvelope<'orders.order.refunded'>) => sales.orderRefunded(env.data),
  };
}
