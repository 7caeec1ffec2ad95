import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import { money } from './service';

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    categories: (_, __, { viewer, service }) => service.rootCategories(viewer),
    product: async (_, { id }, { viewer, service, loaders }) => service.visibleProduct(viewer, await loaders.product.load(id)),
    products: (_, args, { viewer, browse }) => browse.listProducts(viewer, args),
    productFacets: (_, args, { viewer, browse }) => browse.productFacets(viewer, args),
    flashSales: (_, args, { viewer, inventory, loaders }) => inventory.listFlashSales(viewer, loaders, args),
    flashSale: (_, { id }, { viewer, inventory, loaders }) => inventory.flashSale(viewer, loaders, id),
    stockLedger: (_, { skuId, ...page }, { viewer, inventory }) => inventory.stockLedger(viewer, skuId, page),
  },
  Mutation: {
    createCategory: (_, { input }, { viewer, service }) => service.createCategory(viewer, input),
    createProduct: (_, { input }, { viewer, service }) => service.createProduct(viewer, input),
    setProductStatus: (_, { input }, { viewer, service }) => service.setProductStatus(viewer, input),
    updateProduct: async (_, { input }, { viewer, service }) => ({ product: await service.updateProduct(viewer, input) }),
    updateSku: async (_, { input }, { viewer, service }) => ({ sku: await service.updateSku(viewer, input) }),
    adjustStock: async (_, { input }, { viewer, inventory, loaders }) => {
      const result = await inventory.adjustStock(viewer, input);
      loaders.stockHead.clear(input.skuId);
      return result;
    },
    createFlashSale: async (_, { input }, { viewer, inventory, loaders }) => {
      const flash = await inventory.createFlashSale(viewer, input);
      loaders.stockHead.clear(input.skuId);
      const flashSale = await inventory.flashView(loaders, flash);
      if (!flashSale) throw new Error('flash sale without its SKU');
      return { flashSale };
    },
  },
  Category: {
    id: (c) => c._id.toHexString(),
    parent: (c, _, { loaders }) => (c.parentId ? loaders.category.load(c.parentId.toHexString()) : null),
    children: (c, _, { loaders }) => loaders.childrenOf.load(c._id.toHexString()),
  },
  Product: {
    __resolveReference: async (ref, { viewer, service, loaders }) => service.visibleProduct(viewer, await loaders.product.load(ref.id)),
    id: (p) => p._id.toHexString(),
    category: (p, _, { loaders }) => (p.categoryId ? loaders.category.load(p.categoryId.toHexString()) : null),
    price: async (p, _, { service, loaders }) => service.lowestPrice(await loaders.skusByProduct.load(p._id.toHexString())),
    priceRange: async (p, _, { service, loaders }) => service.priceRange(await loaders.skusByProduct.load(p._id.toHexString())),
    salesCount: (p) => p.salesCount ?? 0,
    images: (p) => p.images ?? [],
    videoUrl: (p) => p.videoUrl ?? null,
    parameters: (p) => p.parameters ?? [],
    afterSalesPolicy: (p) => p.afterSalesPolicy ?? '',
    skus: (p, _, { loaders }) => loaders.skusByProduct.load(p._id.toHexString()),
    inStock: async (p, _, { inventory, loaders }) => inventory.inStock(loaders, await loaders.skusByProduct.load(p._id.toHexString())),
  },
  Sku: {
    __resolveReference: (ref, { viewer, service, loaders }) => service.visibleSku(viewer, loaders, ref.id),
    id: (s) => s._id.toHexString(),
    product: (s, _, { service, loaders }) => service.productOf(loaders, s),
    price: (s) => money(s.price),
    marketPrice: (s) => (s.marketPrice == null ? null : money(s.marketPrice)),
    memberPrice: (s) => (s.memberPrice == null ? null : money(s.memberPrice)),
    stock: (s, _, { viewer, inventory, loaders }) => inventory.stockOf(viewer, loaders, s),
    inStock: (s, _, { inventory, loaders }) => inventory.inStock(loaders, [s]),
    flashSale: (s, _, { inventory, loaders }) => inventory.flashSaleOfSku(loaders, s),
  },
};
