import { Types, type Model } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  claimOnce,
  decodeSeqCursor,
  findByIds,
  isObjectId,
  isStaff,
  ledgerHead,
  notFound,
  outboxRecord,
  pageSize,
  requireRole,
  seqPage,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { ContentKind, ContentStatus, ItemDoc, LifecycleEntry, Models, RevisionEntry } from '../model';

import { contentOf, LIMITS, newContent, parsePatch, SLUG, type ContentInput, type ContentPatch } from './input';

// The editorial core shared by articles and pages (the pages module uses it too): every edit is a
// revision appended to the item's revision ledger, every status change an entry of its lifecycle
// ledger (a publication carries its event), every slug a unique claim. The item's document is a
// projection rebuilt whole from the two ledger heads (docs/concurrency.md).

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
