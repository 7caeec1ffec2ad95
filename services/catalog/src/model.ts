import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';
import { createInventoryModels } from './inventory/model';

export type ProductStatus = 'DRAFT' | 'ON_SALE' | 'OFF_SHELF';

export interface CategoryDoc {
  _id: Types.ObjectId;
  name: string;
  /** Lower-cased name: unique among siblings, so the same category cannot be created twice. */
  nameKey: string;
  parentId: Types.ObjectId | null;
  createdAt: Date;
}

export interface ProductDoc {
  _id: Types.ObjectId;
  name: string;
  description: string;
  categoryId: Types.ObjectId | null;
  /** Extra search terms; the keyword search also matches the name. */
  keywords: string[];
  /** Projection of the latest status entry (see ProductStatusEntryDoc). */
  status: ProductStatus;
  createdAt: Date;
  /** The creation event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
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
  /** Integer fen. */
  price: number;
  /**
   * Stock as entered at creation. Only a record: the SKU's stock ledger (its INITIAL entry and
   * every move since, see inventory/) is the truth.
   */
  initialStock: number;
  /** `catalog.stock.low` is published when available stock falls to or below this. */
  lowStockThreshold: number;
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

  const productSchema = new Schema<ProductDoc>(
    {
      name: { type: String, required: true },
      description: { type: String, default: '' },
      categoryId: { type: Schema.Types.ObjectId, default: null },
      keywords: { type: [String], default: [] },
      status: { type: String, required: true },
      createdAt: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  productSchema.index({ status: 1, _id: -1 });
  productSchema.index({ categoryId: 1, _id: -1 });
  productSchema.index({ 'outbox.occurredAt': 1 });

  const skuSchema = new Schema<SkuDoc>(
    {
      productId: { type: Schema.Types.ObjectId, required: true },
      name: { type: String, required: true },
      specs: { type: [new Schema<SpecValueDoc>({ name: String, value: String }, { _id: false })], default: [] },
      price: { type: Number, required: true },
      initialStock: { type: Number, required: true },
      lowStockThreshold: { type: Number, required: true },
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
  statusEntrySchema.index({ 'outbox.occurredAt': 1 });

  return {
    Category: db.model<CategoryDoc>('Category', categorySchema, 'categories'),
    Product: db.model<ProductDoc>('Product', productSchema, 'products'),
    Sku: db.model<SkuDoc>('Sku', skuSchema, 'skus'),
    ProductStatusEntry: db.model<ProductStatusEntryDoc>('ProductStatusEntry', statusEntrySchema, 'product_status_entries'),
    ...createInventoryModels(db),
  };
}
export type Models = ReturnType<typeof createModels>;
