import type { Connection } from 'mongoose';
import type { Logger } from '@flywheel/service-kit';
import type { FeedService } from '../feed/service';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { createLikeModels } from './model';
import { likeResolvers } from './resolvers';
import { createLikeService, LIKE_FLUSH_MS, type LikeService } from './service';

export function createLikesModule(deps: {
  db: Connection;
  models: Models;
  rooms: LiveService;
  feed: FeedService;
  now: () => Date;
  logger: Logger;
  participated?: (roomId: string, memberId: string) => Promise<void>;
}): LiveModule & { likes: LikeService } {
  const models = createLikeModels(deps.db);
  const likes = createLikeService({ ...deps, models, core: deps.models, announce: deps.feed.announce });
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    likes.prune();
    void likes.flush().finally(() => {
      if (timer) timer = setTimeout(tick, LIKE_FLUSH_MS).unref();
    });
  };
  return {
    name: 'likes',
    likes,
    resolvers: likeResolvers(likes, deps.feed),
    init: async () => {
      timer = setTimeout(tick, LIKE_FLUSH_MS).unref();
    },
    // Every replica writes its own taps; the period sweeper has nothing to add.
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await likes.flush();
    },
  };
}
