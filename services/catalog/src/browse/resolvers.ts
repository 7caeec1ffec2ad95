import type { Resolvers } from '../__generated__/resolvers';
import type { BrowseService } from './service';

export function browseResolvers(browse: BrowseService): Resolvers {
  return {
    Query: {
      products: (_, args, { viewer }) => browse.listProducts(viewer, args),
      productFacets: (_, args, { viewer }) => browse.productFacets(viewer, args),
    },
  };
}
