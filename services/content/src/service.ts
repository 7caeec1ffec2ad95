import { Types } from 'mongoose';
import {
  badInput,
  byIdLoader,
  claimOnce,
  isStaff,
  notFound,
  paginate,
  requireRole,
  text,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { ArticleDoc, ArticleType, Models } from './model';

export interface ContentDeps {
  models: Models;
  now?: () => Date;
}

export const ARTICLE_TYPES: readonly ArticleType[] = ['PRODUCT', 'KNOWLEDGE', 'ACTIVITY', 'STORY'];

export const LIMITS = {
  title: 120,
  summary: 300,
  body: 100_000,
  seoTitle: 70,
  seoDescription: 160,
  relatedProducts: 20,
  productId: 64,
} as const;

export interface CreateArticleInput {
  title: string;
  type: ArticleType;
  summary: string;
  body: string;
  relatedProductIds?: readonly string[] | null;
  seo?: { title?: string | null; description?: string | null } | null;
}

// Code points, not UTF-16 units, like the kit's `text`: a Chinese title's length is what an editor counts.
const clip = (s: string, max: number) => [...s].slice(0, max).join('');

function productIds(raw: readonly string[] | null | undefined): string[] {
  const ids = [...new Set((raw ?? []).map((id) => id.trim()))];
  if (ids.length > LIMITS.relatedProducts) throw badInput(`At most ${LIMITS.relatedProducts} related products`, 'relatedProductIds');
  if (ids.some((id) => id.length < 1 || id.length > LIMITS.productId)) throw badInput('Invalid product id', 'relatedProductIds');
  return ids;
}

export function createContentService(deps: ContentDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  /** Drafts exist only for staff: to everyone else an unpublished article is simply absent. */
  function visible(viewer: Viewer | null, article: ArticleDoc | null): ArticleDoc | null {
    if (!article) return null;
    return article.status === 'PUBLISHED' || isStaff(viewer) ? article : null;
  }

  return {
    visible,

    listArticles(viewer: Viewer | null, args: PageArgs & { type?: ArticleType | null }) {
      return paginate(
        models.Article,
        {
          ...(isStaff(viewer) ? {} : { status: 'PUBLISHED' }),
          ...(args.type ? { type: args.type } : {}),
        },
        args,
      );
    },

    /** Validates everything before writing anything; a new article is always a draft. */
    async createArticle(viewer: Viewer | null, input: CreateArticleInput): Promise<ArticleDoc> {
      requireRole(viewer, 'STAFF');
      if (!ARTICLE_TYPES.includes(input.type)) throw badInput('Unknown article type', 'type');
      const title = text(input.title, 'title', LIMITS.title);
      const summary = text(input.summary, 'summary', LIMITS.summary);
      const body = text(input.body, 'body', LIMITS.body);
      const seo = {
        title: input.seo?.title != null ? text(input.seo.title, 'seo.title', LIMITS.seoTitle) : clip(title, LIMITS.seoTitle),
        description:
          input.seo?.description != null
            ? text(input.seo.description, 'seo.description', LIMITS.seoDescription)
            : clip(summary, LIMITS.seoDescription),
      };
      const doc: ArticleDoc = {
        _id: new Types.ObjectId(),
        title,
        type: input.type,
        summary,
        body,
        status: 'DRAFT',
        publishedAt: null,
        seo,
        relatedProductIds: productIds(input.relatedProductIds),
        createdAt: now(),
      };
      await models.Article.create(doc);
      return doc;
    },

    /**
     * Idempotent: the first publication claims the moment; every caller (a racing editor, a
     * retry after a crash between claim and write) then writes that same moment.
     */
    async publishArticle(viewer: Viewer | null, articleId: string): Promise<ArticleDoc> {
      requireRole(viewer, 'STAFF');
      if (!Types.ObjectId.isValid(articleId)) throw badInput('Invalid article id', 'articleId');
      const article = await models.Article.findById(articleId).lean<ArticleDoc>();
      if (!article) throw notFound('Article');
      if (article.status === 'PUBLISHED') return article;
      const claimId = `publish:${articleId}`;
      await claimOnce(models.Claim, { _id: claimId, at: now() });
      const claim = await models.Claim.findById(claimId).lean();
      const publishedAt = claim?.at ?? now();
      await models.Article.updateOne({ _id: article._id }, { $set: { status: 'PUBLISHED', publishedAt } });
      return { ...article, status: 'PUBLISHED', publishedAt };
    },

    loaders() {
      return {
        article: byIdLoader(models.Article),
      };
    },
  };
}

export type ContentService = ReturnType<typeof createContentService>;

export interface Context extends BaseContext {
  service: ContentService;
  loaders: ReturnType<ContentService['loaders']>;
}
