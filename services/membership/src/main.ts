import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { piiKeys, runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createMembershipService, devCodeSender, noCodeSender, type Context, type MembershipService } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(
  config: Config,
  opts: { handleSignals?: boolean } = {},
): Promise<RunningService & { service: MembershipService }> {
  let service!: MembershipService;
  const running = await runService<Context>({
    name: 'membership',
    config,
    typeDefs,
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick }) {
      const models = createModels(db);
      service = createMembershipService({
        models,
        pii: piiKeys(config.PII_ENCRYPTION_KEY, config.PII_LOOKUP_KEY),
        codes: config.DEV_LOGIN_CODES ? devCodeSender : noCodeSender,
        authSecret: config.AUTH_TOKEN_SECRET,
        accessTtlSeconds: config.ACCESS_TOKEN_TTL_SECONDS,
        refreshTtlSeconds: config.REFRESH_TOKEN_TTL_SECONDS,
        codeTtlSeconds: config.LOGIN_CODE_TTL_SECONDS,
        codesPerDay: config.LOGIN_CODES_PER_DAY,
        codeIntervalSeconds: config.LOGIN_CODE_INTERVAL_SECONDS,
        kick,
      });
      return {
        resolvers,
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        outboxSources: [models.Member],
        init: async () => {
          await registerConsumers({ bus });
          if (config.BOOTSTRAP_STAFF_EMAIL && config.BOOTSTRAP_STAFF_PASSWORD) {
            await service.ensureStaff(config.BOOTSTRAP_STAFF_EMAIL, 'Administrator', config.BOOTSTRAP_STAFF_PASSWORD);
          }
        },
      };
    },
  });
  return { ...running, service };
}

if (require.main === module) runMain('membership', () => start(loadServiceConfig(), { handleSignals: true }));
