import { Schema, type Connection } from 'mongoose';
import {
  bannedWordsModel,
  ledgerIndexes,
  outboxPath,
  type LedgerEntry,
  type OpLedgerEntry,
  type OutboxRecord,
} from '@flywheel/service-kit';

/** A showcase (晒单): the paid order line it is about and the buyer's rating. */
export interface ShowcaseFields {
  orderId: string;
  skuId: string;
  rating: number;
}

/**
 * A member's post. Its content never changes after the insert (which carries the published event);
 * `hidden` and `verified` are projections of the post's state ledger (PostStateDoc), rebuilt from it.
 */
export interface PostDoc {
  _id: string;
  memberId: string;
  body: string;
  images: string[];
  productId?: string | null;
  groupId?: string | null;
  showcase?: ShowcaseFields | null;
  /** Projection: a showcase whose order line is paid and not fully refunded. */
  verified: boolean;
  /** Projection: hidden by staff; a hidden post leaves every public list. */
  hidden: boolean;
  /** Projection for the staff review queue: reported since its last review. */
  pendingReview: boolean;
  at: Date;
  outbox?: OutboxRecord;
}

/**
 * The state history of a post (accountId = postId): hidden / verified after each change, and what
 * the change did to its product's rating (`sum`, `count` deltas), applied once under op `${postId}:${seq}`.
 */
export interface PostStateDoc extends LedgerEntry {
  kind: 'PUBLISH' | 'HIDE' | 'RESTORE' | 'UNVERIFY';
  hidden: boolean;
  verified: boolean;
  productId?: string | null;
  ratingSum: number;
  ratingCount: number;
  reason?: string | null;
  by?: string | null;
  at: Date;
  outbox?: OutboxRecord;
}

/** A product's rating (accountId = productId): running sum and count of counted showcase ratings. */
export interface ProductRatingDoc extends OpLedgerEntry {
  sum: number;
  count: number;
  at: Date;
}

/** The claim of one showcase per paid order line: `_id` = `${orderId}:${skuId}`. */
export interface ShowcaseClaimDoc {
  _id: string;
  postId: string;
  memberId: string;
  at: Date;
}

/** Read model of a paid order (`_id` = orderId), from `orders.order.paid`. */
export interface PaidOrderDoc {
  _id: string;
  memberId: string;
  total: number;
  lines: { skuId: string; productId: string }[];
  paidAt: Date;
}

/** One refund of an order (`_id` = refundId), from `orders.order.refunded`: the order's refunds sum to what came back. */
export interface OrderRefundDoc {
  _id: string;
  orderId: string;
  amount: number;
  at: Date;
}

/** A comment; `_id` = `${postId}:${memberId}:${slot}` is the per-member rate claim. */
export interface PostCommentDoc {
  _id: string;
  postId: string;
  memberId: string;
  body: string;
  at: Date;
}

/** A member's report of a post; `_id` = `${postId}:${memberId}`, once per member. */
export interface PostReportDoc {
  _id: string;
  postId: string;
  memberId: string;
  reason: string | null;
  at: Date;
}

/** One flush of a post's likes by one replica (accountId = postId). */
export interface PostLikeEntryDoc extends LedgerEntry {
  delta: number;
  total: number;
  at: Date;
}

/** Staff's showcase reward (好评送积分/券) as a versioned ledger (accountId `showcase-reward`): the head is the rule. */
export interface ShowcaseRewardRuleDoc extends LedgerEntry {
  /** Null: no coupon. */
  templateId: string | null;
  /** Points besides the coupon (0: none; absent on rules saved before points existed). */
  points?: number;
  minRating: number;
  at: Date;
  by: string;
}

/**
 * A showcase's reward (`_id` = postId, the once-per-post claim). The coupon and the points are
 * granted keyed `community:showcase:<postId>` at membership, so retrying a PENDING one never
 * grants twice; the other fields record membership's answers. Only the grant writes it (every
 * write carries all its fields, so two writers racing write the same whole answer).
 */
export interface ShowcaseRewardDoc {
  _id: string;
  memberId: string;
  /** Null: the rule gave points only. */
  templateId: string | null;
  /** Points the rule gave (0: none). */
  points?: number;
  /** PENDING until every part has an answer; GRANTED when a part was granted; REFUSED when all were refused. */
  status: 'PENDING' | 'GRANTED' | 'REFUSED';
  couponId?: string | null;
  /** Membership's final refusal of the coupon (its error code). */
  couponRefusal?: string | null;
  pointsGranted?: boolean;
  pointsRefusal?: string | null;
  at: Date;
}

/**
 * The taking back of a showcase's reward (`_id` = postId): its insert is the claim that the reward
 * is reversed, once, whichever trigger (moderation, a full refund) came first. Only the reversal
 * writes it, every write carrying all its fields. REVERSING until membership answered every part;
 * then REVERSED, or REVERSAL_SHORTFALL when something could not be taken back (the coupon already
 * used, points already spent) — recorded here, never silently dropped.
 */
export interface ShowcaseRewardReversalDoc {
  _id: string;
  memberId: string;
  trigger: 'HIDDEN' | 'REFUNDED';
  status: 'REVERSING' | 'REVERSED' | 'REVERSAL_SHORTFALL';
  /** Membership's answer for the coupon: REVOKED, USED (not taken), NONE (nothing under the key). */
  couponState?: string | null;
  pointsTaken?: number | null;
  pointsShortfall?: number | null;
  at: Date;
  settledAt?: Date | null;
}

/** A product as community knows one: by key only (catalog owns the rest). */
export interface ProductRef {
  id: string;
}

const ledger = <T>(fields: Record<string, unknown>, collection: string) => {
  const s = new Schema<T>(
    { _id: String, accountId: { type: String, required: true }, seq: { type: Number, required: true }, ...fields },
    { collection, versionKey: false },
  );
  for (const ix of ledgerIndexes) s.index(ix);
  return s;
};

export function createPostModels(db: Connection) {
  const post = new Schema<PostDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      body: { type: String, required: true },
      images: { type: [String], default: [] },
      productId: { type: String, default: null },
      groupId: { type: String, default: null },
      showcase: { type: new Schema<ShowcaseFields>({ orderId: String, skuId: String, rating: Number }, { _id: false }), default: null },
      verified: { type: Boolean, default: false },
      hidden: { type: Boolean, default: false },
      pendingReview: { type: Boolean, default: false },
      at: { type: Date, required: true },
      outbox: outboxPath,
    },
    { collection: 'community_posts', versionKey: false },
  );
  post.index({ at: -1 });
  post.index({ productId: 1, at: -1 });
  post.index({ groupId: 1, at: -1 });
  post.index({ 'showcase.orderId': 1 });
  post.index({ pendingReview: 1 });

  const state = ledger<PostStateDoc>(
    {
      kind: { type: String, required: true },
      hidden: Boolean,
      verified: Boolean,
      productId: { type: String, default: null },
      ratingSum: Number,
      ratingCount: Number,
      reason: { type: String, default: null },
      by: { type: String, default: null },
      at: Date,
      outbox: outboxPath,
    },
    'community_post_states',
  );
  const rating = ledger<ProductRatingDoc>(
    { op: { type: String, required: true }, sum: Number, count: Number, at: Date },
    'community_product_ratings',
  );
  rating.index({ op: 1 }, { unique: true });
  const likes = ledger<PostLikeEntryDoc>({ delta: Number, total: Number, at: Date }, 'community_post_likes');

  const claim = new Schema<ShowcaseClaimDoc>(
    { _id: String, postId: String, memberId: String, at: Date },
    { collection: 'community_showcase_claims', versionKey: false },
  );
  const paid = new Schema<PaidOrderDoc>(
    {
      _id: String,
      memberId: { type: String, required: true },
      total: { type: Number, required: true },
      lines: { type: [new Schema({ skuId: String, productId: String }, { _id: false })], default: [] },
      paidAt: Date,
    },
    { collection: 'community_paid_orders', versionKey: false },
  );
  const refund = new Schema<OrderRefundDoc>(
    { _id: String, orderId: { type: String, required: true }, amount: Number, at: Date },
    { collection: 'community_order_refunds', versionKey: false },
  );
  refund.index({ orderId: 1 });
  const comment = new Schema<PostCommentDoc>(
    { _id: String, postId: { type: String, required: true }, memberId: String, body: String, at: Date },
    { collection: 'community_post_comments', versionKey: false },
  );
  comment.index({ postId: 1, at: -1 });
  const report = new Schema<PostReportDoc>(
    { _id: String, postId: { type: String, required: true }, memberId: String, reason: { type: String, default: null }, at: Date },
    { collection: 'community_post_reports', versionKey: false },
  );
  report.index({ postId: 1 });

  const rule = ledger<ShowcaseRewardRuleDoc>(
    { templateId: { type: String, default: null }, points: { type: Number, default: 0 }, minRating: Number, at: Date, by: String },
    'community_showcase_reward_rules',
  );
  const reward = new Schema<ShowcaseRewardDoc>(
    {
      _id: String,
      memberId: String,
      templateId: { type: String, default: null },
      points: { type: Number, default: 0 },
      status: { type: String, required: true },
      couponId: { type: String, default: null },
      couponRefusal: { type: String, default: null },
      pointsGranted: { type: Boolean, default: false },
      pointsRefusal: { type: String, default: null },
      at: Date,
    },
    { collection: 'community_showcase_rewards', versionKey: false },
  );
  reward.index({ status: 1 });
  const reversal = new Schema<ShowcaseRewardReversalDoc>(
    {
      _id: String,
      memberId: String,
      trigger: { type: String, required: true },
      status: { type: String, required: true },
      couponState: { type: String, default: null },
      pointsTaken: { type: Number, default: null },
      pointsShortfall: { type: Number, default: null },
      at: Date,
      settledAt: { type: Date, default: null },
    },
    { collection: 'community_showcase_reward_reversals', versionKey: false },
  );
  reversal.index({ status: 1 });

  return {
    ShowcaseRewardRule: db.model<ShowcaseRewardRuleDoc>('CommunityShowcaseRewardRule', rule),
    ShowcaseReward: db.model<ShowcaseRewardDoc>('CommunityShowcaseReward', reward),
    ShowcaseRewardReversal: db.model<ShowcaseRewardReversalDoc>('CommunityShowcaseRewardReversal', reversal),
    Post: db.model<PostDoc>('CommunityPost', post),
    PostState: db.model<PostStateDoc>('CommunityPostState', state),
    ProductRating: db.model<ProductRatingDoc>('CommunityProductRating', rating),
    PostLikeEntry: db.model<PostLikeEntryDoc>('CommunityPostLike', likes),
    /** The staff-edited banned-words list (the kit's versioned ledger). */
    BannedWords: bannedWordsModel(db, 'CommunityBannedWords', 'community_banned_words'),
    ShowcaseClaim: db.model<ShowcaseClaimDoc>('CommunityShowcaseClaim', claim),
    PaidOrder: db.model<PaidOrderDoc>('CommunityPaidOrder', paid),
    OrderRefund: db.model<OrderRefundDoc>('CommunityOrderRefund', refund),
    PostComment: db.model<PostCommentDoc>('CommunityPostComment', comment),
    PostReport: db.model<PostReportDoc>('CommunityPostReport', report),
  };
}
export type PostModels = ReturnType<typeof createPostModels>;
