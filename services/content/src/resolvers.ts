import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    articles: (_, args, { viewer, service }) => service.listArticles(viewer, args),
    article: async (_, { id }, { viewer, service, loaders }) => service.visible(viewer, await loaders.article.load(id)),
  },
  Mutation: {
    createArticle: (_, { input }, { viewer, service }) => service.createArticle(viewer, input),
    publishArticle: (_, { input }, { viewer, service }) => service.publishArticle(viewer, input.articleId),
  },
  Article: {
    __resolveReference: async (ref, { viewer, service, loaders }) => service.visible(viewer, await loaders.article.load(ref.id)),
    id: (a) => a._id.toHexString(),
    relatedProducts: (a) => a.relatedProductIds.map((id) => ({ id })),
  },
};
