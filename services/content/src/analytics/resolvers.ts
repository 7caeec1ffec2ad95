import type { Resolvers } from '../__generated__/resolvers';
import type { AnalyticsService } from './service';

export function analyticsResolvers(analytics: AnalyticsService): Resolvers {
  return {
    Query: {
      contentGmvShare: (_, { from, to }, { viewer }) => analytics.gmvShare(viewer, from, to),
      articleRanking: (_, args, { viewer }) => analytics.ranking(viewer, args),
    },
    Mutation: {
      recordContentView: (_, { input }, _ctx) => analytics.recordView(input.kind === 'ARTICLE' ? 'article' : 'page', input.id),
    },
    Article: {
      performance: (a, { from, to }, { viewer }) => analytics.performance(viewer, 'article', a._id.toHexString(), from, to),
    },
    ArticleRankingEntry: {
      article: async (e, _, { loaders }) => {
        const article = await loaders.article.load(e.articleId);
        if (!article) throw new Error(`ranked article ${e.articleId} missing`);
        return article;
      },
    },
    Page: {
      performance: (p, { from, to }, { viewer }) => analytics.performance(viewer, 'page', p._id.toHexString(), from, to),
    },
  };
}
