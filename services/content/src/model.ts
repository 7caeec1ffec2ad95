import { Schema, Types, type Connection } from 'mongoose';

export type ArticleType = 'PRODUCT' | 'KNOWLEDGE' | 'ACTIVITY' | 'STORY';
export type ArticleStatus = 'DRAFT' | 'PUBLISHED';

export interface ArticleDoc {
  _id: Types.ObjectId;
  title: string;
  type: ArticleType;
  summary: string;
  body: string;
  status: ArticleStatus;
  publishedAt?: Date | null;
  seo: { title: string; description: string };
  /** Catalog product ids as given; catalog resolves them, content never reads catalog data. */
  relatedProductIds: string[];
  createdAt: Date;
}

/**
 * At-most-once facts (an article's publication). The claim, not the article, is the source of
 * truth for `publishedAt`: FerretDB would let two racing conditional updates both win.
 */
export interface ClaimDoc {
  _id: string;
  at: Date;
}

export function createModels(db: Connection) {
  const articleSchema = new Schema<ArticleDoc>(
    {
      title: { type: String, required: true },
      type: { type: String, required: true },
      summary: { type: String, required: true },
      body: { type: String, required: true },
      status: { type: String, required: true, default: 'DRAFT' },
      publishedAt: Date,
      seo: { title: String, description: String },
      relatedProductIds: { type: [String], default: [] },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );
  articleSchema.index({ status: 1, type: 1 });

  return {
    Article: db.model<ArticleDoc>('Article', articleSchema, 'articles'),
    Claim: db.model<ClaimDoc>('Claim', new Schema<ClaimDoc>({ _id: String, at: Date }, { versionKey: false }), 'claims'),
  };
}
export type Models = ReturnType<typeof createModels>;
