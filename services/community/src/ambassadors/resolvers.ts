import type { Resolvers } from '../__generated__/resolvers';
import type { AmbassadorService, TrialService } from './service';

export function ambassadorResolvers(ambassadors: AmbassadorService, trials: TrialService): Resolvers {
  return {
    Query: {
      ambassadorStatus: (_, { memberId }, { viewer }) => ambassadors.status(viewer, memberId),
      ambassadors: (_, __, { viewer }) => ambassadors.list(viewer),
    },
    Mutation: {
      applyForAmbassador: (_, { note }, { viewer }) => ambassadors.apply(viewer, note),
      approveAmbassador: (_, { memberId, showcaseDueDays }, { viewer }) => ambassadors.approve(viewer, memberId, showcaseDueDays),
      revokeAmbassador: (_, { memberId, reason }, { viewer }) => ambassadors.revoke(viewer, memberId, reason),
      sendAmbassadorTrial: (_, { input }, { viewer }) => trials.send(viewer, input),
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
      trials: (e, _, { viewer }) => trials.ofMember(viewer, e.accountId),
    },
    AmbassadorTrial: {
      couponTemplateId: (t) => t.templateId,
      issuedAt: (t) => t.issuedAt.toISOString(),
      orderedAt: (t) => t.orderedAt?.toISOString() ?? null,
      showcasedAt: (t) => t.showcasedAt?.toISOString() ?? null,
    },
    Member: {
      ambassadorTrials: (m, _, { viewer }) => trials.ofMember(viewer, m.id),
    },
    Post: {
      ambassador: (p) => ambassadors.isAmbassador(p.memberId),
    },
  };
}
