import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { createProductProjection, type ProductProjection } from './browse/projection';
import { createBrowseService } from './browse/service';
import { registerConsumers } from './events';
import { createMemoryFlashGate, createRedisFlashGate, shareGateChanges } from './inventory/flash-gate';
import { createInventoryService, type InventoryService } from './inventory/service';
import { createReadModelFeed, type ReadModelFeed } from './storefront/events';
import { createReadModel, type ReadModel } from './storefront/service';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createCatalogService, MAX_LONG_TEXT, MAX_URL, type CatalogService, type Context } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(
  config: Config,
  opts: { handleSignals?: boolean } = {},
): Promise<
  RunningService & { service: CatalogService; inventory: InventoryService; projection: ProductProjection; readModel: ReadModel | null }
> {
  let service!: CatalogService;
  let inventory!: InventoryService;
  let projection!: ProductProjection;
  let readModel: ReadModel | null = null;
  const running = await runService<Context>({
    name: 'catalog',
    config,
    typeDefs,
    // Beyond the kit's defaults (200 characters, 100 items): long texts and CDN addresses.
    inputBounds: {
      'CreateProductInput.description': { maxLength: MAX_LONG_TEXT },
      'UpdateProductInput.description': { maxLength: MAX_LONG_TEXT },
      'CreateProductInput.afterSalesPolicy': { maxLength: MAX_LONG_TEXT },
      'UpdateProductInput.afterSalesPolicy': { maxLength: MAX_LONG_TEXT },
      'CreateProductInput.videoUrl': { maxLength: MAX_URL },
      'UpdateProductInput.videoUrl': { maxLength: MAX_URL },
      'ProductImageInput.url': { maxLength: MAX_URL },
    },
    handleSignals: opts.handleSignals,
    async setup({ db, bus, logger, kick }) {
      const models = createModels(db);
      let feed: ReadModelFeed | null = null;
      const model = config.CATALOG_READ_MODEL
        ? createReadModel({ models, logger, announce: (change) => feed?.announce(change), live: () => feed?.live() ?? false })
        : null;
      if (model) {
        feed = createReadModelFeed({
          bus,
          readModel: model,
          logger,
          heartbeatMs: config.CATALOG_READ_MODEL_HEARTBEAT_MS,
          refreshMs: config.CATALOG_READ_MODEL_REFRESH_SECONDS * 1000,
        });
      }
      readModel = model;
      projection = createProductProjection({
        models,
        logger,
        observe: model ? () => model.observeProjection() : undefined,
        holdings: model ? (productId) => model.holdings(productId) : undefined,
      });
      const holdMs = config.FLASH_GATE_HOLD_SECONDS * 1000;
      const flashGate = config.REDIS_URL
        ? createRedisFlashGate({ url: config.REDIS_URL, holdMs, keyPrefix: config.FLASH_GATE_KEY_PREFIX })
        : shareGateChanges(createMemoryFlashGate({ holdMs }), bus.nc, (err) => logger.warn({ err }, 'flash gate message ignored'));
      logger.info({ flashGate: flashGate.kind }, 'flash gate');
      inventory = createInventoryService({
        models,
        kick,
        logger,
        flashGate,
        reservationTtlSeconds: config.RESERVATION_TTL_SECONDS,
        onStockMoved: (entry) => {
          model?.stockMoved(entry);
          projection.stockMoved(entry);
        },
        onFlashSaleCreated: (productId) => projection.refresh(productId),
      });
      service = createCatalogService({ models, kick, inventory, projection, readModel: model });
      const browse = createBrowseService({ models, readModel: model });
      const sweeper = inventory.sweeper(config.STOCK_SWEEP_INTERVAL_SECONDS * 1000, [() => projection.repairOnce()]);
      return {
        resolvers,
        context: (base) => ({ ...base, service, inventory, browse, loaders: service.loaders(base.viewer) }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          await projection.backfill();
          // Loaded before the server listens; until then (and whenever in doubt) reads use the database.
          await feed?.start();
          await registerConsumers({ bus, service, inventory });
          sweeper.start();
        },
        stop: async () => {
          await sweeper.stop();
          await projection.drain();
          await feed?.stop();
          await flashGate.close();
        },
        outboxSources: [models.Product, models.ProductStatusEntry, models.StockEntry],
      };
    },
  });
  return { ...running, service, inventory, projection, readModel };
}

if (require.main === module) runMain('catalog', () => start(loadServiceConfig(), { handleSignals: true }));
