import type { ModuleDeps } from '../main';
import type { CommunityModule } from '../modules';
import { createShowcaseRewards, type ShowcaseRewards } from './events';
import { createPostModels } from './model';
import { postResolvers } from './resolvers';
import { createPostService, POST_LIKE_FLUSH_MS, type PostService } from './service';

/** Posts, showcases (晒单) verified by paid orders, product ratings, comments, likes and moderation. */
export function createPostsModule(deps: ModuleDeps): CommunityModule & { posts: PostService; rewards: ShowcaseRewards } {
  const models = createPostModels(deps.db);
  const rewards = createShowcaseRewards({ models, bus: deps.bus, logger: deps.logger, now: deps.now });
  const posts = createPostService({
    models,
    core: deps.models,
    now: deps.now,
    kick: deps.kick,
    logger: deps.logger,
    showcasePublished: rewards.showcasePublished,
    showcaseRemoved: rewards.showcaseRemoved,
  });
  let timer: NodeJS.Timeout | undefined;
  const tick = () => {
    void posts.flushLikes().finally(() => {
      if (timer) timer = setTimeout(tick, POST_LIKE_FLUSH_MS).unref();
    });
  };
  return {
    name: 'posts',
    posts,
    rewards,
    resolvers: postResolvers(posts, rewards),
    outboxSources: [models.Post, models.PostState],
    on: {
      'orders.order.paid': (env) => posts.orderPaid(env.data),
      'orders.order.refunded': (env) => posts.orderRefunded(env.data),
    },
    sweep: () => rewards.retry(),
    init: async () => {
      timer = setTimeout(tick, POST_LIKE_FLUSH_MS).unref();
    },
    stop: async () => {
      clearTimeout(timer);
      timer = undefined;
      await posts.flushLikes();
    },
  };
}
