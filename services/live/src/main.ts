import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { claimedSweeper, mergeResolvers, readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createModels } from './model';
import type { LiveModule } from './modules';
import { createTestChannel, type DeliveryChannel, type TestChannel } from './reminders/channel';
import { createRemindersModule } from './reminders';
import { resolvers as coreResolvers } from './resolvers';
import { createSalesModule } from './sales';
import { createSeriesModule } from './series';
import { createCommentsModule } from './comments';
import { createFeedModule } from './feed';
import { createLikesModule } from './likes';
import { createPinsModule } from './pins';
import { createLotteryModule } from './lottery';
import { createOffersModule } from './offers';
import { createLiveService, LIMITS, type Context, type LiveService } from './service';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

/**
 * How often the sweeper runs: series rooms ahead and reminder stages. Every replica runs the timer;
 * one takes each period (a claim), and a pass is idempotent either way. Reminders go out within a
 * period of their time.
 */
export const SWEEP_INTERVAL_MS = 15_000;

export interface StartOptions {
  handleSignals?: boolean;
  /** Run the sweeper on its timer (default); tests drive `sweep` by hand instead. */
  sweepers?: boolean;
  /** The clock of the service (tests move it to a reminder stage). */
  now?: () => Date;
  /** Where reminders are delivered: the built-in test channel outside production unless given. */
  channel?: DeliveryChannel | null;
}

export interface RunningLive extends RunningService {
  service: LiveService;
  modules: Modules;
  /** The test channel when it is the one in use. */
  channel: DeliveryChannel | null;
  /** One pass of every module's periodic work at `at`. */
  sweep(at?: Date): Promise<Record<string, Record<string, number>>>;
}
export type Modules = ReturnType<typeof createModules>;

function createModules(deps: Parameters<typeof createRemindersModule>[0]) {
  const series = createSeriesModule(deps);
  const reminders = createRemindersModule(deps);
  const sales = createSalesModule(deps);
  const feed = createFeedModule({ ...deps, nc: deps.bus.nc });
  const announce = feed.feed.announce;
  const offers = createOffersModule({ ...deps, announce });
  const lottery = createLotteryModule({ ...deps, announce });
  // Commenting and liking make a member eligible for the room's lotteries (buying: lottery/ itself).
  const realtime = { ...deps, feed: feed.feed };
  const comments = createCommentsModule({
    ...realtime,
    participated: (room, member) => lottery.recordParticipation(room, member, 'COMMENTED'),
  });
  const likes = createLikesModule({ ...realtime, participated: (room, member) => lottery.recordParticipation(room, member, 'LIKED') });
  const pins = createPinsModule(realtime);
  feed.feed.register('offer', async (roomId, id) => {
    const offer = await offers.offers.offer(id);
    return offer?.roomId === roomId ? { __typename: 'LiveOffer', ...offer } : null;
  });
  feed.feed.register('lottery', async (roomId, id) => {
    const view = await lottery.lottery.lottery(id);
    return view?.lottery.roomId === roomId ? { __typename: 'LiveLottery', ...view } : null;
  });
  return { series, reminders, sales, feed, comments, likes, pins, offers, lottery };
}

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningLive> {
  let service!: LiveService;
  let modules!: Modules;
  let channel: DeliveryChannel | null = null;
  const now = opts.now ?? (() => new Date());
  const sweep = async (at: Date = now()) => {
    const out: Record<string, Record<string, number>> = {};
    for (const m of Object.values(modules) as LiveModule[]) if (m.sweep) out[m.name] = await m.sweep(at);
    return out;
  };
  const running = await runService<Context>({
    name: 'live',
    config,
    typeDefs,
    // Beyond the kit's default 200 characters: the room's description and the replay's URL (service.ts LIMITS decides the rest).
    inputBounds: {
      'ScheduleLiveRoomInput.description': { maxLength: LIMITS.description },
      'CreateLiveSeriesInput.description': { maxLength: LIMITS.description },
      'PublishLiveReplayInput.url': { maxLength: LIMITS.replayUrl },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      const models = createModels(db);
      channel = opts.channel !== undefined ? opts.channel : config.NODE_ENV === 'production' ? null : createTestChannel(db);
      service = createLiveService({ models, kick, now, onStarted: (room, at) => modules.reminders.reminders.roomStarted(room, at) });
      modules = createModules({ db, bus, logger, models, rooms: service, kick, now, channel });
      const list = Object.values(modules) as LiveModule[];
      const { series } = modules.series;
      const { reminders } = modules.reminders;
      const { sales } = modules.sales;

      const sweeper = claimedSweeper({ claims: models.Claim, periodMs: SWEEP_INTERVAL_MS, now, run: sweep, logger });

      return {
        resolvers: mergeResolvers([coreResolvers, ...list.map((m) => m.resolvers)]),
        context: (base) => ({ ...base, service, series, reminders, sales, loaders: service.loaders(), seriesLoaders: series.loaders() }),
        outboxSources: [models.LiveRoom, models.RoomTransition, ...list.flatMap((m) => m.outboxSources ?? [])],
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          for (const m of list) await m.init?.();
          await registerConsumers({ bus, modules: list });
          if (opts.sweepers ?? true) sweeper.start();
        },
        stop: async () => {
          await sweeper.stop();
          for (const m of list) await m.stop?.();
        },
      };
    },
  });
  return { ...running, service, modules, channel, sweep };
}

export type { TestChannel };

if (require.main === module) runMain('live', () => start(loadServiceConfig(), { handleSignals: true }));
