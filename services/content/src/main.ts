import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { mergeResolvers, readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import { createAnalyticsModule } from './analytics';
import { createAudienceModule } from './audience';
import type { AudienceService } from './audience/service';
import type { AnalyticsService } from './analytics/service';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers, type Handlers } from './events';
import { createModels } from './model';
import { createMerchandisingModule } from './merchandising';
import type { MerchandisingService } from './merchandising/service';
import { MERCH_LIMITS } from './merchandising/service';
import { createPagesModule } from './pages';
import { resolvers as coreResolvers } from './resolvers';
import { LIMITS } from './editorial/input';
import { createEditorial, type Editorial } from './editorial/service';
import { createContentService, type ContentService, type Context } from './service';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

export interface StartOptions {
  handleSignals?: boolean;
  /** Run the scheduled-publishing sweeper on its timer (default); tests drive `sweep` by hand. */
  sweepers?: boolean;
  now?: () => Date;
}

export interface RunningContent extends RunningService {
  service: ContentService;
  editorial: Editorial;
  analytics: AnalyticsService;
  merchandising: MerchandisingService;
  audience: AudienceService;
  /** One pass of the scheduled-publishing sweeper. */
  sweep(at?: Date): Promise<Record<string, number>>;
}

// Beyond the kit's defaults (200 characters, 100 items): the prose and the rich body (service.ts LIMITS decides the rest).
const prose = (input: string) => ({
  [`${input}.summary`]: { maxLength: LIMITS.summary },
  [`${input}.body`]: { maxLength: LIMITS.body },
  [`${input}.blocks`]: { maxItems: LIMITS.blocks },
  [`${input}.coverUrl`]: { maxLength: LIMITS.url },
});

export async function start(config: Config, opts: StartOptions = {}): Promise<RunningContent> {
  let service!: ContentService;
  let editorial!: Editorial;
  let analytics!: AnalyticsService;
  let merchandising!: MerchandisingService;
  let audience!: AudienceService;
  const now = opts.now ?? (() => new Date());
  const running = await runService<Context>({
    name: 'content',
    config,
    typeDefs,
    inputBounds: {
      ...prose('CreateArticleInput'),
      ...prose('UpdateArticleInput'),
      ...prose('CreatePageInput'),
      ...prose('UpdatePageInput'),
      'ContentBlockInput.text': { maxLength: LIMITS.blockText },
      'ContentBlockInput.url': { maxLength: LIMITS.url },
      'ContentBlockInput.posterUrl': { maxLength: LIMITS.url },
      'SeoInput.canonicalUrl': { maxLength: LIMITS.url },
      'SeoInput.ogImageUrl': { maxLength: LIMITS.url },
      'MerchLinkInput.url': { maxLength: MERCH_LIMITS.url },
      'BannerInput.imageUrl': { maxLength: MERCH_LIMITS.url },
      'ActivityInput.bannerUrl': { maxLength: MERCH_LIMITS.url },
      'ActivityInput.summary': { maxLength: MERCH_LIMITS.summary },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, kick, logger }) {
      const models = createModels(db);
      editorial = createEditorial({ models, siteUrl: config.CONTENT_SITE_URL.replace(/\/+$/, ''), kick, now });
      service = createContentService({ models, editorial, siteUrl: config.CONTENT_SITE_URL, kick, now });
      const pages = createPagesModule({ db, editorial });
      const stats = createAnalyticsModule({ db, models, pageModels: pages.models, logger, now });
      analytics = stats.analytics;
      const members = createAudienceModule({ db, now });
      audience = members.audience;
      const merch = createMerchandisingModule({ db, audience, now });
      merchandising = merch.merchandising;

      // Every replica runs the timer; each publication is decided by its lifecycle entry (service.ts `sweep`).
      let timer: NodeJS.Timeout | undefined;
      let pass: Promise<unknown> = Promise.resolve();
      const periodMs = config.CONTENT_SWEEP_INTERVAL_SECONDS * 1000;
      const tick = () => {
        pass = editorial.sweep(now()).catch((err: unknown) => logger.warn({ err }, 'sweep failed'));
        void pass.finally(() => {
          if (timer) timer = setTimeout(tick, periodMs).unref();
        });
      };
      // Each replica appends its own view tally every interval (a crash loses at most that interval).
      let flushTimer: NodeJS.Timeout | undefined;
      let flushing: Promise<unknown> = Promise.resolve();
      const flushMs = config.CONTENT_VIEW_FLUSH_SECONDS * 1000;
      const flush = () => {
        flushing = analytics.flush().catch((err: unknown) => logger.warn({ err }, 'view flush failed'));
        void flushing.finally(() => {
          if (flushTimer) flushTimer = setTimeout(flush, flushMs).unref();
        });
      };
      return {
        resolvers: mergeResolvers([coreResolvers, pages.resolvers, stats.resolvers, merch.resolvers] as unknown as Record<
          string,
          Record<string, unknown>
        >[]),
        context: (base) => ({ ...base, service, editorial, loaders: service.loaders() }),
        outboxSources: [models.Lifecycle],
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          await registerConsumers({ bus, modules: [stats.on as Handlers, merch.on as Handlers, members.on as Handlers] });
          if (opts.sweepers ?? true) timer = setTimeout(tick, periodMs).unref();
          flushTimer = setTimeout(flush, flushMs).unref();
        },
        stop: async () => {
          clearTimeout(timer);
          timer = undefined;
          clearTimeout(flushTimer);
          flushTimer = undefined;
          await pass;
          await flushing;
          // A graceful stop (a rollout) writes what it counted: only a crash loses an interval.
          await analytics.flush().catch((err: unknown) => logger.warn({ err }, 'final view flush failed'));
        },
      };
    },
  });
  return { ...running, service, editorial, analytics, merchandising, audience, sweep: (at?: Date) => editorial.sweep(at ?? now()) };
}

if (require.main === module) runMain('content', () => start(loadServiceConfig(), { handleSignals: true }));
