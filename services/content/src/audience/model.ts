import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';

export type Tier = EventData<'membership.tier.changed'>['to'];
export type Segment = EventData<'membership.segment.changed'>['to'];

/** What content knows of a member's tier and RFM segment, each with the `changedAt` of the event it came from. */
export interface AudienceFields {
  tier: Tier | null;
  tierAt: Date | null;
  segment: Segment | null;
  segmentAt: Date | null;
}

/**
 * One change of what content knows of a member (account `audience:<memberId>`): appended only when
 * an event is newer than the head for its dimension, so the head is the member's audience and a
 * redelivered or older event appends nothing.
 */
export interface AudienceEntry extends LedgerEntry, AudienceFields {
  at: Date;
}

/** The read model banners are targeted with (`_id` = member id): the ledger head, copied. */
export interface MemberAudienceDoc extends AudienceFields {
  _id: string;
  /** The seq of the ledger entry copied: a copy never replaces a newer one. */
  seq: number;
}

const fields = { tier: String, tierAt: Date, segment: String, segmentAt: Date };

export function createAudienceModels(db: Connection) {
  const entrySchema = new Schema<AudienceEntry>(
    { _id: String, accountId: String, seq: Number, ...fields, at: Date },
    { versionKey: false },
  );
  entrySchema.index({ ...ledgerIndexes[0] });
  const audienceSchema = new Schema<MemberAudienceDoc>({ _id: String, ...fields, seq: Number }, { versionKey: false });
  return {
    AudienceEntry: db.model<AudienceEntry>('ContentAudienceEntry', entrySchema, 'content_audience_entries'),
    MemberAudience: db.model<MemberAudienceDoc>('ContentMemberAudience', audienceSchema, 'content_member_audiences'),
  };
}
export type AudienceModels = ReturnType<typeof createAudienceModels>;
