import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';
import type { StockKind, StockTotals } from './ledger';

// DESIGN.md §3: nothing here is ever updated in place. Stock moves are ledger appends; every
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

export interface ReservationLineDoc {
  skuId: string;
  quantity: number;
  flashSaleId?: string;
  /** The ledger account the line draws on: the SKU, or the flash sale's quota. */
  account: string;
}

/** The claim of a reservation: one per order id, inserted before any stock moves. */
export interface ReservationDoc {
  _id: string;
  memberId: string;
  lines: ReservationLineDoc[];
  at: Date;
  /** After this the expiry sweeper releases it unless it was paid or released before (or refused). */
  expiresAt: Date;
}

/** The first answer to a reservation (inserted once by its claimant; replays repeat it). */
export interface ReservationResultDoc {
  _id: string;
  ok: boolean;
  reservedAt?: Date;
  error?: { code: string; message: string; extensions?: Record<string, unknown> };
  at: Date;
}

export type FinalOutcome = 'RELEASED' | 'SOLD';
export type FinalCause = 'RELEASE_REQUEST' | 'CANCELLED' | 'EXPIRED' | 'PAID' | 'REFUSED';

/**
 * `<orderId>:final`: a reservation is released or sold exactly once. Payment, cancellation, a
 * release request, a failed reservation and the expiry sweeper all race to insert it; the first
 * wins and only the winner's outcome is ever applied.
 */
export interface ReservationFinalDoc {
  _id: string;
  orderId: string;
  outcome: FinalOutcome;
  cause: FinalCause;
  eventId?: string;
  at: Date;
}

export interface FlashSaleDoc {
  _id: Types.ObjectId;
  /** Unique: the creating staff member's idempotency key (hashed), or a random value. */
  key: string;
  skuId: Types.ObjectId;
  productId: Types.ObjectId;
  /** Integer fen. */
  flashPrice: number;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  createdBy: string;
  createdAt: Date;
}

/** One unit of a member's per-flash-sale limit: `<flashSaleId>:<memberId>:<n>`, n = 1..limit. */
export interface FlashSlotDoc {
  _id: string;
  flashSaleId: string;
  memberId: string;
  n: number;
  orderId: string;
  at: Date;
}

/**
 * A flash sale whose unsold quota must go back to its SKU at `dueAt` (its end). Written before
 * the quota is carved out, deleted once nothing is left to return, so a crash in between leaves
 * it for the sweeper.
 */
export interface FlashSettlementDoc {
  _id: string;
  dueAt: Date;
}

/**
 * How far the expiry sweeper has read reservations (by `expiresAt`). Every replica's sweeper
 * writes it; a lost update only makes the next pass re-read a little, which is harmless.
 */
export interface SweepMarkDoc {
  _id: string;
  until: Date;
}

export type IncidentKind = 'PAID_AFTER_RELEASE' | 'PAID_WITHOUT_RESERVATION' | 'RESTOCK_UNKNOWN_SKU';

/** Something staff must look at (e.g. a payment for stock already released). One per cause. */
export interface StockIncidentDoc {
  _id: string;
  kind: IncidentKind;
  orderId: string;
  eventId: string;
  detail: Record<string, unknown>;
  at: Date;
}

export function createInventoryModels(db: Connection) {
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

  const lineSchema = new Schema<ReservationLineDoc>(
    { skuId: String, quantity: Number, flashSaleId: String, account: String },
    { _id: false },
  );
  const reservationSchema = new Schema<ReservationDoc>(
    { _id: String, memberId: String, lines: [lineSchema], at: Date, expiresAt: Date },
    { versionKey: false },
  );
  reservationSchema.index({ expiresAt: 1, _id: 1 });

  const resultSchema = new Schema<ReservationResultDoc>(
    { _id: String, ok: Boolean, reservedAt: Date, error: Schema.Types.Mixed, at: Date },
    { versionKey: false },
  );

  const finalSchema = new Schema<ReservationFinalDoc>(
    { _id: String, orderId: String, outcome: String, cause: String, eventId: String, at: Date },
    { versionKey: false },
  );

  const flashSchema = new Schema<FlashSaleDoc>(
    {
      key: { type: String, required: true, unique: true },
      skuId: { type: Schema.Types.ObjectId, required: true },
      productId: { type: Schema.Types.ObjectId, required: true },
      flashPrice: { type: Number, required: true },
      quota: { type: Number, required: true },
      perMemberLimit: { type: Number, required: true },
      startsAt: { type: Date, required: true },
      endsAt: { type: Date, required: true },
      createdBy: String,
      createdAt: Date,
    },
    { versionKey: false },
  );
  flashSchema.index({ skuId: 1, endsAt: 1 });
  flashSchema.index({ endsAt: 1, _id: -1 });
  flashSchema.index({ startsAt: 1, _id: -1 });

  const slotSchema = new Schema<FlashSlotDoc>(
    { _id: String, flashSaleId: String, memberId: String, n: Number, orderId: String, at: Date },
    { versionKey: false },
  );
  slotSchema.index({ flashSaleId: 1, memberId: 1 });
  slotSchema.index({ orderId: 1 });

  const settlementSchema = new Schema<FlashSettlementDoc>({ _id: String, dueAt: Date }, { versionKey: false });
  settlementSchema.index({ dueAt: 1 });

  const incidentSchema = new Schema<StockIncidentDoc>(
    { _id: String, kind: String, orderId: String, eventId: String, detail: Schema.Types.Mixed, at: Date },
    { versionKey: false },
  );

  return {
    StockEntry: db.model<StockEntryDoc>('StockEntry', entrySchema, 'stock_entries'),
    Reservation: db.model<ReservationDoc>('Reservation', reservationSchema, 'reservations'),
    ReservationResult: db.model<ReservationResultDoc>('ReservationResult', resultSchema, 'reservation_results'),
    ReservationFinal: db.model<ReservationFinalDoc>('ReservationFinal', finalSchema, 'reservation_finals'),
    FlashSale: db.model<FlashSaleDoc>('FlashSale', flashSchema, 'flash_sales'),
    FlashSlot: db.model<FlashSlotDoc>('FlashSlot', slotSchema, 'flash_slots'),
    FlashSettlement: db.model<FlashSettlementDoc>('FlashSettlement', settlementSchema, 'flash_settlements'),
    SweepMark: db.model<SweepMarkDoc>(
      'SweepMark',
      new Schema<SweepMarkDoc>({ _id: String, until: Date }, { versionKey: false }),
      'stock_sweep_marks',
    ),
    StockIncident: db.model<StockIncidentDoc>('StockIncident', incidentSchema, 'stock_incidents'),
  };
}
export type InventoryModels = ReturnType<typeof createInventoryModels>;
