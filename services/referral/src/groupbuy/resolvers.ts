import type { Resolvers } from '../__generated__/resolvers';
import type { GroupBuyService } from './service';

export function groupBuyResolvers(groupBuys: GroupBuyService, now: () => Date): Resolvers {
  return {
    Query: {
      groupBuyOffers: () => groupBuys.offers(),
      groupBuyOffer: (_, { id }) => groupBuys.offer(id),
      groupBuy: (_, { id }) => groupBuys.group(id),
      openGroupBuys: (_, { offerId }) => groupBuys.openGroups(offerId),
    },
    Mutation: {
      createGroupBuyOffer: (_, { input }, { viewer }) => groupBuys.createOffer(viewer, input),
    },
    GroupBuyOffer: {
      id: (o) => o._id,
      active: (o) => o.startsAt <= now() && now() < o.endsAt,
    },
    GroupBuy: {
      id: (g) => g._id,
      offer: (g) => groupBuys.offerOf(g.offerId),
      leader: (g) => ({ id: g.leaderId }),
    },
    Member: {
      groupBuys: (m, _, { viewer }) => groupBuys.memberGroups(viewer, m.id),
    },
  };
}
