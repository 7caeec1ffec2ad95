import type { CatalogModule, ModuleDeps } from '../modules';
import type { ReadModel } from '../storefront/service';
import { createProductProjection } from './projection';
import { browseResolvers } from './resolvers';
import { createBrowseService } from './service';

/** Product listings: the projection that keeps them, and the storefront's list and facet queries. */
export function createBrowseModule({ models, logger, readModel }: ModuleDeps & { readModel: ReadModel | null }) {
  const projection = createProductProjection({
    models,
    logger,
    observe: readModel ? () => readModel.observeProjection() : undefined,
    holdings: readModel ? (productId) => readModel.holdings(productId) : undefined,
  });
  const browse = createBrowseService({ models, readModel });
  return {
    name: 'browse',
    projection,
    browse,
    resolvers: browseResolvers(browse),
    init: () => projection.backfill(),
    stop: () => projection.drain(),
  } satisfies CatalogModule & Record<string, unknown>;
}
