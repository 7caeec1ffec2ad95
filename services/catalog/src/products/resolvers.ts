import type { Resolvers } from '../__generated__/resolvers';
import { money } from '../money';
import type { ProductService } from './service';

export function productResolvers(products: ProductService): Resolvers {
  return {
    Query: {
      categories: (_, __, { viewer }) => products.rootCategories(viewer),
      product: async (_, { id }, { viewer, loaders }) => products.visibleProduct(viewer, await loaders.product.load(id)),
    },
    Mutation: {
      createCategory: (_, { input }, { viewer }) => products.createCategory(viewer, input),
      createProduct: (_, { input }, { viewer }) => products.createProduct(viewer, input),
      setProductStatus: (_, { input }, { viewer }) => products.setProductStatus(viewer, input),
      updateProduct: async (_, { input }, { viewer }) => ({ product: await products.updateProduct(viewer, input) }),
      updateSku: async (_, { input }, { viewer }) => ({ sku: await products.updateSku(viewer, input) }),
    },
    Category: {
      id: (c) => c._id.toHexString(),
      parent: (c, _, { loaders }) => (c.parentId ? loaders.category.load(c.parentId.toHexString()) : null),
      children: (c, _, { loaders }) => loaders.childrenOf.load(c._id.toHexString()),
    },
    Product: {
      __resolveReference: async (ref, { viewer, loaders }) => products.visibleProduct(viewer, await loaders.product.load(ref.id)),
      id: (p) => p._id.toHexString(),
      category: (p, _, { loaders }) => (p.categoryId ? loaders.category.load(p.categoryId.toHexString()) : null),
      price: async (p, _, { loaders }) => products.lowestPrice(await loaders.skusByProduct.load(p._id.toHexString())),
      priceRange: async (p, _, { loaders }) => products.priceRange(await loaders.skusByProduct.load(p._id.toHexString())),
      salesCount: (p) => p.salesCount ?? 0,
      images: (p) => p.images ?? [],
      videoUrl: (p) => p.videoUrl ?? null,
      parameters: (p) => p.parameters ?? [],
      afterSalesPolicy: (p) => p.afterSalesPolicy ?? '',
      skus: (p, _, { loaders }) => loaders.skusByProduct.load(p._id.toHexString()),
    },
    Sku: {
      __resolveReference: (ref, { viewer, loaders }) => products.visibleSku(viewer, loaders, ref.id),
      id: (s) => s._id.toHexString(),
      product: (s, _, { loaders }) => products.productOf(loaders, s),
      price: (s) => money(s.price),
      marketPrice: (s) => (s.marketPrice == null ? null : money(s.marketPrice)),
      memberPrice: (s) => (s.memberPrice == null ? null : money(s.memberPrice)),
      weightGrams: (s) => s.weightGrams ?? null,
    },
  };
}
