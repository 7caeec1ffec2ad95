import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createLiveService, LIMITS, type Context, type LiveService } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(config: Config, opts: { handleSignals?: boolean } = {}): Promise<RunningService & { service: LiveService }> {
  let service!: LiveService;
  const running = await runService<Context>({
    name: 'live',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: the room's description (service.ts LIMITS decides the rest).
    inputBounds: { 'ScheduleLiveRoomInput.description': { maxLength: LIMITS.description } },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick }) {
      const models = createModels(db);
      service = createLiveService({ models, kick });
      return {
        resolvers,
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: () => registerConsumers({ bus }),
        outboxSources: [models.LiveRoom],
      };
    },
  });
  return { ...running, service };
}

if (require.main === module) runMain('live', () => start(loadServiceConfig(), { handleSignals: true }));
