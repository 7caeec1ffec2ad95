import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createReferralService, type Context, type ReferralService } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(
  config: Config,
  opts: { handleSignals?: boolean } = {},
): Promise<RunningService & { service: ReferralService }> {
  let service!: ReferralService;
  const running = await runService<Context>({
    name: 'referral',
    config,
    typeDefs,
    // An invite code is 8 characters; a few more for what people paste.
    inputBounds: { 'Query.inviteCode(code)': { maxLength: 16 } },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, logger }) {
      const models = createModels(db);
      service = createReferralService({ models });
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

if (require.main === module) runMain('referral', () => start(loadServiceConfig(), { handleSignals: true }));
