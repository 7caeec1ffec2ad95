import type { Resolvers } from '../__generated__/resolvers';
import type { AmbassadorService } from './service';

export function ambassadorResolvers(ambassadors: AmbassadorService): Resolvers {
  return {
    Query: {
      ambassadorStatus: (_, { memberId }, { viewer }) => ambassadors.status(viewer, memberId),
      ambassadors: (_, __, { viewer }) => ambassadors.list(viewer),
    },
    Mutation: {
      applyForAmbassador: (_, { note }, { viewer }) => ambassadors.apply(viewer, note),
      approveAmbassador: (_, { memberId, showcaseDueDays }, { viewer }) => ambassadors.approve(viewer, memberId, showcaseDueDays),
      revokeAmbassador: (_, { memberId, reason }, { viewer }) => ambassadors.revoke(viewer, memberId, reason),
    },
    Ambassador: {
      memberId: (e) => e.accountId,
      status: (e) => e.status,
      appliedAt: (e) => e.appliedAt.toISOString(),
      approvedAt: (e) => e.approvedAt?.toISOString() ?? null,
      showcaseDueAt: (e) => e.showcaseDueAt?.toISOString() ?? null,
      overdue: (e) => ambassadors.overdue(e),
      revokedAt: (e) => e.revokedAt?.toISOString() ?? null,
      revokeReason: (e) => e.reason ?? null,
    },
    Post: {
      ambassador: (p) => ambassadors.isAmbassador(p.memberId),
    },
  };
}
