import type { Resolvers } from '../__generated__/resolvers';
import type { MemberRef } from '../service';
import { money, type AppliedAdjustment } from '../types';
import type { Orders } from './service';

// Member is owned by membership; orders only ever holds its key.
const member = (id: string): MemberRef => ({ id });

export const adjustmentsOf = (list: readonly AppliedAdjustment[]) =>
  list.map((a) => ({ kind: a.kind, label: a.label, amount: money(a.amount), sku: a.skuId ? { id: a.skuId } : null }));

export function orderResolvers(orders: Orders): Resolvers {
  return {
    Query: {
      order: (_, { id }, { viewer, loaders }) => orders.order(viewer, loaders, id),
      orders: (_, args, { viewer }) => orders.searchOrders(viewer, args),
    },
    Mutation: {
      cancelOrder: (_, { input }, { viewer }) => orders.cancelOrder(viewer, input.orderId),
    },
    Member: {
      __resolveReference: (ref) => member(ref.id),
      orders: (m, args, { viewer }) => orders.memberOrders(viewer, m.id, args),
    },
    Order: {
      __resolveReference: (ref, { viewer, loaders }) => orders.orderReference(viewer, loaders, ref.id),
      id: (o) => o._id,
      member: (o) => member(o.memberId),
      status: (o, _, { loaders }) => orders.status(loaders, o),
      subtotal: (o) => money(o.subtotal ?? o.total),
      adjustments: (o) => adjustmentsOf(o.adjustments ?? []),
      total: (o) => money(o.total),
      payBy: (o, _, { loaders }) => orders.payByOf(loaders, o),
      history: (o, _, { loaders }) => orders.history(loaders, o),
    },
    OrderLine: {
      product: (l) => ({ id: l.productId }),
      sku: (l) => ({ id: l.skuId }),
      unitPrice: (l) => money(l.unitPrice),
      subtotal: (l) => money(l.subtotal),
      priceKind: (l) => l.priceKind ?? 'LIST',
    },
  };
}
