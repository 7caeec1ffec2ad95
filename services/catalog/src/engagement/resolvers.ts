import type DataLoader from 'dataloader';
import type { Resolvers } from '../__generated__/resolvers';
import type { Context } from '../service';
import type { EngagementService } from './service';

export function engagementResolvers(engagement: EngagementService): Resolvers {
  // One batch of `_id` look-ups per request for every Product.favourited on a page.
  const favourited = new WeakMap<Context, DataLoader<string, boolean>>();
  const favouritedIn = (ctx: Context) => {
    let loader = favourited.get(ctx);
    if (!loader) favourited.set(ctx, (loader = engagement.favouritedLoader(ctx.viewer)));
    return loader;
  };
  return {
    Query: {
      favouriteProducts: (_, args, { viewer }) => engagement.favourites(viewer, args),
      recentlyViewedProducts: (_, args, { viewer }) => engagement.recentlyViewed(viewer, args),
    },
    Mutation: {
      addFavouriteProduct: async (_, { input }, ctx) => {
        const favourite = await engagement.addFavourite(ctx.viewer, ctx.loaders, input.productId);
        favouritedIn(ctx).clear(favourite.productId);
        return { favourite };
      },
      removeFavouriteProduct: async (_, { input }, ctx) => {
        const removed = await engagement.removeFavourite(ctx.viewer, input.productId);
        favouritedIn(ctx).clear(input.productId);
        return { productId: input.productId, removed };
      },
      recordProductView: async (_, { input }, { viewer, loaders }) => ({
        view: await engagement.recordView(viewer, loaders, input.productId),
      }),
      removeRecentlyViewedProduct: async (_, { input }, { viewer }) => ({
        productId: input.productId,
        removed: await engagement.removeView(viewer, input.productId),
      }),
      clearRecentlyViewed: async (_, __, { viewer }) => ({ cleared: await engagement.clearViews(viewer) }),
    },
    Product: {
      favourited: (p, _, ctx) => favouritedIn(ctx).load(p._id.toHexString()),
    },
    FavouriteProduct: {
      product: (f, _, { viewer, loaders }) => engagement.productOf(viewer, loaders, f.productId),
      favouritedAt: (f) => f.at,
    },
    ViewedProduct: {
      product: (v, _, { viewer, loaders }) => engagement.productOf(viewer, loaders, v.productId),
      viewedAt: (v) => v.at,
    },
  };
}
