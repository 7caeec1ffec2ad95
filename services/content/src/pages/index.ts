import type { Connection } from 'mongoose';
import type { Editorial } from '../editorial/service';
import { createPageModels } from './model';
import { pageResolvers } from './resolvers';
import { createPagesService } from './service';

/** The pages module: brand story, about, qualifications and contact pages on the editorial core. */
export function createPagesModule(deps: { db: Connection; editorial: Editorial }) {
  const models = createPageModels(deps.db);
  const pages = createPagesService({ models, editorial: deps.editorial });
  return { name: 'pages', pages, models, resolvers: pageResolvers(pages), outboxSources: [] };
}
