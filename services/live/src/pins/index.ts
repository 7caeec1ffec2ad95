import type { Connection } from 'mongoose';
import type { FeedService } from '../feed/service';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { createPinModels } from './model';
import { pinResolvers } from './resolvers';
import { createPinService, type PinService } from './service';

export function createPinsModule(deps: {
  db: Connection;
  models: Models;
  rooms: LiveService;
  feed: FeedService;
  now: () => Date;
}): LiveModule & {
  pins: PinService;
} {
  const models = createPinModels(deps.db);
  const pins = createPinService({ models, core: deps.models, rooms: deps.rooms, now: deps.now, announce: deps.feed.announce });
  deps.feed.register('pin', (roomId, seq) => pins.feedEvent(roomId, seq));
  return { name: 'pins', pins, resolvers: pinResolvers(pins, deps.now) };
}
