import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';
import type { OrderAddressDoc, OrderShippingDoc } from '../shipping/model';
import type { AfterSaleKind, AppliedAdjustment, OrderActor, OrderFacts, OrderSourceDoc, OrderStatus, PriceKind, StockLine } from '../types';

/** A line as the catalog priced it when the order was placed (names kept for order history). */
export interface OrderLineDoc {
  productId: string;
  skuId: string;
  name: string;
  skuName: string;
  quantity: number;
  /** Integer fen. */
  unitPrice: number;
  /** Integer fen: unitPrice × quantity. */
  subtotal: number;
  /** Absent on orders placed before price kinds existed (they were LIST). */
  priceKind?: PriceKind;
  flashSaleId?: string;
}

export interface OrderDoc {
  /** Hash of (member, idempotency key): also the checkout's id and the stock reservation's key. */
  _id: string;
  memberId: string;
  /**
   * Projection of the transitions ledger's head, kept for listing and searching. Anything that
   * decides reads the head (OrderTransitionDoc), never this field.
   */
  status: OrderStatus;
  /** Projection too: when the head's status began (the fulfilment sweepers' worklist). */
  statusAt?: Date;
  lines: OrderLineDoc[];
  /** Integer fen: the lines before adjustments. Absent on orders placed before adjusters existed. */
  subtotal?: number;
  /** What the quote adjusters took off (coupons, points, group-buy prices); empty for now. */
  adjustments?: AppliedAdjustment[];
  /** Integer fen: what the member pays, shipping included. */
  total: number;
  /** The shipping fee charged (included in `total`); absent on orders placed before shipping fees. */
  shipping?: OrderShippingDoc;
  /** Where it ships, encrypted (shipping/model.ts); absent without an address and once erased. */
  shippingAddress?: OrderAddressDoc;
  /** Projection: a paid group-buy order still waiting for its group (left out of the PAID list); the hold claim decides. */
  grouping?: boolean;
  /** When `membership.member.erased` removed the address snapshot. */
  addressErasedAt?: Date;
  currency: 'CNY';
  source: OrderSourceDoc;
  /** Fingerprint of the lines and source asked for: a replay that asks for something else is refused. */
  requestHash: string;
  createdAt: Date;
  /** The placement event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
}

/**
 * What an entry of the order's ledger records. MOVE only changes the status; the others record
 * a fact about the order's units (and may change the status in the same insert).
 */
export type OrderOp = 'MOVE' | 'SHIP' | 'AFTER_SALE_REQUEST' | 'AFTER_SALE_APPROVE' | 'AFTER_SALE_REJECT' | 'RETURN_RECEIVE' | 'REFUND';

/** A member's after-sale request as claimed in the ledger (the AfterSale document is its projection). */
export interface AfterSaleRequestRecord {
  memberId: string;
  kind: AfterSaleKind;
  reason: string;
  /** Fingerprint of what was asked: the same idempotency key for something else is refused. */
  requestHash: string;
  lines: { skuId: string; quantity: number; unshipped: number; amount: number }[];
  /** Integer fen, computed from the paid prices, never from the client. */
  amount: number;
}

/** Money returned for an after-sale: the refund record, with `orders.order.refunded` in `outbox`. */
export interface RefundRecord {
  /** The provider's idempotency key: asking twice returns money once. */
  refundId: string;
  providerRefundId: string | null;
  amount: number;
  /** Units going back to stock: returned goods, and refund-only units that never shipped. */
  restock: StockLine[];
}

interface TransitionBase extends LedgerEntry {
  /** Equal to `to` for an entry that does not move the order. */
  from: OrderStatus;
  to: OrderStatus;
  at: Date;
  by: OrderActor;
  /** The member or staff id; null for the system and the payment provider. */
  actorId: string | null;
  /** MEMBER | STAFF | EXPIRED for cancellations; free text is never stored. */
  reason: string | null;
  /** Absent on entries written before facts existed (see facts.ts). */
  facts?: OrderFacts;
  outbox?: OutboxRecord;
}

export interface ShipmentRecord {
  shipmentId: string;
  carrier: string;
  trackingNumber: string;
  /** Absent on the SHIPPED moves of orders shipped before partial shipments existed. */
  lines?: StockLine[];
}

/** A move of the state machine (`op` is absent on entries written before ops existed). */
export interface MoveEntryDoc extends TransitionBase {
  op?: 'MOVE';
  /** The payment that paid the order (PAID only). */
  paymentId?: string;
  /** The SHIPPED move of an order shipped before partial shipments existed. */
  shipment?: ShipmentRecord;
}

/** A parcel shipped (some or all of the order's units). */
export interface ShipEntryDoc extends TransitionBase {
  op: 'SHIP';
  shipment: ShipmentRecord;
}

/** A member's after-sale request, claimed in the ledger. */
export interface AfterSaleRequestEntryDoc extends TransitionBase {
  op: 'AFTER_SALE_REQUEST';
  afterSaleId: string;
  request: AfterSaleRequestRecord;
}

/** Staff's decision on an after-sale, or the returned goods received. */
export interface AfterSaleStepEntryDoc extends TransitionBase {
  op: 'AFTER_SALE_APPROVE' | 'AFTER_SALE_REJECT' | 'RETURN_RECEIVE';
  afterSaleId: string;
  /** Staff's note on the decision. */
  note: string | null;
}

/** Money returned for an after-sale. */
export interface RefundEntryDoc extends TransitionBase {
  op: 'REFUND';
  afterSaleId: string;
  refund: RefundRecord;
}

/**
 * One entry of an order's ledger: append-only, `_id = <orderId>:<seq>` (docs/concurrency.md,
 * "Ledgers"). A move of the state machine (the first entry to claim the next seq after
 * PENDING_PAYMENT decides between paid and cancelled), a shipment, or an after-sale step, told
 * apart by `op`. Each carries the order's whole `facts` after it, so every decision is checked
 * against the real head; its event rides in the entry (outbox). An order without entries is
 * PENDING_PAYMENT.
 */
export type OrderTransitionDoc = MoveEntryDoc | ShipEntryDoc | AfterSaleRequestEntryDoc | AfterSaleStepEntryDoc | RefundEntryDoc;

/** The after-sale an entry belongs to, if any. */
export const afterSaleOf = (e: OrderTransitionDoc): string | null => ('afterSaleId' in e ? e.afterSaleId : null);

/** The parcel an entry ships, if any (a SHIP entry, or a legacy SHIPPED move). */
export const shipmentOf = (e: OrderTransitionDoc): ShipmentRecord | null =>
  e.op === 'SHIP' || e.op === 'MOVE' || !e.op ? (e.shipment ?? null) : null;

/** The payment a move records (the move to PAID). */
export const paymentOf = (e: OrderTransitionDoc): string | null => (e.op === 'MOVE' || !e.op ? (e.paymentId ?? null) : null);

export interface SweepClaimDoc {
  _id: string;
  at: Date;
}

export function createModels(db: Connection) {
  const lineSchema = new Schema<OrderLineDoc>(
    {
      productId: { type: String, required: true },
      skuId: { type: String, required: true },
      name: { type: String, required: true },
      skuName: { type: String, required: true },
      quantity: { type: Number, required: true },
      unitPrice: { type: Number, required: true },
      subtotal: { type: Number, required: true },
      priceKind: { type: String },
      flashSaleId: { type: String },
    },
    { _id: false },
  );
  const adjustmentSchema = new Schema<AppliedAdjustment>(
    {
      adjuster: { type: String, required: true },
      kind: { type: String, required: true },
      label: { type: String, required: true },
      amount: { type: Number, required: true },
      ref: { type: String, required: true },
      skuId: { type: String },
    },
    { _id: false },
  );
  const orderSchema = new Schema<OrderDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      status: { type: String, required: true },
      statusAt: { type: Date },
      lines: { type: [lineSchema], required: true },
      subtotal: { type: Number },
      adjustments: { type: [adjustmentSchema], default: undefined },
      total: { type: Number, required: true },
      shipping: { type: Schema.Types.Mixed },
      shippingAddress: { type: Schema.Types.Mixed },
      addressErasedAt: { type: Date },
      grouping: { type: Boolean },
      currency: { type: String, required: true },
      source: {
        type: new Schema<OrderSourceDoc>({ kind: String, refId: { type: String, default: null } }, { _id: false }),
        required: true,
      },
      requestHash: { type: String, required: true },
      createdAt: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  orderSchema.index({ memberId: 1, createdAt: -1, _id: -1 });
  orderSchema.index({ status: 1, createdAt: -1, _id: -1 });
  orderSchema.index({ status: 1, statusAt: 1 });
  orderSchema.index({ createdAt: -1, _id: -1 });

  const transitionSchema = new Schema<OrderTransitionDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      from: { type: String, required: true },
      to: { type: String, required: true },
      at: { type: Date, required: true },
      by: { type: String, required: true },
      actorId: { type: String, default: null },
      reason: { type: String, default: null },
      paymentId: { type: String },
      op: { type: String },
      shipment: { type: Schema.Types.Mixed },
      afterSaleId: { type: String },
      request: { type: Schema.Types.Mixed },
      note: { type: String },
      refund: { type: Schema.Types.Mixed },
      facts: { type: Schema.Types.Mixed },
      outbox: outboxPath,
    },
    { versionKey: false, minimize: false },
  );
  for (const idx of ledgerIndexes) transitionSchema.index(idx);
  // The after-sales sweeper finds requests whose projection was never written.
  transitionSchema.index({ op: 1, at: 1 });

  return {
    Order: db.model<OrderDoc>('Order', orderSchema, 'orders'),
    OrderTransition: db.model<OrderTransitionDoc>('OrderTransition', transitionSchema, 'order_transitions'),
    /** `sweep:<period>`: which replica runs the sweepers in each SWEEP_INTERVAL_SECONDS period. */
    SweepClaim: db.model<SweepClaimDoc>(
      'SweepClaim',
      new Schema<SweepClaimDoc>({ _id: String, at: Date }, { versionKey: false }),
      'sweep_claims',
    ),
  };
}
export type Models = ReturnType<typeof createModels>;
