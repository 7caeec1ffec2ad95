import DataLoader from 'dataloader';
import {
  afterTimeCursor,
  AppError,
  claimOnce,
  decodeTimeCursor,
  findByIds,
  notFound,
  pageSize,
  replaceById,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  timePage,
  type Viewer,
} from '@flywheel/service-kit';
import type { ProductDoc } from '../model';
import type { ProductLoaders, ProductService } from '../products/service';
import { engagementId, type EngagementModels, type FavouriteDoc, type ProductViewDoc } from './model';

/** Favourites a member may keep; the next add is refused (CONFLICT) until one is removed. */
export const MAX_FAVOURITES = 500;
/** Products kept in a member's recently viewed history; older ones are dropped. */
export const MAX_VIEWED = 100;
export const MAX_PAGE = 50;

export interface ListArgs {
  memberId?: string | null;
  first?: number | null;
  after?: string | null;
}

export interface EngagementDeps {
  models: EngagementModels;
  products: Pick<ProductService, 'visibleProduct'>;
  now: () => Date;
}

/**
 * Favourites (收藏) and recently viewed products (足迹), per member. Both are one document per
 * (member, product) under `_id` = `<memberId>:<productId>`: the unique key dedupes concurrent adds
 * and repeated views without a read-modify-write, and every list is read by the member's index,
 * never across members. The product itself is never copied: it is resolved through the request's
 * loaders, so its status, price and stock are the current ones.
 */
export function createEngagementService({ models, products, now }: EngagementDeps) {
  const memberOf = (viewer: Viewer | null) => requireRole(viewer, 'CUSTOMER').id;

  /** Whose list: the viewer's own, or with `memberId` that member's (themself or staff). */
  function ownerOf(viewer: Viewer | null, memberId: string | null | undefined): string {
    if (memberId == null) return memberOf(viewer);
    const id = requireObjectId(memberId, 'memberId');
    requireSelfOrStaff(viewer, id);
    return id;
  }

  /** The product as the viewer may see it: unknown (or a draft, for a customer) is NOT_FOUND. */
  async function visibleProductId(viewer: Viewer | null, loaders: ProductLoaders, productId: string): Promise<string> {
    const id = requireObjectId(productId, 'productId');
    const product = products.visibleProduct(viewer, await loaders.product.load(id));
    if (!product) throw notFound('Product');
    return product._id.toHexString();
  }

  const favouritesFull = () =>
    new AppError('CONFLICT', `At most ${MAX_FAVOURITES} favourites: remove one to add another`, { limit: MAX_FAVOURITES });

  /** Drops a member's views beyond the newest MAX_VIEWED (a few at a time: each new view adds one). */
  async function pruneViews(memberId: string): Promise<void> {
    const beyond = await models.ProductView.find({ memberId }, { _id: 1, at: 1 })
      .sort({ at: -1, _id: -1 })
      .skip(MAX_VIEWED)
      .limit(20)
      .lean<Pick<ProductViewDoc, '_id' | 'at'>[]>();
    // `at` in the filter spares a product viewed again meanwhile (it moved to the top). Were it
    // lost anyway (FerretDB does not apply filters atomically), only a history line would go.
    for (const v of beyond) await models.ProductView.deleteOne({ _id: v._id, at: v.at });
  }

  return {
    /**
     * Adds a favourite, idempotently: the insert of `<memberId>:<productId>` is the claim, so a
     * repeat (or a concurrent twin) finds the first one and keeps its time. The bound is checked
     * after the insert, by counting: a new favourite stays only if the member has at most
     * MAX_FAVOURITES counting it, else it is deleted and refused. Of racing adds the one inserted
     * last always sees all the others, so the count can never settle above the bound (racing adds
     * at the bound may all be refused: the safe side).
     */
    async addFavourite(viewer: Viewer | null, loaders: ProductLoaders, productId: string): Promise<FavouriteDoc> {
      const memberId = memberOf(viewer);
      const pid = await visibleProductId(viewer, loaders, productId);
      const doc: FavouriteDoc = { _id: engagementId(memberId, pid), memberId, productId: pid, at: now() };
      if (!(await claimOnce(models.Favourite, { ...doc }))) return (await models.Favourite.findById(doc._id).lean<FavouriteDoc>()) ?? doc;
      if ((await models.Favourite.countDocuments({ memberId })) > MAX_FAVOURITES) {
        await models.Favourite.deleteOne({ _id: doc._id });
        throw favouritesFull();
      }
      return doc;
    },

    /** Removes a favourite; removing one that is not there is not an error (`removed: false`). */
    async removeFavourite(viewer: Viewer | null, productId: string): Promise<boolean> {
      const memberId = memberOf(viewer);
      const pid = requireObjectId(productId, 'productId');
      const { deletedCount } = await models.Favourite.deleteOne({ _id: engagementId(memberId, pid) });
      return deletedCount > 0;
    },

    /**
     * A member's favourites, newest first. A favourite whose product no longer exists is still
     * listed (with `product: null`), so pages stay the size asked and the member can remove it.
     */
    async favourites(viewer: Viewer | null, args: ListArgs) {
      const memberId = ownerOf(viewer, args.memberId);
      const first = pageSize(args.first, MAX_PAGE);
      const after = decodeTimeCursor(args.after);
      const [rows, totalCount] = await Promise.all([
        models.Favourite.find({ memberId, ...afterTimeCursor(after) })
          .sort({ at: -1, _id: -1 })
          .limit(first + 1)
          .lean<FavouriteDoc[]>(),
        models.Favourite.countDocuments({ memberId }),
      ]);
      return { ...timePage(rows, first, (r) => r), totalCount };
    },

    /** Per request: whether the viewer has favourited each product (false when not a member). */
    favouritedLoader(viewer: Viewer | null) {
      const memberId = viewer?.roles.includes('CUSTOMER') ? viewer.id : null;
      return new DataLoader<string, boolean>(async (productIds) => {
        if (!memberId) return productIds.map(() => false);
        const found = await findByIds<FavouriteDoc>(
          models.Favourite,
          productIds.map((p) => engagementId(memberId, p)),
          { _id: 1 },
        );
        const ids = new Set(found.map((f) => f._id));
        return productIds.map((p) => ids.has(engagementId(memberId, p)));
      });
    },

    /**
     * Records that the member viewed a product (the product page calls it): a first view inserts
     * `<memberId>:<productId>`, a repeat moves its time to now, so a product is listed once, at
     * the top. Concurrent views from two tabs each land: different products are different
     * documents, and the same product's twin writes only race for its time.
     */
    async recordView(viewer: Viewer | null, loaders: ProductLoaders, productId: string): Promise<ProductViewDoc> {
      const memberId = memberOf(viewer);
      const pid = await visibleProductId(viewer, loaders, productId);
      const doc: ProductViewDoc = { _id: engagementId(memberId, pid), memberId, productId: pid, at: now() };
      if (await claimOnce(models.ProductView, { ...doc })) await pruneViews(memberId);
      else await replaceById(models.ProductView, doc);
      return doc;
    },

    /**
     * The newest MAX_VIEWED products the member viewed, newest first (anything older is hidden
     * until pruned). A product taken off the shelf since is listed with its current status; one
     * that no longer exists is listed with `product: null`.
     */
    async recentlyViewed(viewer: Viewer | null, args: ListArgs) {
      const memberId = ownerOf(viewer, args.memberId);
      const first = pageSize(args.first, MAX_PAGE);
      const after = decodeTimeCursor(args.after);
      const kept = await models.ProductView.find({ memberId }).sort({ at: -1, _id: -1 }).limit(MAX_VIEWED).lean<ProductViewDoc[]>();
      // Paged in memory over the kept ones: the cap is a property of the list, not of the store.
      const rest = after ? kept.filter((v) => v.at < after.at || (v.at.getTime() === after.at.getTime() && v._id < after.id)) : kept;
      return timePage(rest.slice(0, first + 1), first, (v) => v);
    },

    async removeView(viewer: Viewer | null, productId: string): Promise<boolean> {
      const memberId = memberOf(viewer);
      const pid = requireObjectId(productId, 'productId');
      const { deletedCount } = await models.ProductView.deleteOne({ _id: engagementId(memberId, pid) });
      return deletedCount > 0;
    },

    /** Empties the member's recently viewed history; returns how many entries went. */
    async clearViews(viewer: Viewer | null): Promise<number> {
      const memberId = memberOf(viewer);
      return (await models.ProductView.deleteMany({ memberId })).deletedCount;
    },

    /** The product of a favourite or view as the viewer may see it; null when it no longer exists. */
    async productOf(viewer: Viewer | null, loaders: ProductLoaders, productId: string): Promise<ProductDoc | null> {
      return products.visibleProduct(viewer, await loaders.product.load(productId));
    },

    /**
     * Erasure (`membership.member.erased`): the member's favourites and views go. Deletes by the
     * member, so a redelivery deletes nothing more: idempotent by itself.
     */
    async eraseMember(memberId: string): Promise<{ favourites: number; views: number }> {
      const [f, v] = await Promise.all([models.Favourite.deleteMany({ memberId }), models.ProductView.deleteMany({ memberId })]);
      return { favourites: f.deletedCount, views: v.deletedCount };
    },
  };
}

export type EngagementService = ReturnType<typeof createEngagementService>;
