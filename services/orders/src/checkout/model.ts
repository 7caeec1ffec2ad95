import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';
import type { OrderDoc } from '../order/model';

/**
 * A checkout that may hold stock: inserted (a claim on the checkout id) right before stock is
 * reserved, so a crash between the reservation and the order leaves a record the recovery
 * sweeper finds. `settledAt` is set once nothing is held on its behalf any more (the order
 * exists, or the hold was released); every writer sets the same value on an otherwise
 * immutable document.
 */
export interface CheckoutDoc {
  _id: string;
  memberId: string;
  requestHash: string;
  createdAt: Date;
  settledAt?: Date | null;
}

export type CheckoutOutcome = 'PLACED' | 'FAILED' | 'ABANDONED';

/**
 * `<checkoutId>:final`, the one decision about a checkout: PLACED (the in-flight request, right
 * before inserting the order, carrying the order so anyone can finish the insert), FAILED (the
 * in-flight request after an error, carrying the error a replay answers with) or ABANDONED (the
 * recovery sweeper, before releasing). The first insert wins.
 */
export interface CheckoutFinalDoc {
  _id: string;
  checkoutId: string;
  outcome: CheckoutOutcome;
  requestHash: string;
  at: Date;
  order?: OrderDoc;
  error?: { code: string; message: string };
}

/** One line an unpaid order (or a checkout about to reserve) holds against its member's caps. */
export interface HeldLineDoc {
  orderId: string;
  skuId: string;
  quantity: number;
  /** Bought at a flash price (counts towards the per-SKU flash cap too). */
  flash: boolean;
  /** When the hold was taken: a hold whose checkout left no trace is stale after the recovery window. */
  heldAt: Date;
}

/**
 * One entry of a member's unpaid-holds ledger (`_id = <memberId>:<seq>`, docs/concurrency.md): a HOLD
 * taken by a checkout before it reserves stock, or the RELEASE of one when its order is paid,
 * cancelled or expires, or its checkout fails. Each entry carries everything held after it, so
 * the head alone decides the caps, and two racing checkouts of one member cannot both take the
 * last allowance (the second insert of a seq loses and re-decides against the new head).
 */
export interface UnpaidHoldDoc extends LedgerEntry {
  op: 'HOLD' | 'RELEASE';
  orderId: string;
  at: Date;
  open: HeldLineDoc[];
}

export function createCheckoutModels(db: Connection) {
  const checkoutSchema = new Schema<CheckoutDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      requestHash: { type: String, required: true },
      createdAt: { type: Date, required: true },
      settledAt: { type: Date, default: null },
    },
    { versionKey: false },
  );
  checkoutSchema.index({ settledAt: 1, createdAt: 1 });

  const finalSchema = new Schema<CheckoutFinalDoc>(
    {
      _id: String,
      checkoutId: { type: String, required: true },
      outcome: { type: String, required: true },
      requestHash: { type: String, required: true },
      at: { type: Date, required: true },
      order: { type: Schema.Types.Mixed },
      error: { type: Schema.Types.Mixed },
    },
    { versionKey: false },
  );

  const unpaidSchema = new Schema<UnpaidHoldDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      orderId: { type: String, required: true },
      at: { type: Date, required: true },
      open: { type: Schema.Types.Mixed, required: true },
    },
    { versionKey: false, minimize: false },
  );
  for (const idx of ledgerIndexes) unpaidSchema.index(idx);

  return {
    Checkout: db.model<CheckoutDoc>('Checkout', checkoutSchema, 'checkouts'),
    CheckoutFinal: db.model<CheckoutFinalDoc>('CheckoutFinal', finalSchema, 'checkout_finals'),
    UnpaidHold: db.model<UnpaidHoldDoc>('UnpaidHold', unpaidSchema, 'unpaid_holds'),
  };
}
export type CheckoutModels = ReturnType<typeof createCheckoutModels>;
