import type { CartService } from '../cart/service';
import type { CatalogClient } from '../clients/catalog';
import type { ModuleDeps } from '../service';
import type { Models, OrderDoc } from '../order/model';
import type { Shipping } from '../shipping';
import type { CheckoutModels } from './model';
import type { QuoteAdjuster } from './pricing';
import { checkoutResolvers } from './resolvers';
import { createCheckout, type CheckoutHooks } from './service';
import { createUnpaidHolds } from './unpaid';

export { orderIdFor, type CheckoutHooks } from './service';
export type { PlaceOrderInput } from './request';

/**
 * Placing orders: the checkout saga (quote → reserve → lock → order), its pricing extension point
 * (quote adjusters), the member's caps on what unpaid orders hold, and the recovery sweeper.
 */
export function createCheckoutModule(
  deps: ModuleDeps & {
    models: Models;
    checkoutModels: CheckoutModels;
    shipping: Shipping;
    catalog: CatalogClient;
    cart: CartService;
    adjusters: readonly QuoteAdjuster[];
    hooks: CheckoutHooks;
    /** Pays a zero-total order at once (payments' settlement, bound after the order module exists). */
    settleFree?: (order: OrderDoc) => Promise<unknown>;
  },
) {
  const { config, now, logger } = deps;
  const models = { ...deps.models, ...deps.checkoutModels };
  const recoverySeconds = config.CHECKOUT_RECOVERY_SECONDS;
  const unpaid = createUnpaidHolds({
    models,
    caps: {
      orders: config.MAX_UNPAID_ORDERS_PER_MEMBER,
      units: config.MAX_UNPAID_UNITS_PER_MEMBER,
      flashUnitsPerSku: config.MAX_UNPAID_FLASH_UNITS_PER_SKU,
    },
    now,
    recoverySeconds,
    logger,
  });
  const checkout = createCheckout({
    models,
    catalog: deps.catalog,
    cart: deps.cart,
    shipping: deps.shipping,
    unpaid,
    adjusters: deps.adjusters,
    hooks: deps.hooks,
    kick: deps.kick,
    now,
    recoverySeconds,
    logger,
    settleFree: deps.settleFree,
  });
  return { name: 'checkout', checkout, unpaid, resolvers: checkoutResolvers(checkout) };
}
