import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';
import { createEngagementModels } from './engagement/model';
import { createFlashSaleModels } from './flash-sales/model';
import { createReservationModels } from './reservations/model';
import { createStockModels } from './stock/model';
import { createSweeperModels } from './sweeper/model';

export type ProductStatus = 'DRAFT' | 'ON_SALE' | 'OFF_SHELF';

export interface CategoryDoc {
  _id: Types.ObjectId;
  name: string;
  /** Lower-cased name: unique among siblings, so the same category cannot be created twice. */
  nameKey: string;
  parentId: Types.ObjectId | null;
  createdAt: Date;
}

export interface ProductImageDoc {
  url: string;
  alt: string;
}

/** A product parameter (商品参数), e.g. 产地: 浙江杭州. */
export interface ProductParameterDoc {
  name: string;
  value: string;
}

/** What staff describe and edit (createProduct, then each ProductRevisionDoc). */
export interface ProductDescription {
  name: string;
  description: string;
  categoryId: Types.ObjectId | null;
  /** Extra search terms; the keyword search also matches the name. */
  keywords: string[];
  /** In display order. */
  images: ProductImageDoc[];
  videoUrl: string | null;
  parameters: ProductParameterDoc[];
  afterSalesPolicy: string;
}

/**
 * Fields kept on the product only so that one `find` can filter and sort the shop's listings
 * (FerretDB has no $lookup). Each is recomputed from its source, never incremented, so any
 * recomputation repairs whatever a lost or raced write left behind (see browse/projection.ts):
 * prices and specs from the SKUs, stock and sales from the stock ledger heads.
 */
export interface ProductListing {
  /** Integer fen: the cheapest SKU's price (what price filters and sorts use). */
  minPrice: number;
  /** Integer fen: the dearest SKU's price. */
  maxPrice: number;
  /** `name=value` of every SKU's spec values, deduplicated (arrays of scalars: FerretDB-safe). */
  specValues: string[];
  /** Regular stock available over all SKUs. Eventually correct; checkout never relies on it. */
  available: number;
  inStock: boolean;
  /** Units sold over all SKUs, from regular stock and from flash quotas (gross of refunds). */
  salesCount: number;
}

export interface ProductDoc extends ProductDescription, ProductListing {
  _id: Types.ObjectId;
  /** Projection of the latest status entry (see ProductStatusEntryDoc). */
  status: ProductStatus;
  createdAt: Date;
  /** The creation event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
}

/**
 * Append-only history of staff edits to a product's description (`accountId` = product id):
 * each entry holds the whole description after the edit, and the product's descriptive fields
 * are projected from the head. An edit is never a plain $set on the product because FerretDB
 * writes whole documents back, so a concurrent listing recomputation (after any stock move)
 * could silently undo it; as a ledger entry it is restored by the next projection.
 */
export interface ProductRevisionDoc extends LedgerEntry, ProductDescription {
  by: string;
  at: Date;
}

export interface SpecValueDoc {
  name: string;
  value: string;
}

export interface SkuDoc {
  _id: Types.ObjectId;
  productId: Types.ObjectId;
  name: string;
  specs: SpecValueDoc[];
  /** Integer fen: what quotes charge (orders keep the price they were quoted). */
  price: number;
  /** Integer fen, ≥ price: the struck-through reference price (划线价). */
  marketPrice?: number | null;
  /** Integer fen, ≤ price: for members (applied by membership pricing, not yet by quotes). */
  memberPrice?: number | null;
  /**
   * Stock as entered at creation. Only a record: the SKU's stock ledger (its INITIAL entry and
   * every move since, see stock/) is the truth.
   */
  initialStock: number;
  /** `catalog.stock.low` is published when available stock falls to or below this. */
  lowStockThreshold: number;
  /** Grams per unit, for weight-based shipping fees; null or absent when staff did not enter one. */
  weightGrams?: number | null;
  /** Display order within the product. */
  position: number;
  createdAt: Date;
}

/**
 * Append-only history of a product's status (`accountId` = product id). Each change is claimed as
 * the next `seq`, so concurrent changes are totally ordered, and carries its event (outbox).
 */
export interface ProductStatusEntryDoc extends LedgerEntry {
  from: ProductStatus;
  to: ProductStatus;
  by: string;
  at: Date;
  outbox?: OutboxRecord;
}

export function createModels(db: Connection) {
  const categorySchema = new Schema<CategoryDoc>(
    {
      name: { type: String, required: true },
      nameKey: { type: String, required: true },
      parentId: { type: Schema.Types.ObjectId, default: null },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  categorySchema.index({ parentId: 1, nameKey: 1 }, { unique: true });

  const imageSchema = new Schema<ProductImageDoc>({ url: String, alt: String }, { _id: false });
  const parameterSchema = new Schema<ProductParameterDoc>({ name: String, value: String }, { _id: false });
  const description = {
    name: { type: String, required: true },
    description: { type: String, default: '' },
    categoryId: { type: Schema.Types.ObjectId, default: null },
    keywords: { type: [String], default: [] },
    images: { type: [imageSchema], default: [] },
    videoUrl: { type: String, default: null },
    parameters: { type: [parameterSchema], default: [] },
    afterSalesPolicy: { type: String, default: '' },
  };
  const productSchema = new Schema<ProductDoc>(
    {
      ...description,
      status: { type: String, required: true },
      minPrice: Number,
      maxPrice: Number,
      specValues: { type: [String], default: [] },
      available: Number,
      inStock: Boolean,
      salesCount: Number,
      createdAt: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  productSchema.index({ status: 1, _id: -1 });
  productSchema.index({ categoryId: 1, _id: -1 });
  // Listing sorts (browse/service.ts): PRICE_ASC and PRICE_DESC scan one index both ways.
  productSchema.index({ status: 1, minPrice: 1, _id: 1 });
  productSchema.index({ status: 1, salesCount: -1, _id: -1 });
  productSchema.index({ specValues: 1 });

  const revisionSchema = new Schema<ProductRevisionDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      ...description,
      by: String,
      at: Date,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) revisionSchema.index(idx);
  revisionSchema.index({ at: 1 });

  const skuSchema = new Schema<SkuDoc>(
    {
      productId: { type: Schema.Types.ObjectId, required: true },
      name: { type: String, required: true },
      specs: { type: [new Schema<SpecValueDoc>({ name: String, value: String }, { _id: false })], default: [] },
      price: { type: Number, required: true },
      marketPrice: { type: Number, default: null },
      memberPrice: { type: Number, default: null },
      initialStock: { type: Number, required: true },
      lowStockThreshold: { type: Number, required: true },
      weightGrams: { type: Number, default: undefined },
      position: { type: Number, required: true },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  skuSchema.index({ productId: 1, position: 1 });

  const statusEntrySchema = new Schema<ProductStatusEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      from: String,
      to: String,
      by: String,
      at: Date,
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) statusEntrySchema.index(idx);
  statusEntrySchema.index({ at: 1 });

  return {
    Category: db.model<CategoryDoc>('Category', categorySchema, 'categories'),
    Product: db.model<ProductDoc>('Product', productSchema, 'products'),
    Sku: db.model<SkuDoc>('Sku', skuSchema, 'skus'),
    ProductStatusEntry: db.model<ProductStatusEntryDoc>('ProductStatusEntry', statusEntrySchema, 'product_status_entries'),
    ProductRevision: db.model<ProductRevisionDoc>('ProductRevision', revisionSchema, 'product_revisions'),
    ...createStockModels(db),
    ...createReservationModels(db),
    ...createFlashSaleModels(db),
    ...createSweeperModels(db),
    ...createEngagementModels(db),
  };
}
export type Models = ReturnType<typeof createModels>;
