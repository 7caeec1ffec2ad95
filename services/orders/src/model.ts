import { Schema, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

export type OrderStatus = 'PENDING_PAYMENT' | 'PAID' | 'SHIPPED' | 'DELIVERED' | 'COMPLETED' | 'CANCELLED';
export type OrderSourceKind = 'DIRECT' | 'CONTENT' | 'LIVE' | 'COMMUNITY' | 'REFERRAL';

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
}

export interface OrderSourceDoc {
  kind: OrderSourceKind;
  refId: string | null;
}

export interface OrderDoc {
  /** Hash of (member, idempotency key): inserting the order is the claim that places it once. */
  _id: string;
  memberId: string;
  status: OrderStatus;
  lines: OrderLineDoc[];
  /** Integer fen. */
  total: number;
  currency: 'CNY';
  source: OrderSourceDoc;
  /** Fingerprint of the lines and source asked for: a replay that asks for something else is refused. */
  requestHash: string;
  createdAt: Date;
  /** The placement event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
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
    },
    { _id: false },
  );
  const orderSchema = new Schema<OrderDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      status: { type: String, required: true },
      lines: { type: [lineSchema], required: true },
      total: { type: Number, required: true },
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
  orderSchema.index({ 'outbox.occurredAt': 1 });

  return {
    Order: db.model<OrderDoc>('Order', orderSchema, 'orders'),
  };
}
export type Models = ReturnType<typeof createModels>;
