import {
  AppError,
  afterTimeCursor,
  badInput,
  createBannedWords,
  decodeTimeCursor,
  isDuplicateKey,
  isObjectId,
  notFound,
  pageSize,
  requireRole,
  text,
  timePage,
  type Viewer,
} from '@flywheel/service-kit';
import { feedId } from '@flywheel/events';
import type { LiveRoomDoc, Models } from '../model';
import { requireRoomOperator, ROOM_OPERATOR_ROLES, type LiveService } from '../service';
import type { CommentDoc, CommentModels } from './model';

export const COMMENT_LIMITS = {
  /** Characters of a comment. */
  body: 200,
  /** One comment per member and room per this many milliseconds (the comment's `_id` is the claim). */
  intervalMs: 3_000,
  /** Words on the banned list, and characters of each. */
  bannedWords: 500,
  bannedWord: 20,
  reason: 200,
  page: 100,
} as const;

export interface CommentDeps {
  models: CommentModels;
  core: Models;
  rooms: LiveService;
  now: () => Date;
  announce: (roomId: string, id: string) => void;
  /** Told of every member who commented in a room (lottery eligibility); may repeat. */
  participated?: (roomId: string, memberId: string) => Promise<void>;
}

const conflict = (msg: string) => new AppError('CONFLICT', msg);

export function createCommentService(deps: CommentDeps) {
  const { models, now } = deps;
  const bannedWords = createBannedWords(models.BannedWords, {
    now,
    maxWords: COMMENT_LIMITS.bannedWords,
    maxWordLength: COMMENT_LIMITS.bannedWord,
  });

  /** The room must exist (NOT_FOUND) and be LIVE now (CONFLICT), as its ledger head says. */
  async function requireLive(roomId: string): Promise<void> {
    if (!isObjectId(roomId)) throw notFound('Live room');
    const status = await deps.rooms.statusOf(roomId);
    if (status === 'LIVE') return;
    if (!(await deps.core.LiveRoom.exists({ _id: roomId }))) throw notFound('Live room');
    throw conflict(`The room is ${status}: comments are open while it is LIVE`);
  }

  return {
    /**
     * A member's comment: 1 to 200 characters, no banned word (BAD_USER_INPUT naming the word's
     * field, not the word), the room LIVE, at most one per member per 3-second slot (RATE_LIMITED).
     * Nothing is written on a refusal.
     */
    async post(viewer: Viewer | null, roomId: string, rawBody: string): Promise<CommentDoc> {
      const member = requireRole(viewer, 'CUSTOMER');
      const body = text(rawBody, 'body', COMMENT_LIMITS.body);
      if ((await bannedWords.filter()).find(body)) throw badInput('The comment contains a word that is not allowed here', 'body');
      await requireLive(roomId);
      // Before the insert: a comment refused by its slot was preceded by one that counted anyway.
      await deps.participated?.(roomId, member.id);
      const at = now();
      const slot = Math.floor(at.getTime() / COMMENT_LIMITS.intervalMs);
      const doc: CommentDoc = { _id: `${roomId}:${member.id}:${slot}`, roomId, memberId: member.id, body, at, removedAt: null };
      try {
        await models.Comment.create(doc);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        throw new AppError('RATE_LIMITED', 'One comment every few seconds, please', {
          retryAfterSeconds: Math.ceil(((slot + 1) * COMMENT_LIMITS.intervalMs - at.getTime()) / 1000),
        });
      }
      deps.announce(roomId, feedId('comment', doc._id));
      return doc;
    },

    /** Staff or the room's host take a comment down, once (again returns it); the feed tells every viewer. */
    async remove(viewer: Viewer | null, id: string, rawReason?: string | null): Promise<CommentDoc> {
      const staff = requireRole(viewer, ROOM_OPERATOR_ROLES);
      const reason = rawReason == null ? null : text(rawReason, 'reason', COMMENT_LIMITS.reason);
      const found = await models.Comment.findById(id).lean<CommentDoc>();
      if (!found) throw notFound('Comment');
      const room = await deps.core.LiveRoom.findById(found.roomId, { hostAccountId: 1 }).lean<Pick<LiveRoomDoc, 'hostAccountId'>>();
      requireRoomOperator(viewer, room ?? {});
      if (found.removedAt) return found;
      const removed = { removedAt: now(), removedBy: staff.id, removedReason: reason };
      // Only a comment still shown is taken down: of two concurrent removals one stamps it, and
      // either way the comment is removed (the other's stamp would differ only in time and who).
      await models.Comment.updateOne({ _id: id, removedAt: null }, { $set: removed });
      deps.announce(found.roomId, feedId('removed', id));
      return { ...found, ...removed };
    },

    /** A room's comments still shown, newest first. */
    async list(roomId: string, args: { first?: number | null; after?: string | null }) {
      const first = pageSize(args.first, COMMENT_LIMITS.page);
      const cursor = decodeTimeCursor(args.after);
      const rows = await models.Comment.find({ roomId, removedAt: null, ...afterTimeCursor(cursor) })
        .sort({ at: -1, _id: -1 })
        .limit(first + 1)
        .lean<CommentDoc[]>();
      return timePage(rows, first, (c) => c);
    },

    /** Feed source `comment:<id>`: the comment, or its removal once removed. */
    async feedEvent(roomId: string, id: string) {
      const c = await models.Comment.findById(id).lean<CommentDoc>();
      if (!c || c.roomId !== roomId) return null;
      return c.removedAt
        ? ({ __typename: 'LiveCommentRemoved', commentId: c._id } as const)
        : ({ __typename: 'LiveComment', ...c } as const);
    },

    /** The staff-edited list comments are checked against (applies on every replica within 5 s). */
    bannedWords,
  };
}

export type CommentService = ReturnType<typeof createCommentService>;
