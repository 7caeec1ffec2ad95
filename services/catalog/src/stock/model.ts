import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';
import type { StockKind, StockTotals } from './ledger';

// docs/concurrency.md: nothing here is ever updated in place. Stock moves are ledger appends; every
// at-most-once decision (a reservation, its release-or-sale, a member's flash slot) is a unique
// insert; work lists are inserted and deleted.

/**
 * One move of one stock account (`accountId` = the SKU id, or `flash:<flashSaleId>` for a flash
 * sale's quota), carrying the account's totals after the move (see ledger.ts).
 */
export interface StockEntryDoc extends LedgerEntry, StockTotals {
  kind: StockKind;
  /** Units moved (positive); for ADJUST the signed delta staff entered. */
  qty: number;
  /**
   * What this entry does, unique across the collection (`<orderId>:RELEASE:<account>`,
   * `<refundId>:RESTOCK:<skuId>`, …; the entry id for moves without a natural key): re-running a
   * half-finished step can never apply it twice.
   */
  op: string;
  orderId?: string;
  flashSaleId?: string;
  refundId?: string;
  reason?: string;
  /** Staff id for ADJUST and flash allocation. */
  by?: string;
  at: Date;
  /** `catalog.stock.low` when this move crossed the SKU's threshold (outbox). */
  outbox?: OutboxRecord;
}

export function createStockModels(db: Connection) {
  const entrySchema = new Schema<StockEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      kind: { type: String, required: true },
      qty: { type: Number, required: true },
      op: { type: String, required: true },
      orderId: String,
      flashSaleId: String,
      refundId: String,
      reason: String,
      by: String,
      at: { type: Date, required: true },
      onHand: { type: Number, required: true },
      reserved: { type: Number, required: true },
      sold: { type: Number, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) entrySchema.index(idx);
  entrySchema.index({ op: 1 }, { unique: true });
  // The listing repair pass reads which accounts moved recently (browse/projection.ts).
  entrySchema.index({ at: 1 });

  return { StockEntry: db.model<StockEntryDoc>('StockEntry', entrySchema, 'stock_entries') };
}
