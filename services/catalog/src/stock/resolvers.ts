import type { Resolvers } from '../__generated__/resolvers';
import type { StockService } from './service';

export function stockResolvers(stock: StockService): Resolvers {
  return {
    Query: {
      stockLedger: (_, { skuId, ...page }, { viewer }) => stock.stockLedger(viewer, skuId, page),
    },
    Mutation: {
      adjustStock: async (_, { input }, { viewer, loaders }) => {
        const result = await stock.adjustStock(viewer, input);
        loaders.stockHead.clear(input.skuId);
        return result;
      },
    },
    Product: {
      inStock: async (p, _, { loaders }) => stock.inStock(loaders, await loaders.skusByProduct.load(p._id.toHexString())),
    },
    Sku: {
      stock: (s, _, { viewer, loaders }) => stock.stockOf(viewer, loaders, s),
      inStock: (s, _, { loaders }) => stock.inStock(loaders, [s]),
    },
  };
}
