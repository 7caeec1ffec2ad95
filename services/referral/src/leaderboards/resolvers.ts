import type { Resolvers } from '../__generated__/resolvers';
import type { LeaderboardService } from './service';

export function leaderboardResolvers(boards: LeaderboardService): Resolvers {
  return {
    Query: {
      referralLeaderboard: (_, args, { viewer }) =>
        boards.leaderboard(viewer, { board: args.board, period: args.period, at: args.at ? new Date(args.at) : null, first: args.first }),
    },
    ReferralStanding: {
      member: (s) => ({ id: s.memberId }),
    },
  };
}
