import type { NatsConnection } from 'nats';
import type { Logger } from '@flywheel/service-kit';
import { feedId } from '@flywheel/events';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { feedResolvers } from './resolvers';
import { createFeedService, roomAsOf, type FeedService } from './service';

/**
 * The room feed (see service.ts): announcements on core NATS, the event reader the gateway calls,
 * the room's own changes (started, ended) from live's events, and the gateways' viewer counts.
 */
export function createFeedModule(deps: {
  nc: NatsConnection;
  logger: Logger;
  models: Models;
  rooms: LiveService;
  now: () => Date;
}): LiveModule & {
  feed: FeedService;
} {
  const feed = createFeedService(deps);
  feed.register('room', async (roomId, status) => {
    if (status !== 'LIVE' && status !== 'ENDED') return null;
    const room = await roomAsOf(deps.models, roomId, await deps.rooms.statusOf(roomId));
    return room ? { __typename: 'LiveRoomChange', room } : null;
  });
  return {
    name: 'feed',
    feed,
    resolvers: feedResolvers(feed),
    on: {
      'live.room.started': async (env) => feed.announce(env.data.roomId, feedId('room', 'LIVE')),
      'live.room.ended': async (env) => feed.announce(env.data.roomId, feedId('room', 'ENDED')),
    },
    init: async () => feed.start(),
    stop: async () => feed.stop(),
  };
}
