import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

/**
 * One change of a room's pinned product (置顶商品), appended to the room's pin ledger
 * (`_id` = `${roomId}:${seq}`): the head is what is pinned now (`productId` null: nothing).
 * One product at a time by construction; two hosts pinning at once append in turn.
 */
export interface PinDoc extends LedgerEntry {
  productId: string | null;
  at: Date;
  by: string;
}

export function createPinModels(db: Connection) {
  const schema = new Schema<PinDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      productId: { type: String, default: null },
      at: { type: Date, required: true },
      by: { type: String, required: true },
    },
    { collection: 'live_pins', versionKey: false },
  );
  for (const ix of ledgerIndexes) schema.index(ix);
  return { Pin: db.model<PinDoc>('LivePin', schema) };
}
export type PinModels = ReturnType<typeof createPinModels>;
