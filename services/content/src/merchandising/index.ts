import type { Connection } from 'mongoose';
import type { AudienceService } from '../audience/service';
import { merchandisingHandlers } from './events';
import { createMerchandisingModels } from './model';
import { merchandisingResolvers } from './resolvers';
import { createMerchandisingService } from './service';

/** The merchandising module: navigation menus, home banners, the activity center and upcoming-live teasers. */
export function createMerchandisingModule(deps: { db: Connection; audience: AudienceService; now: () => Date }) {
  const models = createMerchandisingModels(deps.db);
  const merchandising = createMerchandisingService({ models, audienceOf: deps.audience.audienceOf, now: deps.now });
  return {
    name: 'merchandising',
    merchandising,
    models,
    resolvers: merchandisingResolvers(merchandising),
    on: merchandisingHandlers(merchandising),
  };
}
