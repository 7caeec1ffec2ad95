import { Schema, type Connection } from 'mongoose';

/**
 * A member's favourite (收藏): `_id` = `<memberId>:<productId>` is the claim, so adding twice —
 * or ten times at once — leaves one document, and `Product.favourited` is one `_id` look-up.
 */
export interface FavouriteDoc {
  _id: string;
  memberId: string;
  productId: string;
  at: Date;
}

/**
 * One product in a member's recently viewed history (足迹): `_id` = `<memberId>:<productId>`, so a
 * product is kept once and viewing it again only moves its `at` (a projection: last writer wins).
 */
export interface ProductViewDoc {
  _id: string;
  memberId: string;
  productId: string;
  at: Date;
}

export const engagementId = (memberId: string, productId: string) => `${memberId}:${productId}`;

export function createEngagementModels(db: Connection) {
  const favouriteSchema = new Schema<FavouriteDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      productId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  // Every read is bounded by one member: their page (newest first) and their count.
  favouriteSchema.index({ memberId: 1, at: -1, _id: -1 });
  const viewSchema = new Schema<ProductViewDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      productId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  viewSchema.index({ memberId: 1, at: -1, _id: -1 });
  return {
    Favourite: db.model<FavouriteDoc>('Favourite', favouriteSchema, 'favourites'),
    ProductView: db.model<ProductViewDoc>('ProductView', viewSchema, 'product_views'),
  };
}

export type EngagementModels = ReturnType<typeof createEngagementModels>;
