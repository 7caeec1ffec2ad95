import type { Resolvers } from '../__generated__/resolvers';
import { adjustmentsOf } from '../order/resolvers';
import { money } from '../types';
import type { Checkout } from './service';

export function checkoutResolvers(checkout: Checkout): Resolvers {
  return {
    Query: {
      checkoutPreview: async (_, { input }, { viewer }) => {
        const p = await checkout.preview(viewer, input);
        return {
          lines: p.lines,
          subtotal: money(p.subtotal),
          adjustments: adjustmentsOf(p.adjustments),
          total: money(p.total),
          shippingFee: money(p.shipping.fee),
          shipping: { fee: money(p.shipping.fee), baseFee: money(p.shipping.baseFee), waivedBy: p.shipping.waivedBy },
          shippingAddress: p.shippingAddress,
        };
      },
    },
    Mutation: {
      placeOrder: (_, { input }, { viewer }) => checkout.placeOrder(viewer, input),
    },
  };
}
