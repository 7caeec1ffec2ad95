import { Types } from 'mongoose';
import {
  AppError,
  afterTimeCursor,
  appendOnce,
  appendToLedger,
  badInput,
  claimOnce,
  createBannedWords,
  decodeTimeCursor,
  forbidden,
  httpUrl,
  isDuplicateKey,
  isStaff,
  ledgerHead,
  notFound,
  optionalText,
  outboxRecord,
  pageSize,
  requireRole,
  text,
  timePage,
  wholeNumber,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';
import { randomUUID } from 'node:crypto';
import type { Models } from '../model';
import type { RewardTrigger } from './events';
import type { PostDoc, PostModels, PostStateDoc } from './model';

export const POST_LIMITS = {
  body: 1000,
  images: 9,
  imageUrl: 500,
  id: 64,
  comment: 500,
  /** One comment per member and post per this many milliseconds (the comment's `_id` is the claim). */
  commentIntervalMs: 3_000,
  reason: 200,
  bannedWords: 500,
  bannedWord: 20,
  page: 50,
  likesPerCall: 20,
} as const;

/** How often a replica writes the likes it counted: one ledger entry per post with likes, per flush. */
export const POST_LIKE_FLUSH_MS = 1_000;

export interface PublishPostInput {
  body: string;
  images?: readonly string[] | null;
  productId?: string | null;
  groupId?: string | null;
}

export interface ShowcaseInput {
  orderId: string;
  skuId: string;
  rating: number;
  body: string;
  images?: readonly string[] | null;
}

const conflict = (msg: string) => new AppError('CONFLICT', msg);
/** A post counts in its product's rating while it is a verified, shown showcase. */
const counted = (p: { hidden: boolean; verified: boolean }) => p.verified && !p.hidden;

export function createPostService(deps: {
  models: PostModels;
  core: Models;
  now: () => Date;
  kick: () => void;
  logger: Logger;
  /** Told of every showcase published (its reward); a failure is logged, the post stands. */
  showcasePublished?: (post: PostDoc) => Promise<void>;
  /** Told of every showcase hidden or unverified, repeats included (its reward is taken back). */
  showcaseRemoved?: (postId: string, trigger: RewardTrigger) => Promise<void>;
}) {
  const { models, now } = deps;
  const bannedWords = createBannedWords(models.BannedWords, {
    now,
    maxWords: POST_LIMITS.bannedWords,
    maxWordLength: POST_LIMITS.bannedWord,
  });
  const pendingLikes = new Map<string, number>();
  let flushing: Promise<void> = Promise.resolve();

  /** BAD_USER_INPUT naming the field (not the word) when `value` holds a banned word. */
  async function refuseBanned(value: string, field: string): Promise<void> {
    if ((await bannedWords.filter()).find(value)) throw badInput('The text contains a word that is not allowed here', field);
  }

  function images(raw: readonly string[] | null | undefined): string[] {
    const list = raw ?? [];
    if (list.length > POST_LIMITS.images) throw badInput(`At most ${POST_LIMITS.images} images`, 'images');
    return list.map((u) => {
      const url = httpUrl(u, 'images', POST_LIMITS.imageUrl);
      if (!url.startsWith('https://')) throw badInput('Images must be https URLs', 'images');
      return url;
    });
  }

  /** A shown post (NOT_FOUND when unknown, or hidden and the viewer is not staff). */
  async function shownPost(viewer: Viewer | null, postId: string): Promise<PostDoc> {
    const post = await models.Post.findById(postId).lean<PostDoc>();
    if (!post || (post.hidden && !isStaff(viewer))) throw notFound('Post');
    return post;
  }

  /** Applies a state entry's rating delta to its product once (op `${postId}:${seq}`); a repeat is a no-op. */
  async function applyRating(entry: PostStateDoc): Promise<void> {
    if (!entry.productId || (entry.ratingSum === 0 && entry.ratingCount === 0)) return;
    await appendOnce(models.ProductRating, entry.productId, `${entry.accountId}:${entry.seq}`, (head) => ({
      sum: (head?.sum ?? 0) + entry.ratingSum,
      count: (head?.count ?? 0) + entry.ratingCount,
      at: now(),
    }));
  }

  /**
   * Appends the post's next state (hidden / verified), with its rating delta, then the delta to the
   * product's rating and the projection on the post. Null when the change is already the state.
   */
  async function changeState(
    post: PostDoc,
    kind: PostStateDoc['kind'],
    change: { hidden?: boolean; verified?: boolean },
    extra: { reason?: string | null; by?: string | null; outbox?: (at: Date) => PostStateDoc['outbox'] } = {},
  ): Promise<PostStateDoc | null> {
    const entry = await appendToLedger(models.PostState, post._id, (head) => {
      const from = head ?? { hidden: post.hidden, verified: post.verified };
      const to = { hidden: change.hidden ?? from.hidden, verified: change.verified ?? from.verified };
      if (head && to.hidden === from.hidden && to.verified === from.verified) return null;
      const rating = post.showcase?.rating ?? 0;
      const d = (counted(to) ? 1 : 0) - (head ? (counted(from) ? 1 : 0) : 0);
      const at = now();
      return {
        kind,
        ...to,
        productId: post.productId ?? null,
        ratingSum: post.showcase ? d * rating : 0,
        ratingCount: post.showcase ? d : 0,
        reason: extra.reason ?? null,
        by: extra.by ?? null,
        at,
        ...(extra.outbox ? { outbox: extra.outbox(at) } : {}),
      };
    });
    const head = entry ?? (await ledgerHead(models.PostState, post._id));
    if (!head) return null;
    // Also on a repeat (a redelivery after a crash between the two writes): the op makes it once.
    // The post's listed state first (a badge or a hidden post changes at once), then its rating.
    await models.Post.updateOne({ _id: post._id }, { $set: { hidden: head.hidden, verified: head.verified } });
    await applyRating(head);
    if (entry?.outbox) deps.kick();
    return entry;
  }

  async function insertPost(doc: Omit<PostDoc, 'outbox' | 'hidden' | 'pendingReview'>): Promise<PostDoc> {
    const data: EventData<'community.post.published'> = {
      postId: doc._id,
      memberId: doc.memberId,
      kind: doc.showcase ? 'SHOWCASE' : 'POST',
      verified: doc.verified,
      publishedAt: doc.at.toISOString(),
      ...(doc.productId ? { productId: doc.productId } : {}),
      ...(doc.groupId ? { groupId: doc.groupId } : {}),
      ...(doc.showcase ? { orderId: doc.showcase.orderId, rating: doc.showcase.rating } : {}),
    };
    const post: PostDoc = {
      ...doc,
      hidden: false,
      pendingReview: false,
      outbox: outboxRecord('community.post.published', data, randomUUID(), doc.at),
    };
    await models.Post.create(post);
    await changeState(post, 'PUBLISH', {});
    deps.kick();
    return post;
  }

  /** Whether an order's refunds reached its total. */
  async function fullyRefunded(orderId: string, total: number): Promise<boolean> {
    const refunds = await models.OrderRefund.find({ orderId }, { amount: 1 }).lean();
    // A zero-total order (an ambassador's trial) is fully refunded by its one refund of 0, never before.
    return refunds.length > 0 && refunds.reduce((s, r) => s + (r.amount ?? 0), 0) >= total;
  }

  async function flushNow(): Promise<void> {
    const batch = [...pendingLikes];
    pendingLikes.clear();
    for (const [postId, delta] of batch) {
      try {
        await appendToLedger(models.PostLikeEntry, postId, (head) => ({ delta, total: (head?.total ?? 0) + delta, at: now() }));
      } catch (err) {
        pendingLikes.set(postId, (pendingLikes.get(postId) ?? 0) + delta);
        deps.logger.warn({ err, postId }, 'post likes flush failed');
      }
    }
  }

  return {
    /** A member's post: 1 to 1000 characters without a banned word, up to 9 https images, an optional product and group (theirs). */
    async publish(viewer: Viewer | null, input: PublishPostInput): Promise<PostDoc> {
      const member = requireRole(viewer, 'CUSTOMER');
      const body = text(input.body, 'body', POST_LIMITS.body);
      const imgs = images(input.images);
      const productId = optionalText(input.productId, 'productId', POST_LIMITS.id);
      const groupId = optionalText(input.groupId, 'groupId', POST_LIMITS.id);
      await refuseBanned(body, 'body');
      if (groupId) {
        if (!(await deps.core.Group.exists({ _id: groupId }))) throw notFound('Group');
        if (!(await deps.core.GroupMembership.exists({ _id: `${groupId}:${member.id}` })))
          throw forbidden('Only members of the group post in it');
      }
      return insertPost({
        _id: new Types.ObjectId().toHexString(),
        memberId: member.id,
        body,
        images: imgs,
        productId,
        groupId,
        showcase: null,
        verified: false,
        at: now(),
      });
    },

    /** A group post on a member's behalf (a group rhythm's occurrence): the caller has decided it, by its claim, and chose the id. */
    async publishForGroup(input: { id: string; memberId: string; groupId: string; body: string }): Promise<PostDoc> {
      const body = text(input.body, 'body', POST_LIMITS.body);
      const doc = {
        _id: input.id,
        memberId: input.memberId,
        body,
        images: [],
        groupId: input.groupId,
        showcase: null,
        verified: false,
        at: now(),
      };
      return insertPost({ ...doc, productId: null });
    },

    /** Whether the member published a shown showcase at or after `since` (read by author). */
    async hasShowcaseSince(memberId: string, since: Date): Promise<boolean> {
      return !!(await models.Post.exists({ memberId, showcase: { $ne: null }, hidden: false, at: { $gte: since } }));
    },

    /**
     * A showcase (晒单) of a paid order line by its buyer, rated 1 to 5: the line must be paid and the
     * order not fully refunded (BAD_USER_INPUT), the viewer its buyer (FORBIDDEN), one per line (CONFLICT).
     */
    async showcase(viewer: Viewer | null, input: ShowcaseInput): Promise<PostDoc> {
      const member = requireRole(viewer, 'CUSTOMER');
      const orderId = text(input.orderId, 'orderId', POST_LIMITS.id);
      const skuId = text(input.skuId, 'skuId', POST_LIMITS.id);
      const rating = wholeNumber(input.rating, 'rating', 1, 5);
      const body = text(input.body, 'body', POST_LIMITS.body);
      const imgs = images(input.images);
      await refuseBanned(body, 'body');
      const order = await models.PaidOrder.findById(orderId).lean();
      const line = order?.lines.find((l) => l.skuId === skuId);
      if (!order || !line) throw badInput('No paid order line to show', 'skuId');
      if (order.memberId !== member.id) throw forbidden('Only the buyer shows an order');
      if (await fullyRefunded(orderId, order.total)) throw badInput('The order was refunded', 'orderId');
      const postId = new Types.ObjectId().toHexString();
      if (!(await claimOnce(models.ShowcaseClaim, { _id: `${orderId}:${skuId}`, postId, memberId: member.id, at: now() }))) {
        throw conflict('This order line already has a showcase');
      }
      const post = await insertPost({
        _id: postId,
        memberId: member.id,
        body,
        images: imgs,
        productId: line.productId,
        groupId: null,
        showcase: { orderId, skuId, rating },
        verified: true,
        at: now(),
      });
      await deps.showcasePublished?.(post).catch((err: unknown) => deps.logger.warn({ err, postId }, 'showcase reward failed'));
      return post;
    },

    async post(viewer: Viewer | null, id: string): Promise<PostDoc | null> {
      const post = await models.Post.findById(id).lean<PostDoc>();
      return post && (!post.hidden || isStaff(viewer)) ? post : null;
    },

    /** Shown posts, newest first; of a group or product when named (showcases only with `showcases`). */
    async list(args: {
      first?: number | null;
      after?: string | null;
      groupId?: string | null;
      productId?: string | null;
      showcases?: boolean;
    }) {
      const first = pageSize(args.first, POST_LIMITS.page);
      const filter: Record<string, unknown> = { hidden: false };
      if (args.groupId) filter.groupId = args.groupId;
      if (args.productId) filter.productId = args.productId;
      if (args.showcases) filter.showcase = { $ne: null };
      const rows = await models.Post.find({ ...filter, ...afterTimeCursor(decodeTimeCursor(args.after)) })
        .sort({ at: -1, _id: -1 })
        .limit(first + 1)
        .lean<PostDoc[]>();
      return timePage(rows, first, (p) => p);
    },

    /** The product's rating from its ledger head: exact, no scan. */
    async rating(productId: string): Promise<{ average: number | null; count: number }> {
      const head = await ledgerHead(models.ProductRating, productId);
      const count = head?.count ?? 0;
      return { average: count ? Math.round(((head?.sum ?? 0) / count) * 100) / 100 : null, count };
    },

    async comment(viewer: Viewer | null, postId: string, raw: string) {
      const member = requireRole(viewer, 'CUSTOMER');
      const body = text(raw, 'body', POST_LIMITS.comment);
      await refuseBanned(body, 'body');
      await shownPost(viewer, postId);
      const at = now();
      const slot = Math.floor(at.getTime() / POST_LIMITS.commentIntervalMs);
      const doc = { _id: `${postId}:${member.id}:${slot}`, postId, memberId: member.id, body, at };
      try {
        await models.PostComment.create(doc);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        throw new AppError('RATE_LIMITED', 'One comment every few seconds, please');
      }
      return doc;
    },

    async comments(postId: string, args: { first?: number | null; after?: string | null }) {
      const first = pageSize(args.first, POST_LIMITS.page);
      const rows = await models.PostComment.find({ postId, ...afterTimeCursor(decodeTimeCursor(args.after)) })
        .sort({ at: -1, _id: -1 })
        .limit(first + 1)
        .lean();
      return timePage(rows, first, (c) => c);
    },

    /** Counts likes in memory (no write per like); returns the total as this replica knows it. */
    async like(viewer: Viewer | null, postId: string, count: number): Promise<number> {
      requireRole(viewer, 'CUSTOMER');
      const n = wholeNumber(count, 'count', 1, POST_LIMITS.likesPerCall);
      await shownPost(viewer, postId);
      pendingLikes.set(postId, (pendingLikes.get(postId) ?? 0) + n);
      return this.likes(postId);
    },

    /** The post's likes: the ledger head's total plus this replica's likes not yet flushed. */
    async likes(postId: string): Promise<number> {
      const head = await ledgerHead(models.PostLikeEntry, postId);
      return (head?.total ?? 0) + (pendingLikes.get(postId) ?? 0);
    },

    flushLikes(): Promise<void> {
      flushing = flushing.then(flushNow);
      return flushing;
    },

    /** A member reports a post, once (again is a no-op); it joins the staff review queue. */
    async report(viewer: Viewer | null, postId: string, rawReason?: string | null): Promise<boolean> {
      const member = requireRole(viewer, 'CUSTOMER');
      const reason = optionalText(rawReason, 'reason', POST_LIMITS.reason);
      await shownPost(viewer, postId);
      if (await claimOnce(models.PostReport, { _id: `${postId}:${member.id}`, postId, memberId: member.id, reason, at: now() })) {
        await models.Post.updateOne({ _id: postId }, { $set: { pendingReview: true } });
      }
      return true;
    },

    async reviewQueue(viewer: Viewer | null, first?: number | null): Promise<PostDoc[]> {
      requireRole(viewer, 'STAFF');
      return models.Post.find({ pendingReview: true }).sort({ at: 1, _id: 1 }).limit(pageSize(first, POST_LIMITS.page)).lean<PostDoc[]>();
    },

    /** Members who reported the post (one report each), counted from the reports. */
    async reportCount(postId: string): Promise<number> {
      return (await models.PostReport.find({ postId }, { _id: 1 }).lean()).length;
    },

    /** Staff hide (or restore) a post with a reason; hiding takes it off every public list and its product's rating. */
    async moderate(viewer: Viewer | null, postId: string, hide: boolean, rawReason: string): Promise<PostDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const reason = text(rawReason, 'reason', POST_LIMITS.reason);
      const post = await models.Post.findById(postId).lean<PostDoc>();
      if (!post) throw notFound('Post');
      const outbox = hide
        ? (at: Date) =>
            outboxRecord(
              'community.post.removed',
              { postId, memberId: post.memberId, reason, removedAt: at.toISOString() },
              randomUUID(),
              at,
            )
        : undefined;
      await changeState(post, hide ? 'HIDE' : 'RESTORE', { hidden: hide }, { reason, by: staff.id, outbox });
      // Restoring does not grant again: a reward taken back stays taken back.
      if (hide && post.showcase) await deps.showcaseRemoved?.(postId, 'HIDDEN');
      await models.Post.updateOne({ _id: postId }, { $set: { pendingReview: false } });
      return (await models.Post.findById(postId).lean<PostDoc>())!;
    },

    /** `orders.order.paid`: the order's lines join the read model (the order id is the claim). */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      await claimOnce(models.PaidOrder, {
        _id: data.orderId,
        memberId: data.memberId,
        total: data.total,
        lines: data.lines.map((l) => ({ skuId: l.skuId, productId: l.productId })),
        paidAt: new Date(data.paidAt),
      });
    },

    /** `orders.order.refunded`: recorded once per refund; a fully refunded order's showcases lose the badge and leave the rating. */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      await claimOnce(models.OrderRefund, {
        _id: data.refundId,
        orderId: data.orderId,
        amount: data.amount,
        at: new Date(data.refundedAt),
      });
      const order = await models.PaidOrder.findById(data.orderId).lean();
      if (!order || !(await fullyRefunded(order._id, order.total))) return;
      for (const post of await models.Post.find({ 'showcase.orderId': data.orderId }).lean<PostDoc[]>()) {
        await changeState(post, 'UNVERIFY', { verified: false }, { reason: 'order refunded' });
        await deps.showcaseRemoved?.(post._id, 'REFUNDED');
      }
    },

    /** The staff-edited list posts and comments are checked against (applies on every replica within 5 s). */
    bannedWords,
  };
}

export type PostService = ReturnType<typeof createPostService>;
