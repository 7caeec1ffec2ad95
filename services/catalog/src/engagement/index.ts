import type { CatalogModule, ModuleDeps } from '../modules';
import type { ProductService } from '../products/service';
import { registerEngagementEvents } from './events';
import { engagementResolvers } from './resolvers';
import { createEngagementService } from './service';

/** Members' favourites (收藏) and recently viewed products (足迹). */
export function createEngagementModule(deps: ModuleDeps & { products: Pick<ProductService, 'visibleProduct'> }) {
  const engagement = createEngagementService({ models: deps.models, products: deps.products, now: deps.now });
  return {
    name: 'engagement',
    engagement,
    resolvers: engagementResolvers(engagement),
    register: (bus) => registerEngagementEvents(bus, engagement),
  } satisfies CatalogModule & Record<string, unknown>;
}
