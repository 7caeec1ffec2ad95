import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry, type OpLedgerEntry } from '@flywheel/service-kit';

export type LinkKind = 'ARTICLE' | 'PAGE' | 'PRODUCT' | 'LIVE_ROOM' | 'ACTIVITY' | 'EXTERNAL';
export interface LinkDoc {
  kind: LinkKind;
  refId: string | null;
  url: string | null;
}
export interface MenuItemDoc {
  label: string;
  link: LinkDoc;
}
export interface AudienceDoc {
  kind: 'ALL' | 'SEGMENT' | 'TIER';
  segment: string | null;
  tier: string | null;
}
export interface BannerDoc {
  id: string;
  title: string;
  imageUrl: string;
  link: LinkDoc;
  startsAt: Date | null;
  endsAt: Date | null;
  audience: AudienceDoc;
}

/**
 * One save of a menu (`menu:<NAME>`) or of the home banner set (`banners:HOME`): a ledger entry
 * whose seq is the version, so the head is what the site shows and two saves against the same
 * version cannot both land (the second insert of seq + 1 is a duplicate key).
 */
export interface MerchVersionEntry extends LedgerEntry {
  items?: MenuItemDoc[];
  banners?: BannerDoc[];
  savedBy: string;
  at: Date;
}

export interface ActivityFields {
  title: string;
  summary: string;
  bannerUrl: string | null;
  startsAt: Date;
  endsAt: Date;
  articleIds: string[];
  productIds: string[];
  couponTemplateIds: string[];
  liveRoomIds: string[];
}

/** One save of an activity (account `activity:<id>`): the head is the activity, seq its version. */
export interface ActivityEntry extends LedgerEntry, ActivityFields {
  savedBy: string;
  at: Date;
}

/** The activity list's read model (`_id` = activity id), replaced from the ledger head after each save. */
export interface ActivityDoc extends ActivityFields {
  _id: string;
  version: number;
}

/**
 * A room's lifecycle as content learnt it (account `room:<roomId>`, at most one entry per op
 * `<roomId>|<subject>|<instant>`), each entry carrying the merged state so the head is the room.
 */
export interface LiveRoomEntry extends OpLedgerEntry {
  status: 'SCHEDULED' | 'LIVE' | 'ENDED';
  scheduledAt: Date;
  announcedAt: Date;
  at: Date;
}

/** The teaser read model (`_id` = room id), replaced from the room's ledger head after each event. */
export interface LiveTeaserDoc {
  _id: string;
  status: LiveRoomEntry['status'];
  scheduledAt: Date;
  announcedAt: Date;
}

const link = { kind: String, refId: String, url: String };

export function createMerchandisingModels(db: Connection) {
  const versionSchema = new Schema<MerchVersionEntry>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      items: [{ _id: false, label: String, link }],
      banners: [
        {
          _id: false,
          id: String,
          title: String,
          imageUrl: String,
          link,
          startsAt: Date,
          endsAt: Date,
          audience: { kind: String, segment: String, tier: String },
        },
      ],
      savedBy: String,
      at: Date,
    },
    { versionKey: false },
  );
  versionSchema.index({ ...ledgerIndexes[0] });

  const activityFields = {
    title: String,
    summary: String,
    bannerUrl: String,
    startsAt: Date,
    endsAt: Date,
    articleIds: [String],
    productIds: [String],
    couponTemplateIds: [String],
    liveRoomIds: [String],
  };
  const activityEntrySchema = new Schema<ActivityEntry>(
    { _id: String, accountId: String, seq: Number, ...activityFields, savedBy: String, at: Date },
    { versionKey: false },
  );
  activityEntrySchema.index({ ...ledgerIndexes[0] });
  const activitySchema = new Schema<ActivityDoc>({ _id: String, ...activityFields, version: Number }, { versionKey: false });
  activitySchema.index({ startsAt: 1 });

  const roomEntrySchema = new Schema<LiveRoomEntry>(
    { _id: String, accountId: String, seq: Number, op: String, status: String, scheduledAt: Date, announcedAt: Date, at: Date },
    { versionKey: false },
  );
  roomEntrySchema.index({ ...ledgerIndexes[0] });
  roomEntrySchema.index({ op: 1 }, { unique: true });
  const teaserSchema = new Schema<LiveTeaserDoc>(
    { _id: String, status: String, scheduledAt: Date, announcedAt: Date },
    { versionKey: false },
  );
  teaserSchema.index({ status: 1, announcedAt: -1 });

  return {
    MerchVersion: db.model<MerchVersionEntry>('ContentMerchVersion', versionSchema, 'content_merch_versions'),
    ActivityEntry: db.model<ActivityEntry>('ContentActivityEntry', activityEntrySchema, 'content_activity_entries'),
    Activity: db.model<ActivityDoc>('ContentActivity', activitySchema, 'content_activities'),
    LiveRoomEntry: db.model<LiveRoomEntry>('ContentLiveRoomEntry', roomEntrySchema, 'content_live_room_entries'),
    LiveTeaser: db.model<LiveTeaserDoc>('ContentLiveTeaser', teaserSchema, 'content_live_teasers'),
  };
}
export type MerchandisingModels = ReturnType<typeof createMerchandisingModels>;
