import '@flywheel/service-kit/telemetry';
import { join } from 'node:path';
import { readSchema, runService, type RunningService, runMain } from '@flywheel/service-kit';
import type { ProductProjection } from './browse/projection';
import { createBrowseModule } from './browse';
import { createEngagementModule } from './engagement';
import { loadServiceConfig, type Config } from './config';
import { registerConsumers } from './events';
import { createFlashSalesModule } from './flash-sales';
import { createModels } from './model';
import type { CatalogModule, ModuleDeps } from './modules';
import { createProductsModule } from './products';
import { MAX_LONG_TEXT, MAX_URL } from './products/rules';
import { createReservationsModule } from './reservations';
import { mergeResolvers } from './resolvers';
import { requestLoaders, type CatalogService, type Context, type InventoryService } from './service';
import { createStockModule } from './stock';
import { createStorefrontModule } from './storefront';
import type { ReadModel } from './storefront/service';
import { createSweeperModule } from './sweeper';

/** The core SDL plus each module's `src/<module>/schema.graphql`. */
export const typeDefs = readSchema(join(__dirname, '../src/schema.graphql'));

export type Modules = ReturnType<typeof createModules>;

function createModules(deps: ModuleDeps) {
  const storefront = createStorefrontModule(deps);
  const { readModel } = storefront;
  const browse = createBrowseModule({ ...deps, readModel });
  const { projection } = browse;
  const stock = createStockModule({
    ...deps,
    onStockMoved: (entry) => {
      readModel?.stockMoved(entry);
      projection.stockMoved(entry);
    },
  });
  const { accounts } = stock;
  const flashSales = createFlashSalesModule({ ...deps, accounts, onFlashSaleCreated: (productId) => projection.refresh(productId) });
  const { admission } = flashSales;
  const reservations = createReservationsModule({ ...deps, accounts, admission, flashSales: flashSales.flashSales });
  const sweeper = createSweeperModule({
    ...deps,
    finals: reservations.finals,
    flashSales: flashSales.flashSales,
    alsoRun: [() => projection.repairOnce()],
  });
  const products = createProductsModule({ ...deps, stock: stock.stock, admission, projection, readModel });
  const engagement = createEngagementModule({ ...deps, products: products.products });
  return { browse, storefront, products, stock, flashSales, reservations, sweeper, engagement };
}

export interface RunningCatalog extends RunningService {
  service: CatalogService;
  inventory: InventoryService;
  projection: ProductProjection;
  readModel: ReadModel | null;
}

export async function start(config: Config, opts: { handleSignals?: boolean } = {}): Promise<RunningCatalog> {
  let modules!: Modules;
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
      modules = createModules({ models, bus, logger, config, kick, now: () => new Date() });
      const list: CatalogModule[] = Object.values(modules);
      const loaders = requestLoaders({
        models,
        stock: modules.stock.stock,
        flashSales: modules.flashSales.flashSales,
        readModel: modules.storefront.readModel,
      });
      return {
        resolvers: mergeResolvers(list),
        context: (base) => ({ ...base, loaders: loaders(base.viewer) }),
        // After the indexes exist: they are the claims that make a redelivery a no-op.
        init: async () => {
          for (const m of list) await m.init?.();
          await registerConsumers({ bus, modules: list });
          modules.sweeper.timer.start();
        },
        stop: async () => {
          await modules.sweeper.timer.stop();
          for (const m of list) await m.stop?.();
        },
        outboxSources: [models.Product, models.ProductStatusEntry, models.StockEntry],
      };
    },
  });
  const { products, stock, reservations, sweeper, browse, storefront } = modules;
  return {
    ...running,
    service: products.products,
    inventory: { ...stock.stock, ...reservations.reservations, ...sweeper.sweeper },
    projection: browse.projection,
    readModel: storefront.readModel,
  };
}

if (require.main === module) runMain('catalog', () => start(loadServiceConfig(), { handleSignals: true }));
