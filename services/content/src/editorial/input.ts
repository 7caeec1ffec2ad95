import { badInput, httpUrl, optionalText, text } from '@flywheel/service-kit';
import type { ArticleType, BlockDoc, BlockKind, ContentFields, SeoDoc } from '../model';

// What staff send for an article or a page: bounds, blocks, slugs and SEO, checked before anything
// is written (BAD_USER_INPUT naming the field).

export const ARTICLE_TYPES: readonly ArticleType[] = ['PRODUCT', 'KNOWLEDGE', 'ACTIVITY', 'STORY'];
const BLOCK_KINDS: readonly BlockKind[] = ['TEXT', 'IMAGE', 'VIDEO', 'PRODUCT_CARD', 'LIVE_ROOM_CARD', 'COUPON_CARD'];

export const LIMITS = {
  title: 120,
  summary: 300,
  body: 100_000,
  seoTitle: 70,
  seoDescription: 160,
  keywords: 20,
  keyword: 40,
  relatedProducts: 20,
  productId: 64,
  blocks: 200,
  blockText: 10_000,
  caption: 200,
  url: 2048,
  refId: 64,
  tags: 20,
  tag: 30,
  author: 60,
  slug: 80,
  /** How far ahead a publication may be scheduled. */
  scheduleDays: 366,
  sitemap: 50_000,
  revisionsPage: 100,
} as const;

/** Lowercase ASCII words joined by single hyphens: what goes in a URL unescaped. */
export const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

export interface BlockInput {
  kind: BlockKind;
  text?: string | null;
  url?: string | null;
  alt?: string | null;
  caption?: string | null;
  posterUrl?: string | null;
  refId?: string | null;
}
export interface SeoInput {
  title?: string | null;
  description?: string | null;
  keywords?: readonly string[] | null;
  canonicalUrl?: string | null;
  ogImageUrl?: string | null;
}
/** The content of a new item; on an edit every field is optional (absent = unchanged). */
export interface ContentInput {
  title: string;
  summary?: string | null;
  body?: string | null;
  blocks?: readonly BlockInput[] | null;
  coverUrl?: string | null;
  tags?: readonly string[] | null;
  author?: string | null;
  slug?: string | null;
  seo?: SeoInput | null;
  relatedProductIds?: readonly string[] | null;
}
export type ContentPatch = { [K in keyof ContentInput]?: ContentInput[K] | null };
export interface CreateArticleInput extends ContentInput {
  type: ArticleType;
  summary: string;
  body: string;
}

// Code points, not UTF-16 units, like the kit's `text`: a Chinese title's length is what an editor counts.
const clip = (s: string, max: number) => [...s].slice(0, max).join('');

function productIds(raw: readonly string[] | null | undefined): string[] {
  const ids = [...new Set((raw ?? []).map((id) => id.trim()))];
  if (ids.length > LIMITS.relatedProducts) throw badInput(`At most ${LIMITS.relatedProducts} related products`, 'relatedProductIds');
  if (ids.some((id) => id.length < 1 || id.length > LIMITS.productId)) throw badInput('Invalid product id', 'relatedProductIds');
  return ids;
}

/** Distinct trimmed words, at most `max` of at most `len` characters each. */
function words(raw: readonly string[] | null | undefined, field: string, max: number, len: number): string[] {
  const list = [...new Set((raw ?? []).map((w, i) => text(w, `${field}[${i}]`, len)))];
  if (list.length > max) throw badInput(`At most ${max} ${field}`, field);
  return list;
}

export function slugOf(raw: string | null | undefined, field = 'slug'): string {
  const slug = text(raw, field, LIMITS.slug).toLowerCase();
  if (!SLUG.test(slug)) throw badInput('A slug is lowercase letters and digits joined by single hyphens', field);
  return slug;
}

function block(b: BlockInput, i: number): BlockDoc {
  const f = (name: string) => `blocks[${i}].${name}`;
  const url = (raw: string | null | undefined, name: string) =>
    raw == null || raw.trim() === '' ? null : httpUrl(raw, f(name), LIMITS.url);
  switch (b.kind) {
    case 'TEXT':
      return { kind: 'TEXT', text: text(b.text, f('text'), LIMITS.blockText) };
    case 'IMAGE':
      return {
        kind: 'IMAGE',
        url: httpUrl(b.url, f('url'), LIMITS.url),
        alt: optionalText(b.alt, f('alt'), LIMITS.caption),
        caption: optionalText(b.caption, f('caption'), LIMITS.caption),
      };
    case 'VIDEO':
      return {
        kind: 'VIDEO',
        url: httpUrl(b.url, f('url'), LIMITS.url),
        posterUrl: url(b.posterUrl, 'posterUrl'),
        caption: optionalText(b.caption, f('caption'), LIMITS.caption),
      };
    case 'PRODUCT_CARD':
    case 'LIVE_ROOM_CARD':
    case 'COUPON_CARD':
      return { kind: b.kind, refId: text(b.refId, f('refId'), LIMITS.refId) };
    default:
      throw badInput('Unknown block kind', f('kind'));
  }
}

function blocks(raw: readonly BlockInput[] | null | undefined): BlockDoc[] {
  const list = raw ?? [];
  if (list.length > LIMITS.blocks) throw badInput(`At most ${LIMITS.blocks} blocks`, 'blocks');
  list.forEach((b, i) => {
    if (!BLOCK_KINDS.includes(b.kind)) throw badInput('Unknown block kind', `blocks[${i}].kind`);
  });
  return list.map(block);
}

const optionalUrl = (raw: string | null | undefined, field: string) =>
  raw == null || raw.trim() === '' ? null : httpUrl(raw, field, LIMITS.url);

/**
 * The validated fields a patch sets (absent ones are left out), checked before anything is
 * written. `defaults` fills what a new item derives (SEO from title and summary, slug from id).
 */
export function parsePatch(input: ContentPatch, current: ContentFields | null): Partial<ContentFields> {
  const out: Partial<ContentFields> = {};
  if (input.title != null) out.title = text(input.title, 'title', LIMITS.title);
  if (input.summary != null) out.summary = text(input.summary, 'summary', LIMITS.summary, { optional: true });
  if (input.body != null) out.body = text(input.body, 'body', LIMITS.body, { optional: true });
  if (input.blocks != null) out.blocks = blocks(input.blocks);
  if (input.coverUrl !== undefined) out.coverUrl = optionalUrl(input.coverUrl, 'coverUrl');
  if (input.tags != null) out.tags = words(input.tags, 'tags', LIMITS.tags, LIMITS.tag);
  if (input.author !== undefined) out.author = optionalText(input.author, 'author', LIMITS.author);
  if (input.slug != null) out.slug = slugOf(input.slug);
  if (input.relatedProductIds != null) out.relatedProductIds = productIds(input.relatedProductIds);
  if (input.seo != null) {
    const s = input.seo;
    const base: SeoDoc = current?.seo ?? { title: '', description: '', keywords: [] };
    out.seo = {
      title: s.title != null ? text(s.title, 'seo.title', LIMITS.seoTitle) : base.title,
      description: s.description != null ? text(s.description, 'seo.description', LIMITS.seoDescription) : base.description,
      keywords: s.keywords != null ? words(s.keywords, 'seo.keywords', LIMITS.keywords, LIMITS.keyword) : base.keywords,
      canonicalUrl: s.canonicalUrl !== undefined ? optionalUrl(s.canonicalUrl, 'seo.canonicalUrl') : (base.canonicalUrl ?? null),
      ogImageUrl: s.ogImageUrl !== undefined ? optionalUrl(s.ogImageUrl, 'seo.ogImageUrl') : (base.ogImageUrl ?? null),
    };
  }
  return out;
}

/** A new item's content: the patch over empty fields, SEO derived where left out. */
export function newContent(input: ContentInput, id: string): ContentFields {
  const p = parsePatch(input, null);
  const title = p.title ?? text(input.title, 'title', LIMITS.title);
  const summary = p.summary ?? '';
  const seo = p.seo ?? { title: '', description: '', keywords: [], canonicalUrl: null, ogImageUrl: null };
  return {
    title,
    summary,
    body: p.body ?? '',
    blocks: p.blocks ?? [],
    coverUrl: p.coverUrl ?? null,
    tags: p.tags ?? [],
    author: p.author ?? null,
    slug: p.slug ?? id,
    relatedProductIds: p.relatedProductIds ?? [],
    seo: {
      ...seo,
      title: seo.title || clip(title, LIMITS.seoTitle),
      description: seo.description || clip(summary, LIMITS.seoDescription),
    },
  };
}

export const contentOf = (src: ContentFields, id: string): ContentFields => ({
  title: src.title,
  summary: src.summary ?? '',
  body: src.body ?? '',
  blocks: src.blocks ?? [],
  coverUrl: src.coverUrl ?? null,
  tags: src.tags ?? [],
  author: src.author ?? null,
  // Articles older than slugs are addressed by their id.
  slug: src.slug || id,
  seo: {
    ...src.seo,
    keywords: src.seo?.keywords ?? [],
    canonicalUrl: src.seo?.canonicalUrl ?? null,
    ogImageUrl: src.seo?.ogImageUrl ?? null,
  },
  relatedProductIds: src.relatedProductIds ?? [],
});
