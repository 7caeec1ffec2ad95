import { isStaff } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { ShowcaseRewards } from './events';
import type { PostService } from './service';

export function postResolvers(posts: PostService, rewards: ShowcaseRewards): Resolvers {
  return {
    Query: {
      posts: (_, { first, after, groupId }) => posts.list({ first, after, groupId }),
      post: (_, { id }, { viewer }) => posts.post(viewer, id),
      postReviewQueue: (_, { first }, { viewer }) => posts.reviewQueue(viewer, first),
      communityBannedWords: (_, __, { viewer }) => posts.bannedWords.list(viewer),
      showcaseReward: (_, __, { viewer }) => rewards.rule(viewer),
    },
    Mutation: {
      publishPost: (_, { input }, { viewer }) => posts.publish(viewer, input),
      postShowcase: (_, { input }, { viewer }) => posts.showcase(viewer, input),
      commentOnPost: (_, { postId, body }, { viewer }) => posts.comment(viewer, postId, body),
      likePost: (_, { postId, count }, { viewer }) => posts.like(viewer, postId, count ?? 1),
      reportPost: (_, { postId, reason }, { viewer }) => posts.report(viewer, postId, reason),
      hidePost: (_, { postId, reason }, { viewer }) => posts.moderate(viewer, postId, true, reason),
      restorePost: (_, { postId, reason }, { viewer }) => posts.moderate(viewer, postId, false, reason),
      setShowcaseReward: (_, { input }, { viewer }) => rewards.setRule(viewer, input),
      setCommunityBannedWords: (_, { words, expectedVersion }, { viewer }) => posts.bannedWords.save(viewer, words, expectedVersion),
    },
    Product: {
      // Catalog owns the product; a reference is all community needs to answer for it.
      __resolveReference: (ref) => ({ id: ref.id }),
      showcasePosts: async (p, { first }) =>
        (await posts.list({ productId: p.id, first: first ?? 10, showcases: true })).edges.map((e) => e.node),
      rating: (p) => posts.rating(p.id),
    },
    Post: {
      id: (p) => p._id,
      author: (p) => ({ id: p.memberId }),
      product: (p) => (p.productId ? { id: p.productId } : null),
      group: (p, _, { loaders }) => (p.groupId ? loaders.group.load(p.groupId) : null),
      showcase: (p) => p.showcase ?? null,
      hidden: (p, _, { viewer }) => (isStaff(viewer) ? p.hidden : null),
      reportCount: (p, _, { viewer }) => (isStaff(viewer) ? posts.reportCount(p._id) : null),
      reward: (p, _, { viewer }) => rewards.rewardOf(viewer, p),
      likes: (p) => posts.likes(p._id),
      comments: (p, { first, after }) => posts.comments(p._id, { first, after }),
      createdAt: (p) => p.at,
    },
    PostComment: {
      id: (c) => c._id,
      author: (c) => ({ id: c.memberId }),
    },
  };
}
