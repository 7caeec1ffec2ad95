import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

export type AmbassadorStatus = 'APPLIED' | 'APPROVED' | 'REVOKED';

/**
 * One member's ambassador (体验官) history (account = member id): APPLIED → APPROVED → REVOKED, and
 * APPLIED again after a revoke. Each entry carries the state it leaves, so the head is the status;
 * deciding a move is appending the next entry, so two racing moves land one.
 */
export interface AmbassadorEntry extends LedgerEntry {
  status: AmbassadorStatus;
  /** The application's note (of the current round). */
  note: string;
  appliedAt: Date;
  approvedAt: Date | null;
  /** approvedAt + the showcase days staff gave. */
  showcaseDueAt: Date | null;
  revokedAt: Date | null;
  reason: string | null;
  /** Who made this move. */
  by: string;
  at: Date;
}

export function createAmbassadorModels(db: Connection) {
  const schema = new Schema<AmbassadorEntry>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      status: String,
      note: String,
      appliedAt: Date,
      approvedAt: Date,
      showcaseDueAt: Date,
      revokedAt: Date,
      reason: String,
      by: String,
      at: Date,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) schema.index(idx);
  schema.index({ status: 1 });
  return { Entry: db.model<AmbassadorEntry>('AmbassadorEntry', schema, 'ambassador_entries') };
}
export type AmbassadorModels = ReturnType<typeof createAmbassadorModels>;
