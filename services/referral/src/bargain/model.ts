import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

/**
 * A staff bargain offer (砍价): one SKU from `startPrice` down to `floorPrice` (fen) in exactly
 * `helpersNeeded` cuts. `_id` is derived from the staff member's idempotency key (or a fresh
 * ObjectId), so a replayed create lands on the first offer. Written once, never updated.
 */
export interface BargainOfferDoc {
  _id: string;
  skuId: string;
  productId: string;
  name: string;
  startPrice: number;
  floorPrice: number;
  helpersNeeded: number;
  durationHours: number;
  startsAt: Date;
  endsAt: Date;
  /** Purchases at the bargain price, at most; absent: unlimited. */
  stock?: number;
  /** Helps from one device per offer and clock hour, at most (the velocity rule). */
  deviceHelpsPerHour: number;
  createdBy: string;
  createdAt: Date;
}

/**
 * A member's bargain: entry `seq` of the member's start ledger `offerId:memberId` (accountId), its
 * `_id` derived from both (24 hex digits), so two concurrent starts cannot both take a seq: the
 * second finds the first as the newest. `keyHash`
 * (unique) is the member's idempotency key. `seed` decides every cut (`cuts.ts`). `status` is a
 * projection (the sweep and the paid handler set it for lists); reads derive it from the claims.
 */
export interface BargainDoc extends LedgerEntry {
  offerId: string;
  memberId: string;
  skuId: string;
  keyHash: string;
  seed: string;
  startPrice: number;
  floorPrice: number;
  helpersNeeded: number;
  expiresAt: Date;
  createdAt: Date;
  status: BargainStatus;
}
export type BargainStatus = 'OPEN' | 'FLOOR_REACHED' | 'BOUGHT' | 'EXPIRED';

/**
 * One helper's cut. Two unique keys are the claims: `_id` = `bargainId:helperId` (once per helper)
 * and `slot` = `bargainId:k` with k in 1..helpersNeeded (the k-th cut, taken by exactly one helper).
 * Never deleted, so slots fill 1..k without gaps and the help count is the current price.
 */
export interface BargainHelpDoc {
  _id: string;
  bargainId: string;
  offerId: string;
  helperId: string;
  deviceId: string;
  slot: string;
  k: number;
  amount: number;
  at: Date;
}

/** A device's help within an offer's clock hour: `_id` = `offerId:deviceId:hour:n`, n ≤ the offer's limit. */
export interface DeviceSlotDoc {
  _id: string;
  offerId: string;
  deviceId: string;
  at: Date;
}

/**
 * The bargain's one purchase, held by a checkout: `_id` = bargainId (once per bargain) and `slot`
 * (unique) = `offerId:n`, n ≤ the offer's stock (or the bargain id when unlimited). Released by
 * deleting it, unless its order was paid (then `bargain_bought` holds the same bargain id).
 */
export interface BargainPurchaseDoc {
  _id: string;
  checkoutId: string;
  offerId: string;
  memberId: string;
  slot: string;
  at: Date;
}

/** The paid order of a bargain (`orders.order.paid`): `_id` = bargainId. */
export interface BargainBoughtDoc {
  _id: string;
  orderId: string;
  eventId: string;
  at: Date;
}

export function createBargainModels(db: Connection) {
  const offer = new Schema<BargainOfferDoc>(
    {
      _id: { type: String, required: true },
      skuId: { type: String, required: true },
      productId: { type: String, required: true },
      name: { type: String, required: true },
      startPrice: { type: Number, required: true },
      floorPrice: { type: Number, required: true },
      helpersNeeded: { type: Number, required: true },
      durationHours: { type: Number, required: true },
      startsAt: { type: Date, required: true },
      endsAt: { type: Date, required: true },
      stock: Number,
      deviceHelpsPerHour: { type: Number, required: true },
      createdBy: { type: String, required: true },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  offer.index({ createdAt: -1 });

  const bargain = new Schema<BargainDoc>(
    {
      _id: { type: String, required: true },
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      offerId: { type: String, required: true },
      memberId: { type: String, required: true },
      skuId: { type: String, required: true },
      keyHash: { type: String, required: true, unique: true },
      seed: { type: String, required: true },
      startPrice: { type: Number, required: true },
      floorPrice: { type: Number, required: true },
      helpersNeeded: { type: Number, required: true },
      expiresAt: { type: Date, required: true },
      createdAt: { type: Date, required: true },
      status: { type: String, required: true },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) bargain.index(idx);
  bargain.index({ memberId: 1 });
  bargain.index({ status: 1, expiresAt: 1 });

  const help = new Schema<BargainHelpDoc>(
    {
      _id: { type: String, required: true },
      bargainId: { type: String, required: true },
      offerId: { type: String, required: true },
      helperId: { type: String, required: true },
      deviceId: { type: String, required: true },
      slot: { type: String, required: true, unique: true },
      k: { type: Number, required: true },
      amount: { type: Number, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  help.index({ bargainId: 1 });

  const deviceSlot = new Schema<DeviceSlotDoc>(
    {
      _id: { type: String, required: true },
      offerId: { type: String, required: true },
      deviceId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );

  const purchase = new Schema<BargainPurchaseDoc>(
    {
      _id: { type: String, required: true },
      checkoutId: { type: String, required: true },
      offerId: { type: String, required: true },
      memberId: { type: String, required: true },
      slot: { type: String, required: true, unique: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  purchase.index({ checkoutId: 1 });
  purchase.index({ offerId: 1 });

  const bought = new Schema<BargainBoughtDoc>(
    {
      _id: { type: String, required: true },
      orderId: { type: String, required: true },
      eventId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );

  return {
    BargainOffer: db.model<BargainOfferDoc>('BargainOffer', offer, 'bargain_offers'),
    Bargain: db.model<BargainDoc>('Bargain', bargain, 'bargains'),
    BargainHelp: db.model<BargainHelpDoc>('BargainHelp', help, 'bargain_helps'),
    DeviceSlot: db.model<DeviceSlotDoc>('BargainDeviceSlot', deviceSlot, 'bargain_device_slots'),
    BargainPurchase: db.model<BargainPurchaseDoc>('BargainPurchase', purchase, 'bargain_purchases'),
    BargainBought: db.model<BargainBoughtDoc>('BargainBought', bought, 'bargain_bought'),
  };
}
export type BargainModels = ReturnType<typeof createBargainModels>;
