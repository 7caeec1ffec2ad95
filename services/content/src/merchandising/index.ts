import type { Connection } from 'mongoose';
import { merchandisingHandlers } from './events';
import { createMerchandisingModels } from './model';
import { merchandisingResolvers } from './resolvers';
import { createMerchandisingService } from './service';

/** The merchandising module: navigation menus, home banners, the activity center and upcoming-live teasers. */
export function createMerchandisingModule(deps: { db: Connection; now: () => Date }) {
  const models = createMerchandisingModels(deps.db);
  const merchandising = createMerchandisingService({ models, now: deps.now });
  return {
    name: 'merchandising',
    merchandising,
    models,
    resolvers: merchandisingResolvers(merchandising),
    on: merchandisingHandlers(merchandising),
  };
}
