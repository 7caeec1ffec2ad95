import type { Bus } from '@flywheel/service-kit';
import type { EventHandlers } from '../modules';
import type { BenefitService } from './service';

/** Checkout asks over request/reply: price, take, and give back one checkout's benefits. */
export function replyToCheckouts(bus: Bus, benefits: BenefitService): void {
  bus.reply('membership.benefits.quote', (req) => benefits.quote(req));
  bus.reply('membership.benefits.lock', (req) => benefits.lock(req));
  bus.reply('membership.benefits.release', (req) => benefits.release(req.checkoutId));
}

/** The order's fate settles its locked benefits: payment consumes them, cancellation and refunds give them back. */
export function benefitHandlers(benefits: BenefitService): EventHandlers {
  return {
    'orders.order.paid': (env) => benefits.orderPaid(env.data),
    'orders.order.cancelled': async (env) => {
      await benefits.release(env.data.orderId);
    },
    'orders.order.refunded': (env) => benefits.orderRefunded(env.data),
  };
}
