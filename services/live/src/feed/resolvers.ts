import { AppError } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { FeedService, FeedValue } from './service';

export function feedResolvers(feed: FeedService): Resolvers {
  return {
    Query: {
      liveFeedEvent: (_, { roomId, id }, { viewer }) => feed.event(viewer, roomId, id),
    },
    Subscription: {
      liveRoomFeed: {
        // The gateway serves subscriptions (WebSocket, fed by NATS); a subgraph never does.
        subscribe: () => {
          throw new AppError('BAD_USER_INPUT', 'Subscribe through the gateway over WebSocket (graphql-ws)');
        },
      },
    },
    LiveFeedEvent: {
      // Every value the feed reads carries its member's name (FeedValue).
      __resolveType: (v) => (v as FeedValue).__typename,
    },
  };
}
