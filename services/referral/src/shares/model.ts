import { Schema, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

export const SHARE_TARGET_KINDS = ['PRODUCT', 'ARTICLE', 'LIVE_ROOM', 'GROUP', 'PAGE'] as const;
export type ShareTargetKind = (typeof SHARE_TARGET_KINDS)[number];
export const SHARE_CHANNELS = ['WECHAT_FRIEND', 'WECHAT_MOMENTS', 'COPY_LINK', 'POSTER', 'OTHER'] as const;
export type ShareChannel = (typeof SHARE_CHANNELS)[number];

/**
 * A member sharing something (分享). Two unique keys are the claims: `_id` (24 hex digits: a fresh
 * ObjectId, or derived from the member's idempotency key so a replay lands on the first share) and
 * `slot` = `memberId:localDay:n` with n in 1..the daily limit, so concurrent shares can never
 * exceed the day's quota. The share carries `referral.share.created` in `outbox` (one insert).
 */
export interface ShareDoc {
  _id: string;
  memberId: string;
  /** The sharer's invite code at the time of sharing: the link's `invite` parameter. */
  code: string;
  targetKind: ShareTargetKind;
  targetId: string;
  channel: ShareChannel;
  /** The sharer's local day (YYYY-MM-DD). */
  day: string;
  slot: string;
  at: Date;
  outbox?: OutboxRecord;
}

/**
 * One visitor's first click on a share: `_id = shareId:visitorId` is the claim, so a visitor is
 * counted once per share however often (or concurrently) they open it. Counts are counted from
 * these rows, never kept as a counter.
 */
export interface ShareClickDoc {
  _id: string;
  shareId: string;
  sharerId: string;
  visitorId: string;
  /** The signed-in member who clicked, when there was one. */
  viewerId?: string;
  at: Date;
}

export function createShareModels(db: Connection) {
  const share = new Schema<ShareDoc>(
    {
      _id: { type: String, required: true },
      memberId: { type: String, required: true },
      code: { type: String, required: true },
      targetKind: { type: String, required: true },
      targetId: { type: String, required: true },
      channel: { type: String, required: true },
      day: { type: String, required: true },
      slot: { type: String, required: true, unique: true },
      at: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  share.index({ memberId: 1, day: 1 });

  const click = new Schema<ShareClickDoc>(
    {
      _id: { type: String, required: true },
      shareId: { type: String, required: true },
      sharerId: { type: String, required: true },
      visitorId: { type: String, required: true },
      viewerId: String,
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  click.index({ shareId: 1 });
  click.index({ sharerId: 1 });

  return {
    Share: db.model<ShareDoc>('Share', share, 'shares'),
    ShareClick: db.model<ShareClickDoc>('ShareClick', click, 'share_clicks'),
  };
}
export type ShareModels = ReturnType<typeof createShareModels>;
