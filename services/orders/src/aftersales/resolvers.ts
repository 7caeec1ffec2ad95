import type { Resolvers, ResolversTypes } from '../__generated__/resolvers';
import type { Context } from '../service';
import { money } from '../types';
import type { AfterSales } from './service';
import { afterSalesOf, afterSaleView, refundedOf, type AfterSaleView } from './view';
import type { AfterSaleDoc } from './model';

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

/** A listed after-sale as of its order's ledger. */
const listed = async (doc: AfterSaleDoc, ctx: Context) =>
  afterSaleOf(afterSaleView(await ctx.loaders.transitions.load(doc.orderId), doc._id)!, ctx);

export function afterSaleResolvers(afterSales: AfterSales): Resolvers {
  return {
    Query: {
      afterSale: async (_, { id }, ctx) => listed(await afterSales.find(ctx.viewer, id), ctx),
      afterSales: async (_, args, ctx) => {
        const page = await afterSales.list(ctx.viewer, args);
        return { ...page, edges: await Promise.all(page.edges.map(async (e) => ({ cursor: e.cursor, node: await listed(e.node, ctx) }))) };
      },
    },
    Mutation: {
      requestAfterSale: async (_, { input }, ctx) => afterSaleOf(await afterSales.request(ctx.viewer, input), ctx),
      approveAfterSale: async (_, { input }, ctx) => afterSaleOf(await afterSales.approve(ctx.viewer, input), ctx),
      rejectAfterSale: async (_, { input }, ctx) => afterSaleOf(await afterSales.reject(ctx.viewer, input), ctx),
      receiveReturn: async (_, { input }, ctx) => afterSaleOf(await afterSales.receiveReturn(ctx.viewer, input), ctx),
    },
    Order: {
      afterSales: async (o, _, ctx) => Promise.all(afterSalesOf(await ctx.loaders.transitions.load(o._id)).map((v) => afterSaleOf(v, ctx))),
      refunded: async (o, _, { loaders }) => money(refundedOf(await loaders.transitions.load(o._id))),
    },
  };
}
