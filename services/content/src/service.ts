import {
  badInput,
  byIdLoader,
  isStaff,
  outboxRecord,
  paginate,
  requireRole,
  text,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { ArticleDoc, ArticleType } from './model';

import type { Editorial, EditorialDeps, ItemStore, Move } from './editorial/service';
// Codegen maps the sitemap's type to this file's export (codegen.ts).
export type { SitemapShape } from './editorial/service';
import { ARTICLE_TYPES, contentOf, LIMITS, type ContentPatch, type CreateArticleInput } from './editorial/input';

export interface ArticleBySlugShape {
  article: ArticleDoc;
  canonicalSlug: string;
  redirected: boolean;
}

export interface ContentDeps extends EditorialDeps {
  editorial: Editorial;
}

/** Articles: the core aggregate (pages are the `pages` module). */
export function createContentService(deps: ContentDeps) {
  const { models, editorial } = deps;
  editorial.register({
    kind: 'article',
    model: models.Article,
    path: '/articles',
    published: (doc: ArticleDoc, at, eventId) =>
      outboxRecord(
        'content.article.published',
        {
          articleId: doc._id.toHexString(),
          type: doc.type,
          slug: contentOf(doc, doc._id.toHexString()).slug,
          publishedAt: at.toISOString(),
        },
        eventId,
        at,
      ),
  } as ItemStore<ArticleDoc> as never);

  return {
    editorial,
    visible: editorial.visible,

    listArticles(viewer: Viewer | null, args: PageArgs & { type?: ArticleType | null; tag?: string | null }) {
      return paginate(
        models.Article,
        {
          ...(isStaff(viewer) ? {} : { status: 'PUBLISHED' }),
          ...(args.type ? { type: args.type } : {}),
          ...(args.tag ? { tags: args.tag.trim() } : {}),
        },
        args,
      );
    },

    /** Validates everything before writing anything; a new article is always a draft. */
    createArticle(viewer: Viewer | null, input: CreateArticleInput): Promise<ArticleDoc> {
      requireRole(viewer, 'STAFF');
      if (!ARTICLE_TYPES.includes(input.type)) throw badInput('Unknown article type', 'type');
      text(input.summary, 'summary', LIMITS.summary);
      text(input.body, 'body', LIMITS.body);
      return editorial.create<ArticleDoc>(viewer, 'article', input, { type: input.type });
    },

    /** Idempotent: racing publishes append one PUBLISHED entry, and all answer its `publishedAt`. */
    publishArticle: (viewer: Viewer | null, articleId: string) => editorial.transition<ArticleDoc>(viewer, 'article', articleId, 'PUBLISH'),

    moveArticle: (viewer: Viewer | null, articleId: string, to: Move, publishAt?: Date | string | null) =>
      editorial.transition<ArticleDoc>(viewer, 'article', articleId, to, publishAt),

    updateArticle: (viewer: Viewer | null, articleId: string, patch: ContentPatch) =>
      editorial.edit<ArticleDoc>(viewer, 'article', articleId, patch),

    async articleBySlug(viewer: Viewer | null, slug: string): Promise<ArticleBySlugShape | null> {
      const found = await editorial.bySlug<ArticleDoc>(viewer, 'article', slug);
      return found && { article: found.item, canonicalSlug: found.canonicalSlug, redirected: found.redirected };
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
  editorial: Editorial;
  loaders: ReturnType<ContentService['loaders']>;
}
