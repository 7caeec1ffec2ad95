import { scalarResolvers } from '@flywheel/service-kit';
import type { Cart, Resolvers, ResolversTypes } from './__generated__/resolvers';
import type { CartView } from './cart/service';
import type { PaymentIntentDoc } from './payments/model';
import type { AppliedAdjustment } from './pricing';
import { money, type AfterSaleView, type Context, type MemberRef } from './service';

// Member is owned by membership; orders only ever holds its key.
const member = (id: string): MemberRef => ({ id });

function cartOf(view: CartView): Cart {
  return {
    lines: view.lines.map((l) => ({
      sku: { id: l.skuId },
      product: { id: l.productId },
      quantity: l.quantity,
      unitPrice: l.unitPrice === null ? null : money(l.unitPrice),
      subtotal: l.subtotal === null ? null : money(l.subtotal),
      priceKind: l.priceKind,
      addedUnitPrice: money(l.seenUnitPrice),
      status: l.status,
      message: l.message,
      addedAt: l.addedAt,
    })),
    total: money(view.total),
    itemCount: view.itemCount,
  };
}

async function intentOf(intent: PaymentIntentDoc, { service, loaders }: Context): Promise<ResolversTypes['PaymentIntent']> {
  const order = await loaders.order.load(intent.orderId);
  return {
    id: intent._id,
    order: order!,
    amount: money(intent.amount),
    status: await service.intentStatus(loaders, intent),
    provider: intent.provider,
    clientParams: intent.clientParams,
    createdAt: intent.createdAt,
  };
}

async function afterSaleOf(view: AfterSaleView, { loaders }: Context): Promise<ResolversTypes['AfterSale']> {
  return {
    id: view.id,
    order: (await loaders.order.load(view.orderId))!,
    kind: view.kind,
    status: view.status,
    lines: view.lines.map((l) => ({ sku: { id: l.skuId }, quantity: l.quantity, amount: money(l.amount) })),
    amount: money(view.amount),
    reason: view.reason,
    note: view.note,
    createdAt: view.createdAt,
    refundedAt: view.refundedAt,
  };
}

const adjustmentsOf = (list: readonly AppliedAdjustment[]) =>
  list.map((a) => ({ kind: a.kind, label: a.label, amount: money(a.amount), sku: a.skuId ? { id: a.skuId } : null }));

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    order: (_, { id }, { viewer, service, loaders }) => service.order(viewer, loaders, id),
    orders: (_, args, { viewer, service }) => service.searchOrders(viewer, args),
    cart: async (_, __, { viewer, service }) => cartOf(await service.cart(viewer)),
    checkoutPreview: async (_, { input }, { viewer, service }) => {
      const p = await service.checkoutPreview(viewer, input);
      return { lines: p.lines, subtotal: money(p.subtotal), adjustments: adjustmentsOf(p.adjustments), total: money(p.total) };
    },
    afterSale: async (_, { id }, ctx) =>
      afterSaleOf(await ctx.service.afterSaleView(ctx.loaders, await ctx.service.afterSale(ctx.viewer, id)), ctx),
    afterSales: async (_, args, ctx) => {
      const page = await ctx.service.afterSales(ctx.viewer, args);
      return {
        ...page,
        edges: await Promise.all(
          page.edges.map(async (e) => ({
            cursor: e.cursor,
            node: await afterSaleOf(await ctx.service.afterSaleView(ctx.loaders, e.node), ctx),
          })),
        ),
      };
    },
  },
  Mutation: {
    placeOrder: (_, { input }, { viewer, service }) => service.placeOrder(viewer, input),
    addCartLine: async (_, { input }, { viewer, service }) => cartOf(await service.addCartLine(viewer, input)),
    updateCartLine: async (_, { input }, { viewer, service }) => cartOf(await service.updateCartLine(viewer, input)),
    removeCartLine: async (_, { input }, { viewer, service }) => cartOf(await service.removeCartLine(viewer, input)),
    cancelOrder: (_, { input }, { viewer, service }) => service.cancelOrder(viewer, input.orderId),
    payOrder: async (_, { input }, ctx) => intentOf(await ctx.service.payOrder(ctx.viewer, input.orderId), ctx),
    shipOrder: (_, { input }, { viewer, service }) => service.shipOrder(viewer, input),
    markOrderDelivered: (_, { input }, { viewer, service }) => service.markOrderDelivered(viewer, input.orderId),
    completeOrder: (_, { input }, { viewer, service }) => service.completeOrder(viewer, input.orderId),
    confirmDelivery: (_, { input }, { viewer, service }) => service.confirmDelivery(viewer, input.orderId),
    requestAfterSale: async (_, { input }, ctx) => afterSaleOf(await ctx.service.requestAfterSale(ctx.viewer, input), ctx),
    approveAfterSale: async (_, { input }, ctx) => afterSaleOf(await ctx.service.approveAfterSale(ctx.viewer, input), ctx),
    rejectAfterSale: async (_, { input }, ctx) => afterSaleOf(await ctx.service.rejectAfterSale(ctx.viewer, input), ctx),
    receiveReturn: async (_, { input }, ctx) => afterSaleOf(await ctx.service.receiveReturn(ctx.viewer, input), ctx),
  },
  Member: {
    __resolveReference: (ref) => member(ref.id),
    orders: (m, args, { viewer, service }) => service.memberOrders(viewer, m.id, args),
  },
  Order: {
    __resolveReference: (ref, { viewer, service, loaders }) => service.orderReference(viewer, loaders, ref.id),
    id: (o) => o._id,
    member: (o) => member(o.memberId),
    status: (o, _, { service, loaders }) => service.status(loaders, o),
    subtotal: (o) => money(o.subtotal ?? o.total),
    adjustments: (o) => adjustmentsOf(o.adjustments ?? []),
    total: (o) => money(o.total),
    payBy: (o, _, { service, loaders }) => service.payBy(loaders, o),
    history: (o, _, { service, loaders }) => service.history(loaders, o),
    payments: async (o, _, { service }) =>
      (await service.paymentsOf(o._id)).map((p) => ({
        id: p.id,
        amount: money(p.amount),
        receivedAt: p.receivedAt,
        status: p.status,
        refundReason: p.refundReason,
      })),
    shipments: async (o, _, { service, loaders }) =>
      (await service.shipments(loaders, o)).map((s) => ({
        id: s.id,
        carrier: s.carrier,
        trackingNumber: s.trackingNumber,
        lines: s.lines.map((l) => ({ sku: { id: l.skuId }, quantity: l.quantity })),
        shippedAt: s.shippedAt,
      })),
    afterSales: async (o, _, ctx) => Promise.all((await ctx.service.afterSalesOf(ctx.loaders, o)).map((v) => afterSaleOf(v, ctx))),
    refunded: async (o, _, { service, loaders }) => money(await service.refunded(loaders, o)),
  },
  OrderLine: {
    product: (l) => ({ id: l.productId }),
    sku: (l) => ({ id: l.skuId }),
    unitPrice: (l) => money(l.unitPrice),
    subtotal: (l) => money(l.subtotal),
    priceKind: (l) => l.priceKind ?? 'LIST',
  },
};
