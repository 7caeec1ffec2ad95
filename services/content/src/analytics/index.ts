import type { Connection } from 'mongoose';
import type { Logger } from '@flywheel/service-kit';
import type { ArticleType, ContentStatus, Models } from '../model';
import type { PageModels } from '../pages/model';
import { analyticsHandlers } from './events';
import { createAnalyticsModels } from './model';
import { analyticsResolvers } from './resolvers';
import { createAnalyticsService } from './service';

/** The analytics module: view tallies flushed per interval, and content → order attribution. */
export function createAnalyticsModule(deps: { db: Connection; models: Models; pageModels: PageModels; logger: Logger; now: () => Date }) {
  const models = createAnalyticsModels(deps.db);
  const analytics = createAnalyticsService({
    models,
    // `_id` look-ups only (what FerretDB's SQLite backend serves without a scan).
    statusOf: async (kind, id) => {
      const found =
        kind === 'article'
          ? await deps.models.Article.findById(id, { status: 1 }).lean<{ status: ContentStatus }>()
          : await deps.pageModels.Page.findById(id, { status: 1 }).lean<{ status: ContentStatus }>();
      return found?.status ?? null;
    },
    articleType: async (id) => (await deps.models.Article.findById(id, { type: 1 }).lean<{ type: ArticleType }>())?.type ?? null,
    logger: deps.logger,
    now: deps.now,
  });
  return { name: 'analytics', analytics, models, resolvers: analyticsResolvers(analytics), on: analyticsHandlers(analytics) };
}
