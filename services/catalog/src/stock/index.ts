import type { CatalogModule, ModuleDeps } from '../modules';
import { createStockAccounts } from './accounts';
import type { StockEntryDoc } from './model';
import { stockResolvers } from './resolvers';
import { createStockService } from './service';

/** The SKUs' stock ledgers: the writer every module moves stock through, stock views and adjustments. */
export function createStockModule(deps: ModuleDeps & { onStockMoved?: (entry: StockEntryDoc) => void }) {
  const accounts = createStockAccounts(deps);
  const stock = createStockService({ models: deps.models, accounts });
  return { name: 'stock', accounts, stock, resolvers: stockResolvers(stock) } satisfies CatalogModule & Record<string, unknown>;
}
