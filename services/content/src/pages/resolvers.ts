import type { Resolvers } from '../__generated__/resolvers';
import { itemFields } from '../resolvers';
import type { PagesService } from './service';

export function pageResolvers(pages: PagesService): Resolvers {
  return {
    Query: {
      pages: (_, { kind }, { viewer }) => pages.list(viewer, kind),
      page: (_, { id }, { viewer }) => pages.get(viewer, id),
      pageBySlug: (_, { slug }, { viewer }) => pages.bySlug(viewer, slug),
    },
    Mutation: {
      createPage: (_, { input }, { viewer }) => pages.create(viewer, input),
      updatePage: (_, { input: { pageId, ...patch } }, { viewer }) => pages.update(viewer, pageId, patch),
      schedulePage: (_, { input }, { viewer }) => pages.move(viewer, input.pageId, 'SCHEDULE', input.publishAt),
      publishPage: (_, { input }, { viewer }) => pages.move(viewer, input.pageId, 'PUBLISH'),
      archivePage: (_, { input }, { viewer }) => pages.move(viewer, input.pageId, 'ARCHIVE'),
    },
    Page: {
      __resolveReference: (ref, { viewer }) => pages.get(viewer, ref.id),
      id: itemFields.id,
      slug: itemFields.slug,
      summary: itemFields.summary,
      body: itemFields.body,
      blocks: itemFields.blocks,
      revision: itemFields.revision,
      updatedAt: itemFields.updatedAt,
      seo: (p, _, ctx) => itemFields.seo(p, 'page', ctx),
      revisions: (p, args, { viewer, editorial }) => editorial.revisions(viewer, 'page', p._id.toHexString(), args),
    },
  };
}
