import { Schema, type Connection } from 'mongoose';
import type { AfterSaleKind, AfterSaleStatus } from '../types';

/**
 * An after-sale as staff list and find it. A projection: the request and every decision are
 * entries of the order's ledger (their facts decide); this document is written after the
 * request's entry (by the request, a replay or the sweeper) and its `status` follows the ledger.
 * `_id` is the hash of (member, idempotency key), the request's claim.
 */
export interface AfterSaleDoc {
  _id: string;
  orderId: string;
  memberId: string;
  kind: AfterSaleKind;
  /** Integer fen. */
  amount: number;
  createdAt: Date;
  /** Projection of the ledger, for listing by status; never used to decide. */
  status: AfterSaleStatus;
  statusAt: Date;
}

export function createAfterSaleModels(db: Connection) {
  const schema = new Schema<AfterSaleDoc>(
    {
      _id: String,
      orderId: { type: String, required: true },
      memberId: { type: String, required: true },
      kind: { type: String, required: true },
      amount: { type: Number, required: true },
      createdAt: { type: Date, required: true },
      status: { type: String, required: true },
      statusAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  schema.index({ createdAt: -1, _id: -1 });
  schema.index({ status: 1, createdAt: -1, _id: -1 });
  schema.index({ status: 1, statusAt: 1 });
  schema.index({ orderId: 1 });
  return { AfterSale: db.model<AfterSaleDoc>('AfterSale', schema, 'after_sales') };
}
export type AfterSaleModels = ReturnType<typeof createAfterSaleModels>;
