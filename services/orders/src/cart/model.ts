import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';
import type { PriceKind } from '../types';

/**
 * One line of a member's cart, one document per (member, SKU) under a unique id: two concurrent
 * adds of different SKUs each insert their own line, so neither is lost. Immutable once
 * inserted; its quantity lives in the line's ledger.
 */
export interface CartLineDoc {
  /** Hash of (member, SKU). */
  _id: string;
  memberId: string;
  skuId: string;
  /** From the catalog's quote when first added: the line shows its product even once the SKU is gone. */
  productId: string;
  createdAt: Date;
}

export type CartOp = 'ADD' | 'SET' | 'REMOVE' | 'CHECKOUT';

/**
 * The line's quantity over time, append-only (accountId = the line's id): concurrent adds of the
 * same SKU each append `head + n`, and a lost race re-reads the head, so adds are summed exactly
 * without `$inc` (docs/concurrency.md). The head is the line.
 */
export interface CartEntryDoc extends LedgerEntry {
  memberId: string;
  skuId: string;
  /** The line's quantity after this entry; 0 means not in the cart. */
  quantity: number;
  /** Integer fen: the unit price the member saw when they last added or changed the line. */
  unitPrice: number;
  priceKind: PriceKind;
  op: CartOp;
  /** The checkout that took these units (CHECKOUT only). */
  checkoutId?: string;
  at: Date;
}

export function createCartModels(db: Connection) {
  const lineSchema = new Schema<CartLineDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      skuId: { type: String, required: true },
      productId: { type: String, required: true },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  lineSchema.index({ memberId: 1, createdAt: 1 });

  const entrySchema = new Schema<CartEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      memberId: { type: String, required: true },
      skuId: { type: String, required: true },
      quantity: { type: Number, required: true },
      unitPrice: { type: Number, required: true },
      priceKind: { type: String, required: true },
      op: { type: String, required: true },
      checkoutId: { type: String },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) entrySchema.index(idx);

  return {
    CartLine: db.model<CartLineDoc>('CartLine', lineSchema, 'cart_lines'),
    CartEntry: db.model<CartEntryDoc>('CartEntry', entrySchema, 'cart_entries'),
  };
}
export type CartModels = ReturnType<typeof createCartModels>;
