import DataLoader from 'dataloader';
import { isStaff, type BaseContext, type Viewer } from '@flywheel/service-kit';
import type { FlashSaleLoaders, FlashSaleService } from './flash-sales/service';
import type { Models } from './model';
import { productLoaders, type ProductLoaders, type ProductService } from './products/service';
import type { ReservationService } from './reservations/service';
import type { StockLoaders, StockService } from './stock/service';
import type { StockEntryDoc } from './stock/model';
import type { ReadModel } from './storefront/service';
import type { SweeperService } from './sweeper/service';

export type CatalogService = ProductService;
/** Stock, reservations and the sweeper together, as tests and tools drive them. */
export type InventoryService = StockService & ReservationService & SweeperService;

export type CatalogLoaders = StockLoaders & FlashSaleLoaders & ProductLoaders;

export interface Context extends BaseContext {
  loaders: CatalogLoaders;
}

/**
 * A request's loaders: from the read model for customers while it is ready, else from the
 * database. Staff read the database: they see drafts and must see their own edits at once.
 */
export function requestLoaders(deps: {
  models: Models;
  stock: Pick<StockService, 'loaders'>;
  flashSales: Pick<FlashSaleService, 'loaders'>;
  readModel: ReadModel | null;
}) {
  return (viewer: Viewer | null): CatalogLoaders => {
    const fromDb = { ...deps.stock.loaders(), ...deps.flashSales.loaders(viewer), ...productLoaders(deps.models) };
    const model = deps.readModel && !isStaff(viewer) && deps.readModel.ready() ? deps.readModel : null;
    return model ? readModelLoaders(model, fromDb) : fromDb;
  };
}

/**
 * The same loaders answered from the read model, for a customer's request: what it does not hold
 * is a draft or does not exist (null, as `visibleProduct` would make it), except stock accounts
 * it does not know (an ended flash sale's quota), which are read from the ledger.
 */
function readModelLoaders(model: ReadModel, fromDb: CatalogLoaders): CatalogLoaders {
  const sync = <V>(get: (id: string) => V) => new DataLoader<string, V>(async (ids) => ids.map(get), { cache: false });
  return {
    ...fromDb,
    product: sync(model.product),
    sku: sync(model.sku),
    category: sync(model.category),
    skusByProduct: sync(model.skusOf),
    childrenOf: sync(model.childrenOf),
    flashSalesBySku: sync(model.flashSalesOf),
    stockHead: new DataLoader(async (accounts) => {
      const known = accounts.map((a) => model.head(a));
      const missing = accounts.filter((_, i) => !known[i]);
      const read = new Map(missing.map((a) => [a, fromDb.stockHead.load(a)] as const));
      return Promise.all(accounts.map((a, i) => (known[i] as StockEntryDoc | undefined) ?? read.get(a)!));
    }),
  };
}
