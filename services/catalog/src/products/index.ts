import type { ProductProjection } from '../browse/projection';
import type { FlashAdmission } from '../flash-sales/admission';
import type { CatalogModule, ModuleDeps } from '../modules';
import type { StockService } from '../stock/service';
import type { ReadModel } from '../storefront/service';
import { registerProductEvents } from './events';
import { createQuoter } from './quote';
import { productResolvers } from './resolvers';
import { createProductService } from './service';

/** Categories, products and SKUs, their prices and the quotes orders are priced by. */
export function createProductsModule(
  deps: ModuleDeps & { stock: StockService; admission: FlashAdmission; projection: ProductProjection; readModel: ReadModel | null },
) {
  const quoter = createQuoter(deps);
  const products = createProductService({ ...deps, quoter });
  return {
    name: 'products',
    products,
    resolvers: productResolvers(products),
    register: (bus) => registerProductEvents(bus, products),
  } satisfies CatalogModule & Record<string, unknown>;
}
