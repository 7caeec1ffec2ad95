import type { UnpaidHolds } from '../checkout/unpaid';
import type { ModuleDeps } from '../service';
import { createOrderLedger } from './ledger';
import type { Models } from './model';
import { orderResolvers } from './resolvers';
import { createOrders } from './service';

/**
 * The order aggregate: its ledger (state machine and units in one append-only sequence), the
 * reads and moves people make on it, and the unpaid-order sweeper. Every other module moves
 * orders through this ledger.
 */
export function createOrderModule(deps: ModuleDeps & { models: Models; unpaid: Pick<UnpaidHolds, 'release'> }) {
  const { models, now, logger } = deps;
  const ledger = createOrderLedger({
    models,
    now,
    kick: deps.kick,
    // Paid, cancelled or expired: the order's share of the member's unpaid allowance goes back.
    // A failure here is not the move's (it landed): the member's next checkout at a cap finds
    // the stale hold and gives it back.
    leftUnpaid: (order) =>
      deps.unpaid
        .release(order.memberId, order._id)
        .then(() => undefined)
        .catch((err: unknown) => logger?.warn({ err, orderId: order._id }, 'unpaid hold not released; released when next needed')),
  });
  const orders = createOrders({ models, ledger, now, paymentTimeoutMs: deps.config.ORDER_PAYMENT_TIMEOUT_SECONDS * 1000, logger });
  return { name: 'order', orders, ledger, models, resolvers: orderResolvers(orders) };
}
export type OrderModule = ReturnType<typeof createOrderModule>;
