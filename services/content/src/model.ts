import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type OutboxRecord } from '@flywheel/service-kit';

export type ArticleType = 'PRODUCT' | 'KNOWLEDGE' | 'ACTIVITY' | 'STORY';
export type ContentStatus = 'DRAFT' | 'SCHEDULED' | 'PUBLISHED' | 'ARCHIVED';
/** What a slug, a revision ledger and a lifecycle ledger belong to. */
export type ContentKind = 'article' | 'page';

export type BlockKind = 'TEXT' | 'IMAGE' | 'VIDEO' | 'PRODUCT_CARD' | 'LIVE_ROOM_CARD' | 'COUPON_CARD';
/** One block of a rich body: only the fields of its kind are set. */
export type BlockDoc =
  | { kind: 'TEXT'; text: string }
  | { kind: 'IMAGE'; url: string; alt: string | null; caption: string | null }
  | { kind: 'VIDEO'; url: string; posterUrl: string | null; caption: string | null }
  | { kind: 'PRODUCT_CARD'; refId: string }
  | { kind: 'LIVE_ROOM_CARD'; refId: string }
  | { kind: 'COUPON_CARD'; refId: string };

export interface SeoDoc {
  title: string;
  description: string;
  keywords: string[];
  /** Set only when staff override the derived canonical URL. */
  canonicalUrl?: string | null;
  ogImageUrl?: string | null;
}

/** What every edit of an article or page may change: a revision holds all of it. */
export interface ContentFields {
  title: string;
  summary: string;
  body: string;
  blocks: BlockDoc[];
  coverUrl: string | null;
  tags: string[];
  author: string | null;
  slug: string;
  seo: SeoDoc;
  /** Articles: catalog product ids as given; catalog resolves them, content never reads catalog data. */
  relatedProductIds: string[];
}

/**
 * The read model of an article or page: rebuilt whole from its revision and lifecycle ledgers
 * (`sync` in service.ts), never updated field by field, so a lagging write is repaired by the next
 * rebuild. Documents written before the ledgers existed have neither: they stand for their own
 * first state.
 */
export interface ItemDoc extends ContentFields {
  _id: Types.ObjectId;
  status: ContentStatus;
  /** Null while never published. */
  publishedAt?: Date | null;
  /** When a SCHEDULED item goes out. */
  publishAt?: Date | null;
  /** The newest revision's number (absent for a document older than revisions). */
  revision?: number;
  /** The seq of the newest lifecycle entry the projection reflects (absent before the first move). */
  stage?: number;
  updatedAt?: Date;
  createdAt: Date;
}

export interface ArticleDoc extends ItemDoc {
  type: ArticleType;
}

/** An edit: the whole content after it, entry `${kind}:${id}:${seq}`, seq = revision number. */
export interface RevisionEntry extends ContentFields {
  _id: string;
  accountId: string;
  seq: number;
  editedBy: string;
  at: Date;
}

/** A lifecycle move; the head is the item's status. Publications carry their event. */
export interface LifecycleEntry {
  _id: string;
  accountId: string;
  seq: number;
  status: ContentStatus;
  at: Date;
  by: string;
  publishAt?: Date | null;
  publishedAt?: Date | null;
  outbox?: OutboxRecord;
}

/** A slug taken for good (`${kind}:${slug}`): the item it named first. Old slugs keep redirecting. */
export interface SlugDoc {
  _id: string;
  itemId: string;
  at: Date;
}

/** At-most-once facts. */
export interface ClaimDoc {
  _id: string;
  at: Date;
}

export const blockSchema = new Schema(
  { kind: String, text: String, url: String, alt: String, caption: String, posterUrl: String, refId: String },
  { _id: false },
);
const seoSchema = new Schema(
  { title: String, description: String, keywords: { type: [String], default: [] }, canonicalUrl: String, ogImageUrl: String },
  { _id: false },
);
/** The content fields as a mongoose schema definition, shared by projections and revisions. */
export const contentFieldsDefinition = {
  title: { type: String, required: true },
  summary: { type: String, default: '' },
  body: { type: String, default: '' },
  blocks: { type: [blockSchema], default: [] },
  coverUrl: String,
  tags: { type: [String], default: [] },
  author: String,
  slug: String,
  seo: seoSchema,
  relatedProductIds: { type: [String], default: [] },
};

/** The projection fields every item collection has besides its own (an article's type, a page's kind). */
export const itemDefinition = {
  ...contentFieldsDefinition,
  status: { type: String, required: true, default: 'DRAFT' as ContentStatus },
  publishedAt: Date,
  publishAt: Date,
  revision: Number,
  stage: Number,
  updatedAt: Date,
  createdAt: { type: Date, required: true },
};

export function createModels(db: Connection) {
  const articleSchema = new Schema<ArticleDoc>({ ...itemDefinition, type: { type: String, required: true } }, { versionKey: false });
  articleSchema.index({ status: 1, type: 1 });
  articleSchema.index({ status: 1, publishAt: 1 });

  const revisionSchema = new Schema<RevisionEntry>(
    { ...contentFieldsDefinition, _id: String, accountId: String, seq: Number, editedBy: String, at: Date },
    { versionKey: false },
  );
  revisionSchema.index({ ...ledgerIndexes[0] });
  const lifecycleSchema = new Schema<LifecycleEntry>(
    {
      _id: String,
      accountId: String,
      seq: Number,
      status: String,
      at: Date,
      by: String,
      publishAt: Date,
      publishedAt: Date,
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  lifecycleSchema.index({ ...ledgerIndexes[0] });

  return {
    Article: db.model<ArticleDoc>('Article', articleSchema, 'articles'),
    Revision: db.model<RevisionEntry>('Revision', revisionSchema, 'content_revisions'),
    Lifecycle: db.model<LifecycleEntry>('Lifecycle', lifecycleSchema, 'content_lifecycle'),
    Slug: db.model<SlugDoc>('Slug', new Schema<SlugDoc>({ _id: String, itemId: String, at: Date }, { versionKey: false }), 'slugs'),
    Claim: db.model<ClaimDoc>('Claim', new Schema<ClaimDoc>({ _id: String, at: Date }, { versionKey: false }), 'claims'),
  };
}
export type Models = ReturnType<typeof createModels>;
