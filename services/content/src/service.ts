import { Types, type Model } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  byIdLoader,
  claimOnce,
  decodeSeqCursor,
  findByIds,
  httpUrl,
  isObjectId,
  isStaff,
  ledgerHead,
  notFound,
  optionalText,
  outboxRecord,
  pageSize,
  paginate,
  requireRole,
  seqPage,
  text,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type {
  ArticleDoc,
  ArticleType,
  BlockDoc,
  BlockKind,
  ContentFields,
  ContentKind,
  ContentStatus,
  ItemDoc,
  LifecycleEntry,
  Models,
  RevisionEntry,
  SeoDoc,
} from './model';

// The editorial core shared by articles and pages (the pages module uses it too): every edit is a
// revision appended to the item's revision ledger, every status change an entry of its lifecycle
// ledger (a publication carries its event), every slug a unique claim. The item's document is a
// projection rebuilt whole from the two ledger heads (docs/concurrency.md).

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
const SLUG = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

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
function newContent(input: ContentInput, id: string): ContentFields {
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

const contentOf = (src: ContentFields, id: string): ContentFields => ({
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

export type Move = 'SCHEDULE' | 'PUBLISH' | 'ARCHIVE';

/** The lifecycle state an item is in: its ledger head, or (before any move) its own document. */
interface State {
  seq: number;
  status: ContentStatus;
  publishedAt: Date | null;
  publishAt: Date | null;
}
const stateOf = (doc: ItemDoc, head: LifecycleEntry | null): State =>
  head
    ? { seq: head.seq, status: head.status, publishedAt: head.publishedAt ?? null, publishAt: head.publishAt ?? null }
    : { seq: 0, status: doc.status, publishedAt: doc.publishedAt ?? null, publishAt: null };

/** What one item collection needs: its projection model and its publication event. */
export interface ItemStore<D extends ItemDoc = ItemDoc> {
  kind: ContentKind;
  model: Model<D>;
  /** The URL path under the site: `/articles/<slug>`. */
  path: string;
  published(doc: D, publishedAt: Date, eventId: string): ReturnType<typeof outboxRecord>;
}

export interface EditorialDeps {
  models: Models;
  siteUrl: string;
  kick?: () => void;
  now?: () => Date;
}

export function createEditorial(deps: EditorialDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());
  const kick = deps.kick ?? (() => undefined);
  const stores = new Map<ContentKind, ItemStore>();
  const store = (kind: ContentKind) => {
    const s = stores.get(kind);
    if (!s) throw new Error(`no item store for ${kind}`);
    return s;
  };
  const account = (kind: ContentKind, id: string) => `${kind}:${id}`;

  /** Drafts, schedules and archives exist only for staff: to everyone else such an item is absent. */
  function visible<D extends ItemDoc>(viewer: Viewer | null, doc: D | null): D | null {
    if (!doc) return null;
    return doc.status === 'PUBLISHED' || isStaff(viewer) ? doc : null;
  }

  /**
   * Rebuilds the projection from the ledger heads and writes it whole; re-reads after writing and
   * rebuilds again if another writer moved a head meanwhile, so the last write reflects the heads.
   */
  async function sync<D extends ItemDoc>(kind: ContentKind, id: string): Promise<D | null> {
    const { model } = store(kind) as unknown as ItemStore<D>;
    const acct = account(kind, id);
    for (let attempt = 0; attempt < 5; attempt++) {
      const doc = (await model.findById(id).lean()) as D | null;
      if (!doc) return null;
      const [rev, life] = await Promise.all([ledgerHead(models.Revision, acct), ledgerHead(models.Lifecycle, acct)]);
      if ((doc.revision ?? 0) === (rev?.seq ?? 0) && (doc.stage ?? 0) === (life?.seq ?? 0)) return doc;
      const state = stateOf(doc, life);
      const next = {
        ...doc,
        ...(rev ? contentOf(rev, id) : {}),
        status: state.status,
        publishedAt: state.publishedAt,
        publishAt: state.status === 'SCHEDULED' ? state.publishAt : null,
        revision: rev?.seq ?? 0,
        stage: life?.seq ?? 0,
        updatedAt: [rev?.at, life?.at, doc.updatedAt].filter(Boolean).reduce((a, b) => (a! > b! ? a : b), doc.createdAt),
      } as D;
      await model.replaceOne({ _id: doc._id } as never, next as never);
    }
    return (await model.findById(id).lean()) as D | null;
  }

  /** Takes `slug` for the item, or CONFLICT when another item ever had it (its redirects stay). */
  async function claimSlug(kind: ContentKind, slug: string, itemId: string): Promise<void> {
    const _id = `${kind}:${slug}`;
    if (await claimOnce(models.Slug, { _id, itemId, at: now() })) return;
    const owner = await models.Slug.findById(_id).lean();
    if (owner?.itemId !== itemId) throw new AppError('CONFLICT', `The slug "${slug}" is taken`, { field: 'slug' });
  }

  async function load<D extends ItemDoc>(kind: ContentKind, id: string, field: string): Promise<D> {
    if (!isObjectId(id)) throw badInput(`Invalid ${kind} id`, field);
    const doc = (await store(kind).model.findById(id).lean()) as D | null;
    if (!doc) throw notFound(kind === 'article' ? 'Article' : 'Page');
    return doc;
  }

  /** The first revision is the item's creation; the projection is inserted after it. */
  async function create<D extends ItemDoc>(viewer: Viewer | null, kind: ContentKind, input: ContentInput, own: Partial<D>): Promise<D> {
    const by = requireRole(viewer, 'STAFF');
    const _id = new Types.ObjectId();
    const id = _id.toHexString();
    const content = newContent(input, id);
    await claimSlug(kind, content.slug, id);
    const at = now();
    await appendToLedger(models.Revision, account(kind, id), () => ({ ...content, editedBy: by.id, at }));
    const doc = {
      _id,
      ...content,
      ...own,
      status: 'DRAFT',
      publishedAt: null,
      publishAt: null,
      revision: 1,
      stage: 0,
      updatedAt: at,
      createdAt: at,
    };
    await store(kind).model.create(doc);
    return doc as unknown as D;
  }

  /** An edit is a new revision over the current one (decided against the real head). */
  async function edit<D extends ItemDoc>(viewer: Viewer | null, kind: ContentKind, id: string, input: ContentPatch): Promise<D> {
    const by = requireRole(viewer, 'STAFF');
    const doc = await load<D>(kind, id, 'id');
    const acct = account(kind, id);
    const current = (await ledgerHead(models.Revision, acct)) ?? doc;
    const patch = parsePatch(input, contentOf(current, id));
    if (patch.slug && patch.slug !== contentOf(current, id).slug) await claimSlug(kind, patch.slug, id);
    const at = now();
    await appendToLedger(models.Revision, acct, (head) => ({ ...contentOf(head ?? doc, id), ...patch, editedBy: by.id, at }));
    return (await sync<D>(kind, id))!;
  }

  /**
   * A lifecycle move, decided against the ledger head: PUBLISH of a published item and ARCHIVE
   * of an archived one change nothing; SCHEDULE needs a time ahead and an item not published.
   * `scheduleSeq` makes a publication the one of that schedule: refused unless the head is still it.
   */
  async function move<D extends ItemDoc>(
    by: string,
    doc: D,
    kind: ContentKind,
    to: Move,
    opts: { publishAt?: Date; scheduleSeq?: number } = {},
  ): Promise<{ doc: D; moved: boolean }> {
    const id = doc._id.toHexString();
    const at = now();
    const entry = await appendToLedger(
      models.Lifecycle,
      account(kind, id),
      (head): Omit<LifecycleEntry, '_id' | 'accountId' | 'seq'> | null => {
        const state = stateOf(doc, head);
        const seq = state.seq + 1;
        if (opts.scheduleSeq !== undefined && (state.seq !== opts.scheduleSeq || state.status !== 'SCHEDULED')) return null;
        switch (to) {
          case 'PUBLISH':
            if (state.status === 'PUBLISHED') return null;
            return {
              status: 'PUBLISHED',
              at,
              by,
              publishedAt: at,
              outbox: store(kind).published(doc, at, `${account(kind, id)}:${seq}`),
            };
          case 'ARCHIVE':
            if (state.status === 'ARCHIVED') return null;
            return { status: 'ARCHIVED', at, by, publishedAt: state.publishedAt };
          case 'SCHEDULE':
            if (state.status === 'PUBLISHED') throw new AppError('CONFLICT', 'Already published: archive it first', { field: 'publishAt' });
            return { status: 'SCHEDULED', at, by, publishAt: opts.publishAt, publishedAt: state.publishedAt };
        }
      },
    );
    if (entry?.outbox) kick();
    return { doc: (await sync<D>(kind, id))!, moved: entry !== null };
  }

  return {
    visible,
    sync,

    register(s: ItemStore<never>) {
      stores.set(s.kind, s as unknown as ItemStore);
    },

    create,
    edit,

    async transition<D extends ItemDoc>(viewer: Viewer | null, kind: ContentKind, id: string, to: Move, publishAt?: Date | string | null) {
      const by = requireRole(viewer, 'STAFF');
      let when: Date | undefined;
      if (to === 'SCHEDULE') {
        when = publishAt == null ? undefined : new Date(publishAt);
        if (!when || Number.isNaN(when.getTime())) throw badInput('publishAt is required', 'publishAt');
        const t = now().getTime();
        if (when.getTime() <= t) throw badInput('publishAt must be in the future', 'publishAt');
        if (when.getTime() > t + LIMITS.scheduleDays * 86_400_000)
          throw badInput(`publishAt must be within ${LIMITS.scheduleDays} days`, 'publishAt');
      }
      const doc = await load<D>(kind, id, `${kind}Id`);
      return (await move(by.id, doc, kind, to, { publishAt: when })).doc;
    },

    /** The item a slug names (its current one or an old one), if the viewer may see it. */
    async bySlug<D extends ItemDoc>(viewer: Viewer | null, kind: ContentKind, raw: string) {
      const slug = raw.trim().toLowerCase();
      if (!SLUG.test(slug)) return null;
      const owner = await models.Slug.findById(`${kind}:${slug}`).lean();
      if (!owner) return null;
      const doc = visible(viewer, (await store(kind).model.findById(owner.itemId).lean()) as D | null);
      if (!doc) return null;
      const canonicalSlug = contentOf(doc, owner.itemId).slug;
      return { item: doc, canonicalSlug, redirected: canonicalSlug !== slug };
    },

    /** Staff only: an item's revisions, newest first, read by `_id` (`kind:id:seq`). */
    async revisions(viewer: Viewer | null, kind: ContentKind, id: string, args: PageArgs) {
      requireRole(viewer, 'STAFF');
      const first = pageSize(args.first, LIMITS.revisionsPage);
      const acct = account(kind, id);
      const before = decodeSeqCursor(args.after) ?? ((await ledgerHead(models.Revision, acct))?.seq ?? 0) + 1;
      const seqs: number[] = [];
      for (let s = before - 1; s >= 1 && seqs.length <= first; s--) seqs.push(s);
      const entries = await findByIds<RevisionEntry>(
        models.Revision,
        seqs.map((s) => `${acct}:${s}`),
      );
      entries.sort((a, b) => b.seq - a.seq);
      return seqPage(entries, first, (e) => e);
    },

    canonicalUrl(kind: ContentKind, doc: ItemDoc): string {
      const c = contentOf(doc, doc._id.toHexString());
      return c.seo.canonicalUrl ?? `${deps.siteUrl}${store(kind).path}/${c.slug}`;
    },

    /** Every published item with when it last changed, for search engines. */
    async sitemap() {
      const out: { kind: ContentKind; doc: ItemDoc; lastModified: Date }[] = [];
      for (const s of stores.values()) {
        const docs = await s.model
          .find({ status: 'PUBLISHED' })
          .select({ slug: 1, seo: 1, updatedAt: 1, publishedAt: 1, createdAt: 1 })
          .sort({ _id: -1 })
          .limit(LIMITS.sitemap)
          .lean<ItemDoc[]>();
        for (const doc of docs) {
          const times = [doc.updatedAt, doc.publishedAt, doc.createdAt].filter((t): t is Date => t instanceof Date);
          out.push({ kind: s.kind, doc, lastModified: new Date(Math.max(...times.map((t) => t.getTime()))) });
        }
      }
      return out;
    },

    /**
     * Publishes every item whose schedule is due. Any number of replicas may run it at once: each
     * publication is the lifecycle entry right after its schedule's (`kind:id:scheduleSeq+1`,
     * refused unless the head is still that schedule), a unique insert only one of them lands.
     */
    async sweep(at: Date = now()): Promise<Record<string, number>> {
      const counts: Record<string, number> = {};
      for (const s of stores.values()) {
        const due = await s.model.find({ status: 'SCHEDULED', publishAt: { $lte: at } }).lean<ItemDoc[]>();
        let published = 0;
        for (const doc of due) {
          if ((await move('sweeper', doc, s.kind, 'PUBLISH', { scheduleSeq: doc.stage ?? 0 })).moved) published++;
        }
        counts[s.kind] = published;
      }
      return counts;
    },
  };
}
export type Editorial = ReturnType<typeof createEditorial>;
export type SitemapShape = Awaited<ReturnType<Editorial['sitemap']>>[number];
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
