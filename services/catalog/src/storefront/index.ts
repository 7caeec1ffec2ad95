import type { CatalogModule, ModuleDeps } from '../modules';
import { createReadModelFeed, type ReadModelFeed } from './events';
import { createReadModel, type ReadModel } from './service';

/**
 * The storefront's in-memory read model (when CATALOG_READ_MODEL is set): customers' look-ups are
 * answered from it, kept current by the feed of changes between replicas.
 */
export function createStorefrontModule({ models, bus, logger, config }: ModuleDeps): CatalogModule & { readModel: ReadModel | null } {
  let feed: ReadModelFeed | null = null;
  const readModel = config.CATALOG_READ_MODEL
    ? createReadModel({ models, logger, announce: (change) => feed?.announce(change), live: () => feed?.live() ?? false })
    : null;
  if (readModel) {
    feed = createReadModelFeed({
      bus,
      readModel,
      logger,
      heartbeatMs: config.CATALOG_READ_MODEL_HEARTBEAT_MS,
      refreshMs: config.CATALOG_READ_MODEL_REFRESH_SECONDS * 1000,
    });
  }
  return {
    name: 'storefront',
    readModel,
    // Loaded before the server listens; until then (and whenever in doubt) reads use the database.
    init: async () => feed?.start(),
    stop: async () => feed?.stop(),
  };
}
