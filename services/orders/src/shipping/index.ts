import { piiCipherKey } from '@flywheel/service-kit';
import type { CheckoutModels } from '../checkout/model';
import type { AddressBook } from '../clients/membership';
import type { Models } from '../order/model';
import type { ModuleDeps } from '../service';
import { shippingHandlers } from './events';
import { createShippingModels } from './model';
import { shippingResolvers } from './resolvers';
import { createShipping } from './service';

export type { Shipping } from './service';

/**
 * Shipping fees (运费模板) and the address an order ships to: the staff-managed template, the fee
 * checkout charges, the encrypted address snapshot on the order, and its erasure on
 * `membership.member.erased`.
 */
export function createShippingModule(deps: ModuleDeps & { models: Models; checkoutModels: CheckoutModels; addresses: AddressBook | null }) {
  const shipping = createShipping({
    models: { ...createShippingModels(deps.db), Order: deps.models.Order, CheckoutFinal: deps.checkoutModels.CheckoutFinal },
    addresses: deps.addresses,
    pii: piiCipherKey(deps.config.PII_ENCRYPTION_KEY),
    now: deps.now,
  });
  return { name: 'shipping', shipping, resolvers: shippingResolvers(shipping), on: shippingHandlers(shipping) };
}
