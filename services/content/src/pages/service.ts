import { badInput, isObjectId, isStaff, outboxRecord, requireRole, type Viewer } from '@flywheel/service-kit';
import type { ContentPatch } from '../editorial/input';
import type { Editorial, ItemStore, Move } from '../editorial/service';
import { PAGE_KINDS, type PageDoc, type PageKind, type PageModels } from './model';

export interface CreatePageInput extends Omit<ContentPatch, 'title'> {
  kind: PageKind;
  title: string;
}

export interface PageBySlugShape {
  page: PageDoc;
  canonicalSlug: string;
  redirected: boolean;
}

/** Brand-site pages: the editorial core (revisions, lifecycle, slugs) over the `pages` collection. */
export function createPagesService(deps: { models: PageModels; editorial: Editorial }) {
  const { models, editorial } = deps;
  const store: ItemStore<PageDoc> = {
    kind: 'page',
    model: models.Page,
    path: '/pages',
    published: (doc, at, eventId) =>
      outboxRecord(
        'content.page.published',
        { pageId: doc._id.toHexString(), kind: doc.kind, slug: doc.slug || doc._id.toHexString(), publishedAt: at.toISOString() },
        eventId,
        at,
      ),
  };
  editorial.register(store as never);

  return {
    async list(viewer: Viewer | null, kind: PageKind | null | undefined): Promise<PageDoc[]> {
      return models.Page.find({ ...(isStaff(viewer) ? {} : { status: 'PUBLISHED' }), ...(kind ? { kind } : {}) })
        .sort({ _id: -1 })
        .limit(100)
        .lean<PageDoc[]>();
    },

    create(viewer: Viewer | null, input: CreatePageInput): Promise<PageDoc> {
      requireRole(viewer, 'STAFF');
      if (!PAGE_KINDS.includes(input.kind)) throw badInput('Unknown page kind', 'kind');
      return editorial.create<PageDoc>(viewer, 'page', input, { kind: input.kind });
    },

    update: (viewer: Viewer | null, pageId: string, patch: ContentPatch) => editorial.edit<PageDoc>(viewer, 'page', pageId, patch),

    move: (viewer: Viewer | null, pageId: string, to: Move, publishAt?: Date | string | null) =>
      editorial.transition<PageDoc>(viewer, 'page', pageId, to, publishAt),

    async bySlug(viewer: Viewer | null, slug: string): Promise<PageBySlugShape | null> {
      const found = await editorial.bySlug<PageDoc>(viewer, 'page', slug);
      return found && { page: found.item, canonicalSlug: found.canonicalSlug, redirected: found.redirected };
    },

    /** Null for an unknown or malformed id, or a page the viewer may not see. */
    async get(viewer: Viewer | null, id: string): Promise<PageDoc | null> {
      if (!isObjectId(id)) return null;
      return editorial.visible(viewer, await models.Page.findById(id).lean<PageDoc>());
    },
  };
}
export type PagesService = ReturnType<typeof createPagesService>;
