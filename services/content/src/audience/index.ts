import type { Connection } from 'mongoose';
import { audienceHandlers } from './events';
import { createAudienceModels } from './model';
import { createAudienceService } from './service';

/** The audience module: members' tiers and RFM segments as membership reports them (no SDL: merchandising targets banners with it). */
export function createAudienceModule(deps: { db: Connection; now: () => Date }) {
  const models = createAudienceModels(deps.db);
  const audience = createAudienceService({ models, now: deps.now });
  return { name: 'audience', audience, models, on: audienceHandlers(audience) };
}
