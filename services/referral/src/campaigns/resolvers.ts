import type { Resolvers } from '../__generated__/resolvers';
import type { CampaignService } from './service';

export function campaignResolvers(campaigns: CampaignService): Resolvers {
  return {
    Query: {
      inviteCampaign: (_, __, { viewer }) => campaigns.campaignFor(viewer),
      inviteReward: (_, { inviteeId }, { viewer }) => campaigns.rewardOf(viewer, inviteeId),
      referralRewardsForReview: (_, { first, after }, { viewer }) => campaigns.forReview(viewer, first, after),
    },
    Mutation: {
      setInviteCampaign: (_, { input, expectedVersion }, { viewer }) => campaigns.setCampaign(viewer, input, expectedVersion),
      approveReferralReward: (_, { inviteeId, note }, { viewer }) => campaigns.review(viewer, inviteeId, 'APPROVED', note),
      rejectReferralReward: (_, { inviteeId, note }, { viewer }) => campaigns.review(viewer, inviteeId, 'REJECTED', note),
    },
    InviteReward: {
      id: (r) => r.pair._id,
      invitee: (r) => ({ id: r.pair._id }),
      inviter: (r) => ({ id: r.pair.inviterId }),
      orderId: (r) => r.pair.orderId,
      rule: (r) => r.pair.rule ?? null,
      reason: (r) => r.pair.reason ?? null,
      inviterReward: (r) => r.pair.inviterReward,
      inviteeReward: (r) => r.pair.inviteeReward,
      campaignVersion: (r) => r.pair.campaignVersion,
      decidedAt: (r) => r.pair.at,
      reviewedAt: (r) => r.review?.at ?? null,
      reversedAt: (r) => (r.status === 'REVERSED' ? (r.reversal?.at ?? null) : null),
    },
    InviteRewardConnection: {
      edges: (p) => p.nodes.map((node) => ({ node, cursor: node.pair._id })),
      pageInfo: (p) => ({ hasNextPage: p.hasNextPage, endCursor: p.nodes.at(-1)?.pair._id ?? null }),
    },
    ShareStats: {
      registrations: async (s) => (await campaigns.funnelOf(s.memberId)).registrations,
      firstPaidOrders: async (s) => (await campaigns.funnelOf(s.memberId)).firstPaidOrders,
    },
    ShareFunnel: {
      registrations: async (f) => (await campaigns.funnelOf(f.memberId)).registrations,
      firstPaidOrders: async (f) => (await campaigns.funnelOf(f.memberId)).firstPaidOrders,
    },
  };
}
