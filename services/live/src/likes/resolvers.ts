import type { Resolvers } from '../__generated__/resolvers';
import type { FeedService } from '../feed/service';
import type { LikeService } from './service';

export function likeResolvers(likes: LikeService, feed: FeedService): Resolvers {
  return {
    Mutation: {
      likeLiveRoom: async (_, { roomId, count }, { viewer }) => ({ total: await likes.like(viewer, roomId, count ?? 1) }),
    },
    LiveRoom: {
      likes: (r) => likes.total(r._id.toHexString()),
      watching: (r) => feed.watching(r._id.toHexString()),
    },
  };
}
