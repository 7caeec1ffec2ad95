import type { Resolvers } from '../__generated__/resolvers';
import type { ChallengeService } from './service';

export function challengeResolvers(challenges: ChallengeService): Resolvers {
  return {
    Query: {
      challenges: (_, args) => challenges.list(args),
      challenge: (_, { id }) => challenges.get(id),
      challengeProgress: (_, { challengeId, memberId }, { viewer }) => challenges.progress(viewer, challengeId, memberId),
      challengeLeaderboard: (_, { challengeId, first }, { viewer }) => challenges.leaderboard(viewer, challengeId, first),
    },
    Mutation: {
      createChallenge: (_, { input }, { viewer }) => challenges.createChallenge(viewer, input),
      joinChallenge: (_, { challengeId }, { viewer }) => challenges.join(viewer, challengeId),
      checkInChallenge: (_, { challengeId }, { viewer }) => challenges.checkIn(viewer, challengeId),
    },
    Challenge: {
      __resolveReference: (ref) => challenges.get(ref.id),
      id: (c) => c._id,
      startsAt: (c) => c.startsAt.toISOString(),
      endsAt: (c) => c.endsAt.toISOString(),
      createdAt: (c) => c.createdAt.toISOString(),
    },
    ChallengeProgress: {
      challenge: async (p) => (await challenges.get(p.challengeId))!,
      member: (p) => ({ id: p.memberId }),
      completedAt: (p) => p.completedAt?.toISOString() ?? null,
      rewardState: (p) => p.reward,
      rewardCouponId: (p) => p.couponId,
    },
    ChallengeStanding: {
      rank: (r) => r.rank,
      member: (r) => ({ id: r.standing.memberId }),
      days: (r) => r.standing.days,
      longestStreak: (r) => r.standing.longest,
      completedAt: (r) => r.standing.completedAt?.toISOString() ?? null,
    },
  };
}
