import type { Resolvers } from '../__generated__/resolvers';

const cny = (amount: number) => ({ amount, currency: 'CNY' });

export const salesResolvers: Resolvers = {
  Mutation: {
    enterLiveRoom: async (_, { roomId, visitorId }, { viewer, sales, loaders }) => {
      await sales.enter(viewer, roomId, visitorId);
      return (await loaders.liveRoom.load(roomId))!;
    },
  },
  LiveRoom: {
    sales: (r, _, { viewer, sales }) => sales.report(viewer, r._id.toHexString()),
  },
  LiveRoomSales: {
    gmv: (s) => cny(s.gmv),
    refunded: (s) => cny(s.refunded),
    netGmv: (s) => cny(s.netGmv),
    topProducts: (s, { first }, { sales }) => sales.rank(s.products, first ?? 10),
  },
  LiveRoomProductSales: {
    product: (p) => ({ id: p.productId }),
    gmv: (p) => cny(p.gmv),
  },
};
