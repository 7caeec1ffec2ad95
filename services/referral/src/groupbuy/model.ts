import { Schema, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

/** A group-buy offer (拼团) staff set on one SKU. `_id` derives from staff's idempotency key. */
export interface GroupBuyOfferDoc {
  _id: string;
  skuId: string;
  productId: string;
  /** The SKU's list price when the offer was made (integer fen). */
  listPrice: number;
  groupSize: number;
  groupPrice: number;
  durationMinutes: number;
  startsAt: Date;
  endsAt: Date;
  /** Units the offer may sell: at most floor(stockCap / groupSize) groups open. */
  stockCap: number;
  /** Joins (one unit each) per member over the whole offer. */
  perMemberLimit: number;
  virtualCompletion: boolean;
  createdBy: string;
  createdAt: Date;
}

/**
 * A group, created by its opener's first lock: `_id` derives from the opener's checkout, and
 * `seat` = `offerId:k` (k ≤ the offer's group allotment) is the stock cap's claim.
 */
export interface GroupBuyDoc {
  _id: string;
  offerId: string;
  leaderId: string;
  openerCheckoutId: string;
  seat: string;
  groupSize: number;
  createdAt: Date;
  expiresAt: Date;
  /** Projection: set once an outcome is claimed (the sweep's worklist skips it). */
  closed?: boolean;
}

/**
 * A claim in a pool of numbered places (a group's slots, a member's joins of an offer):
 * `_id` = `pool:n:gen`. The place is held by the highest generation unless that one was released
 * (a `GroupBuyRelease` with the same `_id`); the next holder inserts gen + 1, so two claimers of a
 * freed place cannot both win, and nothing is ever updated.
 */
export interface GroupBuySlotDoc {
  _id: string;
  pool: string;
  kind: 'GROUP' | 'MEMBER';
  n: number;
  gen: number;
  checkoutId: string;
  memberId: string;
  offerId: string;
  groupId: string;
  at: Date;
}

export interface GroupBuyReleaseDoc {
  _id: string;
  pool: string;
  checkoutId: string;
  at: Date;
}

/**
 * What a checkout locked under an offer (`_id` = checkoutId = order id), written before its first
 * place is claimed: the pools it may hold places in. Everything that starts from an order (its
 * payment, cancellation, release) reads this by `_id` — the one lookup the local database serves
 * without a scan — and then the pools' places by `_id`.
 */
export interface GroupBuyCheckoutDoc {
  _id: string;
  offerId: string;
  groupId: string;
  memberId: string;
  /** The offer's per-member limit and group size: how many numbered places each pool has. */
  memberPlaces: number;
  groupPlaces: number;
  at: Date;
}

/** A slot's order paid (`_id` = checkoutId = order id): paid slots are never released. */
export interface GroupBuyPaidDoc {
  _id: string;
  groupId: string;
  offerId: string;
  memberId: string;
  at: Date;
}

/**
 * A group's outcome, once (`_id` = groupId), with its event in `outbox`; a payment that lands after
 * it gets a record of its own (`groupId:late:<orderId>`) carrying the same outcome for that order.
 */
export interface GroupBuyOutcomeDoc {
  _id: string;
  groupId: string;
  offerId: string;
  outcome: 'SUCCEEDED' | 'FAILED';
  virtual: boolean;
  orderIds: string[];
  at: Date;
  outbox?: OutboxRecord;
}

export function createGroupBuyModels(db: Connection) {
  const offer = new Schema<GroupBuyOfferDoc>(
    {
      _id: String,
      skuId: { type: String, required: true },
      productId: { type: String, required: true },
      listPrice: { type: Number, required: true },
      groupSize: { type: Number, required: true },
      groupPrice: { type: Number, required: true },
      durationMinutes: { type: Number, required: true },
      startsAt: { type: Date, required: true },
      endsAt: { type: Date, required: true },
      stockCap: { type: Number, required: true },
      perMemberLimit: { type: Number, required: true },
      virtualCompletion: { type: Boolean, required: true },
      createdBy: { type: String, required: true },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  offer.index({ createdAt: -1 });

  const group = new Schema<GroupBuyDoc>(
    {
      _id: String,
      offerId: { type: String, required: true },
      leaderId: { type: String, required: true },
      openerCheckoutId: { type: String, required: true },
      seat: { type: String, required: true, unique: true },
      groupSize: { type: Number, required: true },
      createdAt: { type: Date, required: true },
      expiresAt: { type: Date, required: true },
      closed: Boolean,
    },
    { versionKey: false },
  );
  group.index({ offerId: 1, createdAt: 1 });
  group.index({ leaderId: 1 });
  group.index({ expiresAt: 1 });

  const slot = new Schema<GroupBuySlotDoc>(
    {
      _id: String,
      pool: { type: String, required: true },
      kind: { type: String, required: true },
      n: { type: Number, required: true },
      gen: { type: Number, required: true },
      checkoutId: { type: String, required: true },
      memberId: { type: String, required: true },
      offerId: { type: String, required: true },
      groupId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  slot.index({ pool: 1 });
  slot.index({ checkoutId: 1 });
  slot.index({ memberId: 1, kind: 1 });

  const release = new Schema<GroupBuyReleaseDoc>(
    { _id: String, pool: { type: String, required: true }, checkoutId: { type: String, required: true }, at: Date },
    { versionKey: false },
  );
  release.index({ pool: 1 });

  const paid = new Schema<GroupBuyPaidDoc>(
    { _id: String, groupId: { type: String, required: true }, offerId: String, memberId: String, at: Date },
    { versionKey: false },
  );
  paid.index({ groupId: 1 });

  const outcome = new Schema<GroupBuyOutcomeDoc>(
    {
      _id: String,
      groupId: { type: String, required: true },
      offerId: { type: String, required: true },
      outcome: { type: String, required: true },
      virtual: { type: Boolean, required: true },
      orderIds: { type: [String], required: true },
      at: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  outcome.index({ groupId: 1 });

  const checkout = new Schema<GroupBuyCheckoutDoc>(
    {
      _id: String,
      offerId: { type: String, required: true },
      groupId: { type: String, required: true },
      memberId: { type: String, required: true },
      memberPlaces: { type: Number, required: true },
      groupPlaces: { type: Number, required: true },
      at: Date,
    },
    { versionKey: false },
  );

  return {
    GroupBuyCheckout: db.model<GroupBuyCheckoutDoc>('GroupBuyCheckout', checkout, 'group_buy_checkouts'),
    GroupBuyOffer: db.model<GroupBuyOfferDoc>('GroupBuyOffer', offer, 'group_buy_offers'),
    GroupBuy: db.model<GroupBuyDoc>('GroupBuy', group, 'group_buys'),
    GroupBuySlot: db.model<GroupBuySlotDoc>('GroupBuySlot', slot, 'group_buy_slots'),
    GroupBuyRelease: db.model<GroupBuyReleaseDoc>('GroupBuyRelease', release, 'group_buy_releases'),
    GroupBuyPaid: db.model<GroupBuyPaidDoc>('GroupBuyPaid', paid, 'group_buy_paid'),
    GroupBuyOutcome: db.model<GroupBuyOutcomeDoc>('GroupBuyOutcome', outcome, 'group_buy_outcomes'),
  };
}
export type GroupBuyModels = ReturnType<typeof createGroupBuyModels>;
