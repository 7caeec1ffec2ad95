import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

/**
 * One flush of a room's likes by one replica: the taps it counted since its last flush (`delta`)
 * and the room's running total after them. Appended to the room's ledger (`_id` = `${roomId}:${seq}`),
 * so concurrent flushes of two replicas never lose a count; the head's total is the room's.
 */
export interface LikeEntryDoc extends LedgerEntry {
  delta: number;
  total: number;
  at: Date;
}

export function createLikeModels(db: Connection) {
  const schema = new Schema<LikeEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      delta: { type: Number, required: true },
      total: { type: Number, required: true },
      at: { type: Date, required: true },
    },
    { collection: 'live_like_entries', versionKey: false },
  );
  for (const ix of ledgerIndexes) schema.index(ix);
  return { LikeEntry: db.model<LikeEntryDoc>('LiveLikeEntry', schema) };
}
export type LikeModels = ReturnType<typeof createLikeModels>;
