import type { Resolvers } from '../__generated__/resolvers';
import type { GroupBuyHolds } from './service';

export function groupBuyResolvers(holds: GroupBuyHolds): Resolvers {
  return {
    Order: {
      groupBuy: (o) => holds.stateOf(o),
    },
  };
}
