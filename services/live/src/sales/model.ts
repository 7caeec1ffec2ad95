import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type OpLedgerEntry } from '@flywheel/service-kit';

/**
 * One unique viewer of a room, appended to the room's viewer ledger (`_id` = `${roomId}:${seq}`)
 * under a unique `op` = `${roomId}:${viewerKey}`: entering again is refused by the index, so the
 * head's seq is the room's count of unique viewers, read by `_id`.
 */
export interface RoomViewerDoc extends OpLedgerEntry {
  at: Date;
}

/** A product's running sales in a room (gross: refunds are not split by product). */
export interface ProductSalesDoc {
  productId: string;
  units: number;
  /** Fen: the lines' quantity × unit price. */
  gmv: number;
}

/**
 * One sales fact of a room, appended to the room's sales ledger (`_id` = `${roomId}:${seq}`) under
 * a unique `op` — `paid:<orderId>` or `refund:<refundId>` — so a redelivered event appends nothing.
 * Every entry carries the room's running totals: the head is the room's report.
 */
export type RoomSalesDoc = OpLedgerEntry & {
  orderId: string;
  at: Date;
  /** Running totals after this fact (fen for money). */
  orders: number;
  gmv: number;
  refunded: number;
  buyers: number;
  products: ProductSalesDoc[];
} & ({ kind: 'PAID'; memberId: string; total: number; newBuyer: boolean } | { kind: 'REFUND'; refundId: string; amount: number });

/**
 * Every paid order live has seen (`_id` = orderId), with its room or null: a refund finds its
 * room here by `_id`, and a refund handled before its order's paid event is redelivered rather
 * than dropped.
 */
export interface SalesOrderDoc {
  _id: string;
  roomId: string | null;
  memberId: string;
  total: number;
  at: Date;
}

/** A room's buyer (`_id` = `${roomId}:${memberId}`), claimed by the member's first paid order there. */
export interface RoomBuyerDoc {
  _id: string;
  orderId: string;
  at: Date;
}

export function createSalesModels(db: Connection) {
  const viewerSchema = new Schema<RoomViewerDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) viewerSchema.index(idx);
  viewerSchema.index({ op: 1 }, { unique: true });

  const productSchema = new Schema<ProductSalesDoc>(
    { productId: { type: String, required: true }, units: { type: Number, required: true }, gmv: { type: Number, required: true } },
    { _id: false },
  );
  const salesSchema = new Schema(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      kind: { type: String, required: true },
      orderId: { type: String, required: true },
      at: { type: Date, required: true },
      memberId: String,
      total: Number,
      newBuyer: Boolean,
      refundId: String,
      amount: Number,
      orders: { type: Number, required: true },
      gmv: { type: Number, required: true },
      refunded: { type: Number, required: true },
      buyers: { type: Number, required: true },
      products: { type: [productSchema], default: [] },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) salesSchema.index(idx);
  salesSchema.index({ op: 1 }, { unique: true });

  const orderSchema = new Schema<SalesOrderDoc>(
    {
      _id: String,
      roomId: { type: String, default: null },
      memberId: { type: String, required: true },
      total: { type: Number, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  const buyerSchema = new Schema<RoomBuyerDoc>(
    { _id: String, orderId: { type: String, required: true }, at: { type: Date, required: true } },
    { versionKey: false },
  );

  return {
    RoomViewer: db.model<RoomViewerDoc>('RoomViewer', viewerSchema, 'live_room_viewers'),
    RoomSales: db.model<RoomSalesDoc>('RoomSales', salesSchema, 'live_room_sales'),
    SalesOrder: db.model<SalesOrderDoc>('SalesOrder', orderSchema, 'live_sales_orders'),
    RoomBuyer: db.model<RoomBuyerDoc>('RoomBuyer', buyerSchema, 'live_room_buyers'),
  };
}
export type SalesModels = ReturnType<typeof createSalesModels>;
