import type { ModuleDeps } from '../service';
import type { OrderModule } from '../order';
import { paymentOf, type OrderDoc, type OrderTransitionDoc } from '../order/model';
import { statusOf } from '../order/state';
import { createPaymentModels } from './model';
import type { PaymentProvider } from './provider';
import { paymentResolvers } from './resolvers';
import { createPaymentService } from './service';

/**
 * Paying for orders: one intent per order at the provider, its signed callbacks (routes.ts),
 * reconciliation of callbacks that never came, and refunds of money that did not pay an order.
 * Whether a payment pays its order is the order's ledger's decision.
 */
export function createPaymentsModule(deps: ModuleDeps & { order: OrderModule; provider: PaymentProvider }) {
  const { config } = deps;
  const { models, ledger, orders } = deps.order;
  const paymentModels = createPaymentModels(deps.db);
  const payments = createPaymentService({
    models: paymentModels,
    provider: deps.provider,
    now: deps.now,
    reconcileAfterSeconds: config.PAYMENT_RECONCILE_AFTER_SECONDS,
    // Past the payment deadline by more than the wait for a callback: a charge captured at the
    // last moment is still found (and refunded, its order being cancelled by then).
    reconcileUntilSeconds:
      config.ORDER_PAYMENT_TIMEOUT_SECONDS + config.CHECKOUT_RECOVERY_SECONDS + 2 * config.PAYMENT_RECONCILE_AFTER_SECONDS + 600,
    logger: deps.logger,
    orders: {
      find: (orderId) => models.Order.findById(orderId).lean<OrderDoc>(),
      status: async (orderId) => statusOf(await ledger.head(orderId)),
      markPaid: async (order, paymentId) => (await ledger.move(order, { to: 'PAID', by: 'PAYMENT', actorId: null, paymentId })).moved,
      // The move that paid it: later entries of a paid order (shipments, after-sales) are `to: PAID` too.
      paidBy: async (orderId) => {
        const paid = await models.OrderTransition.findOne({
          accountId: orderId,
          from: 'PENDING_PAYMENT',
          to: 'PAID',
        }).lean<OrderTransitionDoc>();
        return paid ? paymentOf(paid) : null;
      },
      payBy: orders.payBy,
    },
  });
  return { name: 'payments', payments, models: paymentModels, resolvers: paymentResolvers(payments) };
}
