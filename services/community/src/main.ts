import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createCommunityService, LIMITS, type CommunityService, type Context } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(
  config: Config,
  opts: { handleSignals?: boolean } = {},
): Promise<RunningService & { service: CommunityService }> {
  let service!: CommunityService;
  const running = await runService<Context>({
    name: 'community',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: the group's description (service.ts LIMITS decides the rest).
    inputBounds: { 'CreateGroupInput.description': { maxLength: LIMITS.description } },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, logger }) {
      const models = createModels(db);
      service = createCommunityService({ models });
      return {
        resolvers,
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: () => registerConsumers({ bus, service, logger }),
      };
    },
  });
  return { ...running, service };
}

if (require.main === module) runMain('community', () => start(loadServiceConfig(), { handleSignals: true }));
