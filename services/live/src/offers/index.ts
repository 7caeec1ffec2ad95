import type { Connection } from 'mongoose';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { createOfferModels } from './model';
import { offerResolvers } from './resolvers';
import { createOfferService, type OfferService } from './service';

/**
 * Live offers: live-exclusive coupons (claims as unique records, granted by membership over
 * `membership.coupon.grant`) and flash deals (catalog flash sales shown in the room).
 */
export function createOffersModule(deps: {
  db: Connection;
  bus: Bus;
  logger: Logger;
  models: Models;
  rooms: LiveService;
  now: () => Date;
  /** Tells the room's live feed about an offer (`offer:<offerId>`) after it changed. */
  announce: (roomId: string, feedId: string) => void;
}): LiveModule & { offers: OfferService } {
  const models = createOfferModels(deps.db);
  const offers = createOfferService({ ...deps, models, core: deps.models });
  return { name: 'offers', offers, resolvers: offerResolvers(offers), sweep: (at) => offers.sweep(at) };
}
