import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import { money, type MemberRef } from './service';

// Member is owned by membership; orders only ever holds its key.
const member = (id: string): MemberRef => ({ id });

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    order: (_, { id }, { viewer, service, loaders }) => service.order(viewer, loaders, id),
  },
  Mutation: {
    placeOrder: (_, { input }, { viewer, service }) => service.placeOrder(viewer, input),
  },
  Member: {
    __resolveReference: (ref) => member(ref.id),
    orders: (m, args, { viewer, service }) => service.memberOrders(viewer, m.id, args),
  },
  Order: {
    __resolveReference: (ref, { viewer, service, loaders }) => service.orderReference(viewer, loaders, ref.id),
    id: (o) => o._id,
    member: (o) => member(o.memberId),
    total: (o) => money(o.total),
  },
  OrderLine: {
    product: (l) => ({ id: l.productId }),
    sku: (l) => ({ id: l.skuId }),
    unitPrice: (l) => money(l.unitPrice),
    subtotal: (l) => money(l.subtotal),
  },
};
