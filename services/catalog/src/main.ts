import '@flywheel/service-kit/telemetry';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { runService, type RunningService, runMain } from '@flywheel/service-kit';
import { loadServiceConfig, type Config } from './config';
import { createProductProjection, type ProductProjection } from './browse/projection';
import { createBrowseService } from './browse/service';
import { registerConsumers } from './events';
import { createInventoryService, type InventoryService } from './inventory/service';
import { createModels } from './model';
import { resolvers } from './resolvers';
import { createCatalogService, MAX_LONG_TEXT, MAX_URL, type CatalogService, type Context } from './service';

export const typeDefs = readFileSync(join(__dirname, '../src/schema.graphql'), 'utf8');

export async function start(
  config: Config,
  opts: { handleSignals?: boolean } = {},
): Promise<RunningService & { service: CatalogService; inventory: InventoryService; projection: ProductProjection }> {
  let service!: CatalogService;
  let inventory!: InventoryService;
  let projection!: ProductProjection;
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
      projection = createProductProjection({ models, logger });
      inventory = createInventoryService({
        models,
        kick,
        logger,
        reservationTtlSeconds: config.RESERVATION_TTL_SECONDS,
        onStockMoved: projection.stockMoved,
      });
      service = createCatalogService({ models, kick, inventory, projection });
      const browse = createBrowseService({ models });
      const sweeper = inventory.sweeper(config.STOCK_SWEEP_INTERVAL_SECONDS * 1000, [() => projection.repairOnce()]);
      return {
        resolvers,
        context: (base) => ({ ...base, service, inventory, browse, loaders: service.loaders() }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          await projection.backfill();
          await registerConsumers({ bus, service, inventory });
          sweeper.start();
        },
        stop: async () => {
          await sweeper.stop();
          await projection.drain();
        },
        outboxSources: [models.Product, models.ProductStatusEntry, models.StockEntry],
      };
    },
  });
  return { ...running, service, inventory, projection };
}

if (require.main === module) runMain('catalog', () => start(loadServiceConfig(), { handleSignals: true }));
