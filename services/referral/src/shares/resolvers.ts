import { DateTime } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import { shareQuery, type ShareService } from './service';

export function shareResolvers(shares: ShareService): Resolvers {
  return {
    DateTime,
    Query: {
      shareFunnel: (_, { memberId }, { viewer }) => shares.funnel(viewer, memberId),
    },
    Mutation: {
      createShareLink: (_, { input }, { viewer }) => shares.createShareLink(viewer, input),
      recordShareClick: (_, { shareId, visitorId }, { viewer }) => shares.recordShareClick(viewer, shareId, visitorId),
    },
    ShareLink: {
      id: (s) => s._id,
      target: (s) => ({ kind: s.targetKind, id: s.targetId }),
      query: (s) => shareQuery(s),
      createdAt: (s) => s.at,
    },
    ShareFunnel: {
      member: (f) => ({ id: f.memberId }),
    },
    Member: {
      shareStats: (m, _, { viewer }) => shares.statsOf(viewer, m.id),
    },
  };
}
