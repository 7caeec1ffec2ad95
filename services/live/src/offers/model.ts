import { Schema, type Connection } from 'mongoose';

export type LiveOfferKind = 'COUPON' | 'FLASH_DEAL';

/**
 * An offer of a room: a live-exclusive coupon (a membership template, a quantity and a per-viewer
 * limit) or a flash deal (a catalog flash sale shown in the room; catalog sells it through its
 * own flash gate). Immutable but for the one-way `endedAt` flag (concurrent ends write the same).
 */
export type LiveOfferDoc = {
  _id: string;
  roomId: string;
  createdBy: string;
  createdAt: Date;
  /** When the offer applies; null: from creation, or until the room or offer ends. */
  startsAt: Date | null;
  endsAt: Date | null;
  endedAt?: Date | null;
} & (
  | { kind: 'COUPON'; templateId: string; name: string; quantity: number; perViewerLimit: number }
  | { kind: 'FLASH_DEAL'; flashSaleId: string; skuId: string; productId: string }
);

/**
 * The records of coupon claims, each a unique insert (docs/concurrency.md):
 * - VIEWER `${offerId}:${memberId}:${n}`: the member's n-th claim (the claim id);
 * - (units are in `live_offer_units`, below);
 * - VOID `void:${claimId}`: the claim ended without a coupon (sold out, or refused by
 *   membership); it no longer counts against the member's limit, and its unit (if it took one,
 *   `unit`) is given back by raising the offer's cap by one;
 * - GRANT `grant:${claimId}`: the coupon membership granted for it.
 * `state` on a VIEWER record is a projection (PENDING until a GRANT or VOID exists) for the sweep
 * and the lists; decisions read the records.
 */
export type OfferClaimDoc = { _id: string; offerId: string; claimId: string; at: Date } & (
  | { kind: 'VIEWER'; memberId: string; n: number; state: 'PENDING' | 'GRANTED' | 'VOID' }
  | { kind: 'VOID'; unit: number | null; reason: string }
  | { kind: 'GRANT'; couponId: string }
);

/**
 * Unit k of a coupon offer's quantity (`_id` = `${offerId}:q:${k}`), taken by one claim: unique on
 * the id (one claim per unit) and on `claimId` (one unit per claim, even when two requests settle
 * the same claim at once on two replicas).
 */
export interface OfferUnitDoc {
  _id: string;
  offerId: string;
  claimId: string;
  unit: number;
  at: Date;
}

export function createOfferModels(db: Connection) {
  const offerSchema = new Schema(
    {
      _id: String,
      roomId: { type: String, required: true },
      kind: { type: String, required: true },
      createdBy: { type: String, required: true },
      createdAt: { type: Date, required: true },
      startsAt: { type: Date, default: null },
      endsAt: { type: Date, default: null },
      endedAt: { type: Date, default: null },
      templateId: String,
      name: String,
      quantity: Number,
      perViewerLimit: Number,
      flashSaleId: String,
      skuId: String,
      productId: String,
    },
    { versionKey: false },
  );
  offerSchema.index({ roomId: 1, createdAt: -1 });

  const claimSchema = new Schema(
    {
      _id: String,
      offerId: { type: String, required: true },
      claimId: { type: String, required: true },
      kind: { type: String, required: true },
      at: { type: Date, required: true },
      memberId: String,
      n: Number,
      state: String,
      unit: { type: Number, default: undefined },
      reason: String,
      couponId: String,
    },
    { versionKey: false },
  );
  claimSchema.index({ offerId: 1, kind: 1 });
  claimSchema.index({ claimId: 1 });
  claimSchema.index({ kind: 1, state: 1, at: 1 });

  const unitSchema = new Schema<OfferUnitDoc>(
    {
      _id: String,
      offerId: { type: String, required: true },
      claimId: { type: String, required: true },
      unit: { type: Number, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  unitSchema.index({ claimId: 1 }, { unique: true });
  unitSchema.index({ offerId: 1 });

  return {
    OfferUnit: db.model<OfferUnitDoc>('LiveOfferUnit', unitSchema, 'live_offer_units'),
    LiveOffer: db.model<LiveOfferDoc>('LiveOffer', offerSchema, 'live_offers'),
    OfferClaim: db.model<OfferClaimDoc>('LiveOfferClaim', claimSchema, 'live_offer_claims'),
  };
}
export type OfferModels = ReturnType<typeof createOfferModels>;
