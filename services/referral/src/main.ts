import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { claimedSweeper, mergeResolvers, readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import { createBargainModule } from './bargain';
import { createCampaignsModule } from './campaigns';
import { loadServiceConfig, type Config } from './config';
import { createDistributionModule } from './distribution';
import { coreHandlers, registerConsumers, registerPricing } from './events';
import { createGroupBuyModule } from './groupbuy';
import { createModels } from './model';
import type { ModuleDeps, ReferralModule } from './modules';
import { resolvers as coreResolvers } from './resolvers';
import { createReferralService, type Context, type ReferralService } from './service';
import { createLeaderboardsModule } from './leaderboards';
import { createSharesModule } from './shares';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

function createModules(deps: ModuleDeps) {
  return {
    shares: createSharesModule(deps),
    campaigns: createCampaignsModule(deps),
    bargain: createBargainModule(deps),
    groupbuy: createGroupBuyModule(deps),
    distribution: createDistributionModule(deps),
    // Last: it reads the models the modules above compiled.
    leaderboards: createLeaderboardsModule(deps),
  };
}
export type Modules = ReturnType<typeof createModules>;

/** How often the sweeper runs (group-buy expiry, settlements, …); one replica takes each period (a claim). */
export const SWEEP_INTERVAL_MS = 15_000;

export interface StartOptions {
  handleSignals?: boolean;
  /** Run the sweeper on its timer (default); tests drive `sweep` by hand instead. */
  sweepers?: boolean;
  /** The clock of the service (tests move it). */
  now?: () => Date;
}

export interface RunningReferral extends RunningService {
  service: ReferralService;
  modules: Modules;
  /** One pass of every module's periodic work at `at`. */
  sweep(at?: Date): Promise<Record<string, Record<string, number>>>;
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningReferral> {
  let service!: ReferralService;
  let modules!: Modules;
  const now = opts.now ?? (() => new Date());
  const sweep = async (at: Date = now()) => {
    const out: Record<string, Record<string, number>> = {};
    for (const m of Object.values(modules) as ReferralModule[]) if (m.sweep) out[m.name] = await m.sweep(at);
    return out;
  };
  const running = await runService<Context>({
    name: 'referral',
    config,
    typeDefs,
    // An invite code is 8 characters; a few more for what people paste.
    inputBounds: { 'Query.inviteCode(code)': { maxLength: 16 } },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      const models = createModels(db);
      service = createReferralService({ models, now });
      modules = createModules({ db, bus, logger, invites: service, kick, now });
      const list = Object.values(modules) as ReferralModule[];
      const sweeper = claimedSweeper({ claims: models.Claim, periodMs: SWEEP_INTERVAL_MS, now, run: sweep, logger });
      return {
        resolvers: mergeResolvers([coreResolvers, ...list.map((m) => m.resolvers)]),
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        outboxSources: list.flatMap((m) => m.outboxSources ?? []),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          for (const m of list) await m.init?.();
          registerPricing(bus, list);
          await registerConsumers({ bus, core: coreHandlers(service, logger), modules: list });
          if (opts.sweepers ?? true) sweeper.start();
        },
        stop: async () => {
          await sweeper.stop();
          for (const m of list) await m.stop?.();
        },
      };
    },
  });
  return { ...running, service, modules, sweep };
}

if (require.main === module) runMain('referral', () => start(loadServiceConfig(), { handleSignals: true }));
