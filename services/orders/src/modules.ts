import type { Resolvers } from './__generated__/resolvers';
import { createAfterSalesModule } from './aftersales';
import { createCartModule } from './cart';
import { createCheckoutModule, type CheckoutHooks } from './checkout';
import { createCheckoutModels } from './checkout/model';
import type { QuoteAdjuster } from './checkout/pricing';
import { createCatalogClient } from './clients/catalog';
import type { AddressBook } from './clients/membership';
import { createFulfilmentModule } from './fulfilment';
import { createGroupBuyHoldModels, createGroupBuyModule } from './groupbuy';
import { createOrderModule } from './order';
import { createModels, type OrderDoc } from './order/model';
import { createPaymentsModule } from './payments';
import type { PaymentProvider } from './payments/provider';
import { createShippingModule } from './shipping';
import type { ModuleDeps } from './service';

/** Every module: its name, its resolvers (merged type by type in main.ts), and its service. */
export interface OrdersModule {
  name: string;
  resolvers: Resolvers;
}

/**
 * The modules of orders, wired. Checkout comes before the order aggregate because the order's
 * ledger gives back checkout's unpaid caps on its PAID and CANCELLED moves; every module after it
 * moves orders through that ledger.
 */
export function createModules(
  deps: ModuleDeps & {
    provider: PaymentProvider;
    adjusters: readonly QuoteAdjuster[];
    hooks: CheckoutHooks;
    addresses: AddressBook | null;
  },
) {
  const models = createModels(deps.db);
  const checkoutModels = createCheckoutModels(deps.db);
  const catalog = createCatalogClient(deps.bus, deps.config.CATALOG_TIMEOUT_MS);
  const cart = createCartModule({ ...deps, catalog });
  const shipping = createShippingModule({ ...deps, models, checkoutModels });
  // A zero-total order is paid at checkout through payments, which exists only after the order
  // module (itself after checkout): bound late, called only once an order is placed.
  const settleFree = (order: OrderDoc) => payments.payments.settleFree(order);
  const checkout = createCheckoutModule({
    ...deps,
    models,
    checkoutModels,
    catalog,
    cart: cart.cart,
    shipping: shipping.shipping,
    settleFree,
  });
  const order = createOrderModule({ ...deps, models, unpaid: checkout.unpaid });
  // A group-buy order ships only once its group succeeded (the holds exist after after-sales, bound late).
  const fulfilment = createFulfilmentModule({ ...deps, order, requireReleased: (o) => groupbuy.holds.requireReleased(o) });
  const payments = createPaymentsModule({ ...deps, order });
  const aftersales = createAfterSalesModule({ ...deps, order, fulfilment: fulfilment.fulfilment, paymentModels: payments.models });
  const groupbuy = createGroupBuyModule({
    ...deps,
    models: { ...models, ...createGroupBuyHoldModels(deps.db) },
    afterSales: aftersales.afterSales,
  });
  const modules = { order, cart, checkout, payments, fulfilment, aftersales, shipping, groupbuy };
  return modules satisfies Record<string, OrdersModule>;
}
export type Modules = ReturnType<typeof createModules>;

/** Orders' periodic work: one pass of everything (`sweep`, on the timer) and each sweeper alone (tests drive them). */
export function sweepers({ order, checkout, payments, fulfilment, aftersales }: Modules) {
  return {
    async sweep(at: Date = new Date()) {
      // Payments first: a charge whose callback was lost pays its order before the unpaid-order
      // sweeper would cancel it (and is refunded if the order was cancelled already).
      const reconciled = await payments.payments.reconcile(at);
      const [checkouts, expired, refunds, delivered, completed, afterSales] = await Promise.all([
        checkout.checkout.recover(at),
        order.orders.cancelUnpaid(at),
        payments.payments.retryRefunds(at),
        fulfilment.fulfilment.autoConfirm(at),
        fulfilment.fulfilment.completeDue(at),
        aftersales.afterSales.sweep(at),
      ]);
      return { reconciled, checkouts, expired, refunds, delivered, completed, afterSales };
    },
    cancelUnpaid: order.orders.cancelUnpaid,
    recoverCheckouts: checkout.checkout.recover,
    reconcilePayments: payments.payments.reconcile,
    /** What the member's unpaid orders hold against the caps. */
    unpaidHeldBy: checkout.unpaid.heldBy,
    autoConfirmDeliveries: fulfilment.fulfilment.autoConfirm,
    completeDueOrders: fulfilment.fulfilment.completeDue,
    sweepAfterSales: aftersales.afterSales.sweep,
  };
}
export type OrderService = ReturnType<typeof sweepers>;
