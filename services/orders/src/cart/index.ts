import type { CatalogClient } from '../clients/catalog';
import type { ModuleDeps } from '../service';
import { createCartModels } from './model';
import { cartResolvers } from './resolvers';
import { createCartService } from './service';

/** The member's cart: lines re-priced by catalog on every read; checkout orders from it. */
export function createCartModule(deps: ModuleDeps & { catalog: CatalogClient }) {
  const cart = createCartService({ models: createCartModels(deps.db), catalog: deps.catalog, now: deps.now });
  return { name: 'cart', cart, resolvers: cartResolvers(cart) };
}
