import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { BlockDoc, ItemDoc, RevisionEntry } from './model';
import type { Context } from './service';

const BLOCK_TYPES = {
  TEXT: 'TextBlock',
  IMAGE: 'ImageBlock',
  VIDEO: 'VideoBlock',
  PRODUCT_CARD: 'ProductCardBlock',
  LIVE_ROOM_CARD: 'LiveRoomCardBlock',
  COUPON_CARD: 'CouponCardBlock',
} as const;
const refOf = (b: BlockDoc) => ('refId' in b ? b.refId : '');

/** The fields articles and pages resolve alike (the pages module reuses them). */
export const itemFields = {
  id: (d: ItemDoc) => d._id.toHexString(),
  slug: (d: ItemDoc) => d.slug || d._id.toHexString(),
  summary: (d: ItemDoc) => d.summary ?? '',
  body: (d: ItemDoc) => d.body ?? '',
  blocks: (d: ItemDoc) => d.blocks ?? [],
  tags: (d: ItemDoc) => d.tags ?? [],
  revision: (d: ItemDoc) => d.revision ?? 0,
  updatedAt: (d: ItemDoc) => d.updatedAt ?? d.publishedAt ?? d.createdAt,
  seo: (d: ItemDoc, kind: 'article' | 'page', { editorial }: Context) => ({
    title: d.seo?.title ?? d.title,
    description: d.seo?.description ?? '',
    keywords: d.seo?.keywords ?? [],
    canonicalUrl: editorial.canonicalUrl(kind, d),
    ogImageUrl: d.seo?.ogImageUrl ?? d.coverUrl ?? null,
  }),
};

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    articles: (_, args, { viewer, service }) => service.listArticles(viewer, args),
    article: async (_, { id }, { viewer, service, loaders }) => service.visible(viewer, await loaders.article.load(id)),
    articleBySlug: (_, { slug }, { viewer, service }) => service.articleBySlug(viewer, slug),
    sitemap: (_, __, { editorial }) => editorial.sitemap(),
  },
  Mutation: {
    createArticle: (_, { input }, { viewer, service }) => service.createArticle(viewer, input),
    publishArticle: (_, { input }, { viewer, service }) => service.publishArticle(viewer, input.articleId),
    updateArticle: (_, { input: { articleId, ...patch } }, { viewer, service }) => service.updateArticle(viewer, articleId, patch),
    scheduleArticle: (_, { input }, { viewer, service }) => service.moveArticle(viewer, input.articleId, 'SCHEDULE', input.publishAt),
    archiveArticle: (_, { input }, { viewer, service }) => service.moveArticle(viewer, input.articleId, 'ARCHIVE'),
  },
  Article: {
    __resolveReference: async (ref, { viewer, service, loaders }) => service.visible(viewer, await loaders.article.load(ref.id)),
    id: itemFields.id,
    slug: itemFields.slug,
    summary: itemFields.summary,
    body: itemFields.body,
    blocks: itemFields.blocks,
    tags: itemFields.tags,
    revision: itemFields.revision,
    updatedAt: itemFields.updatedAt,
    seo: (a, _, ctx) => itemFields.seo(a, 'article', ctx),
    relatedProducts: (a) => a.relatedProductIds.map((id) => ({ id })),
    revisions: (a, args, { viewer, editorial }) => editorial.revisions(viewer, 'article', a._id.toHexString(), args),
  },
  ContentBlock: {
    __resolveType: (b) => BLOCK_TYPES[b.kind],
  },
  ProductCardBlock: { product: (b) => ({ id: refOf(b) }) },
  LiveRoomCardBlock: { roomId: refOf, room: (b) => ({ id: refOf(b) }) },
  CouponCardBlock: { couponTemplateId: refOf, couponTemplate: (b) => ({ id: refOf(b) }) },
  ContentRevision: {
    number: (r: RevisionEntry) => r.seq,
    summary: (r) => r.summary ?? '',
    body: (r) => r.body ?? '',
    tags: (r) => r.tags ?? [],
    editedAt: (r) => r.at,
  },
  SitemapEntry: {
    kind: (e) => (e.kind === 'article' ? 'ARTICLE' : 'PAGE'),
    id: (e) => e.doc._id.toHexString(),
    slug: (e) => itemFields.slug(e.doc),
    url: (e, _, { editorial }) => editorial.canonicalUrl(e.kind, e.doc),
  },
};
