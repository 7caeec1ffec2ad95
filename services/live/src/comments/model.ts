import { Schema, type Connection } from 'mongoose';
import { bannedWordsModel } from '@flywheel/service-kit';

/**
 * A viewer's comment in a room. `_id` = `${roomId}:${memberId}:${slot}`, slot = the comment's time
 * in COMMENT_INTERVAL_MS steps: the insert is the rate-limit claim, so a member posts at most one
 * comment per slot and room on any number of replicas, without a counter to update.
 */
export interface CommentDoc {
  _id: string;
  roomId: string;
  memberId: string;
  body: string;
  at: Date;
  /** Set once by staff or the room's host; a removed comment leaves every list and the feed. */
  removedAt?: Date | null;
  removedBy?: string | null;
  removedReason?: string | null;
}

export function createCommentModels(db: Connection) {
  const comment = new Schema<CommentDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      memberId: { type: String, required: true },
      body: { type: String, required: true },
      at: { type: Date, required: true },
      removedAt: { type: Date, default: null },
      removedBy: { type: String, default: null },
      removedReason: { type: String, default: null },
    },
    { collection: 'live_comments', versionKey: false },
  );
  comment.index({ roomId: 1, at: -1 });
  return {
    Comment: db.model<CommentDoc>('LiveComment', comment),
    /** The staff-edited banned-words list (the kit's versioned ledger). */
    BannedWords: bannedWordsModel(db, 'LiveBannedWords', 'live_banned_words'),
  };
}
export type CommentModels = ReturnType<typeof createCommentModels>;
