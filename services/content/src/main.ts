import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createContentService, LIMITS, type ContentService, type Context } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(config: Config, opts: { handleSignals?: boolean } = {}): Promise<RunningService & { service: ContentService }> {
  let service!: ContentService;
  const running = await runService<Context>({
    name: 'content',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: the article's prose (service.ts LIMITS decides the rest).
    inputBounds: {
      'CreateArticleInput.summary': { maxLength: LIMITS.summary },
      'CreateArticleInput.body': { maxLength: LIMITS.body },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus }) {
      service = createContentService({ models: createModels(db) });
      return {
        resolvers,
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: () => registerConsumers({ bus }),
      };
    },
  });
  return { ...running, service };
}

if (require.main === module) runMain('content', () => start(loadServiceConfig(), { handleSignals: true }));
