import type { Resolvers } from '../__generated__/resolvers';
import type { FlashSaleService } from './service';

export function flashSaleResolvers(flashSales: FlashSaleService): Resolvers {
  return {
    Query: {
      flashSales: (_, args, { viewer, loaders }) => flashSales.listFlashSales(viewer, loaders, args),
      flashSale: (_, { id }, { viewer, loaders }) => flashSales.flashSale(viewer, loaders, id),
    },
    Mutation: {
      createFlashSale: async (_, { input }, { viewer, loaders }) => {
        const flash = await flashSales.createFlashSale(viewer, input);
        loaders.stockHead.clear(input.skuId);
        const flashSale = await flashSales.flashView(loaders, flash);
        if (!flashSale) throw new Error('flash sale without its SKU');
        return { flashSale };
      },
    },
    Sku: {
      flashSale: (s, _, { viewer, loaders }) => flashSales.flashSaleOfSku(viewer, loaders, s),
    },
    // Other subgraphs (a live room's flash deal) hold only the id; customers see it as `flashSale(id)` does.
    FlashSale: {
      __resolveReference: (ref, { viewer, loaders }) => flashSales.flashSale(viewer, loaders, ref.id),
    },
  };
}
