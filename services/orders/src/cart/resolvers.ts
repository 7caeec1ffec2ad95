import type { Cart, Resolvers } from '../__generated__/resolvers';
import { money } from '../types';
import type { CartService, CartView } from './service';

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

export function cartResolvers(cart: CartService): Resolvers {
  return {
    Query: {
      cart: async (_, __, { viewer }) => cartOf(await cart.cart(viewer)),
    },
    Mutation: {
      addCartLine: async (_, { input }, { viewer }) => cartOf(await cart.addLine(viewer, input)),
      updateCartLine: async (_, { input }, { viewer }) => cartOf(await cart.updateLine(viewer, input)),
      removeCartLine: async (_, { input }, { viewer }) => cartOf(await cart.removeLine(viewer, input)),
    },
  };
}
