import { Schema, type Connection } from 'mongoose';

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

export function createReservationModels(db: Connection) {
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
  const incidentSchema = new Schema<StockIncidentDoc>(
    { _id: String, kind: String, orderId: String, eventId: String, detail: Schema.Types.Mixed, at: Date },
    { versionKey: false },
  );

  return {
    Reservation: db.model<ReservationDoc>('Reservation', reservationSchema, 'reservations'),
    ReservationResult: db.model<ReservationResultDoc>('ReservationResult', resultSchema, 'reservation_results'),
    ReservationFinal: db.model<ReservationFinalDoc>('ReservationFinal', finalSchema, 'reservation_finals'),
    StockIncident: db.model<StockIncidentDoc>('StockIncident', incidentSchema, 'stock_incidents'),
  };
}
