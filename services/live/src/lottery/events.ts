import type { EventEnvelope } from '@flywheel/events';
import type { LotteryService } from './service';

/**
 * A paid order from a live room makes its member eligible there as a buyer (BOUGHT). Delivery is
 * at least once; the participation's unique id makes a repeat a no-op.
 */
export function lotteryHandlers(lottery: LotteryService) {
  return {
    'orders.order.paid': (env: EventEnvelope<'orders.order.paid'>) => lottery.orderPaid(env.data),
  };
}
