import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import type { Connection } from 'mongoose';
import {
  claimedSweeper,
  mergeResolvers,
  readSchema,
  runService,
  type Bus,
  type Logger,
  type RunningService,
  runMain,
} from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { coreHandlers, registerConsumers } from './events';
import { createAmbassadorsModule } from './ambassadors';
import { createChallengesModule } from './challenges';
import { createModels, type Models } from './model';
import { createPostsModule } from './posts';
import { createGroupsModule } from './groups';
import type { CommunityModule } from './modules';
import { resolvers as coreResolvers } from './resolvers';
import { createCommunityService, LIMITS, type CommunityService, type Context } from './service';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

/** How often the sweeper runs (recurring group posts, challenge days, …); one replica takes each period (a claim). */
export const SWEEP_INTERVAL_MS = 15_000;

/** What every module is given. */
export interface ModuleDeps {
  db: Connection;
  bus: Bus;
  logger: Logger;
  models: Models;
  groups: CommunityService;
  kick: () => void;
  now: () => Date;
  config: Config;
}

export interface StartOptions {
  handleSignals?: boolean;
  /** Run the sweeper on its timer (default); tests drive `sweep` by hand instead. */
  sweepers?: boolean;
  /** The clock of the service (tests move it). */
  now?: () => Date;
}

function createModules(deps: ModuleDeps) {
  const posts = createPostsModule(deps);
  return {
    posts,
    groups: createGroupsModule({ ...deps, posts: posts.posts }),
    challenges: createChallengesModule(deps),
    ambassadors: createAmbassadorsModule({ ...deps, posts: posts.posts }),
  };
}
export type Modules = ReturnType<typeof createModules>;

export interface RunningCommunity extends RunningService {
  service: CommunityService;
  modules: Modules;
  /** One pass of every module's periodic work at `at`. */
  sweep(at?: Date): Promise<Record<string, Record<string, number>>>;
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningCommunity> {
  let service!: CommunityService;
  let modules!: Modules;
  const now = opts.now ?? (() => new Date());
  const sweep = async (at: Date = now()) => {
    const out: Record<string, Record<string, number>> = {};
    for (const m of Object.values(modules) as CommunityModule[]) if (m.sweep) out[m.name] = await m.sweep(at);
    return out;
  };
  const running = await runService<Context>({
    name: 'community',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: the group's description (service.ts LIMITS decides the rest).
    inputBounds: { 'CreateGroupInput.description': { maxLength: LIMITS.description } },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      const models = createModels(db);
      service = createCommunityService({ models, now });
      modules = createModules({ db, bus, logger, models, groups: service, kick, now, config });
      const list = Object.values(modules) as CommunityModule[];

      const sweeper = claimedSweeper({ claims: models.Claim, periodMs: SWEEP_INTERVAL_MS, now, run: sweep, logger });
      return {
        resolvers: mergeResolvers([coreResolvers, ...list.map((m) => m.resolvers)]),
        context: (base) => ({ ...base, service, loaders: service.loaders() }),
        outboxSources: list.flatMap((m) => m.outboxSources ?? []),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          for (const m of list) await m.init?.();
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

if (require.main === module) runMain('community', () => start(loadServiceConfig(), { handleSignals: true }));
