import type { Resolvers } from '../__generated__/resolvers';
import type { Fulfilment } from './service';

export function fulfilmentResolvers(fulfilment: Fulfilment): Resolvers {
  return {
    Mutation: {
      shipOrder: (_, { input }, { viewer }) => fulfilment.shipOrder(viewer, input),
      markOrderDelivered: (_, { input }, { viewer }) => fulfilment.markOrderDelivered(viewer, input.orderId),
      completeOrder: (_, { input }, { viewer }) => fulfilment.completeOrder(viewer, input.orderId),
      confirmDelivery: (_, { input }, { viewer }) => fulfilment.confirmDelivery(viewer, input.orderId),
    },
    Order: {
      shipments: async (o, _, { loaders }) =>
        fulfilment.shipments(o, await loaders.transitions.load(o._id)).map((s) => ({
          id: s.id,
          carrier: s.carrier,
          trackingNumber: s.trackingNumber,
          lines: s.lines.map((l) => ({ sku: { id: l.skuId }, quantity: l.quantity })),
          shippedAt: s.shippedAt,
        })),
    },
  };
}
