import type { EventEnvelope } from '@flywheel/events';
import type { AnalyticsService } from './service';

/**
 * Order events → attribution. Each handler is a no-op on a repeat by itself: the order fact is
 * claimed by the order id and every ledger entry is appended at most once by its op
 * (`paid:<orderId>`, `refund:<refundId>`), whatever the event id.
 */
export function analyticsHandlers(analytics: AnalyticsService) {
  return {
    'orders.order.paid': (env: EventEnvelope<'orders.order.paid'>) => analytics.orderPaid(env.data),
    'orders.order.refunded': (env: EventEnvelope<'orders.order.refunded'>) => analytics.orderRefunded(env.data),
  };
}
