import type { Resolvers, ResolversTypes } from '../__generated__/resolvers';
import { statusOf } from '../order/state';
import type { Context } from '../service';
import { money } from '../types';
import type { PaymentIntentDoc } from './model';
import type { PaymentService } from './service';

/** An intent follows its order: paid once the order is, cancelled with it. */
async function intentOf(intent: PaymentIntentDoc, { loaders }: Context): Promise<ResolversTypes['PaymentIntent']> {
  const order = await loaders.order.load(intent.orderId);
  const status = statusOf((await loaders.transitions.load(intent.orderId)).at(-1));
  return {
    id: intent._id,
    order: order!,
    amount: money(intent.amount),
    status: status === 'PENDING_PAYMENT' ? 'REQUIRES_PAYMENT' : status === 'CANCELLED' ? 'CANCELLED' : 'SUCCEEDED',
    provider: intent.provider,
    clientParams: intent.clientParams,
    createdAt: intent.createdAt,
  };
}

export function paymentResolvers(payments: PaymentService): Resolvers {
  return {
    Mutation: {
      payOrder: async (_, { input }, ctx) => intentOf(await payments.payOrder(ctx.viewer, input.orderId), ctx),
    },
    Order: {
      // Reached through Order, which is already gated to its member and staff.
      payments: async (o) =>
        (await payments.paymentsOf(o._id)).map((p) => ({
          id: p.id,
          amount: money(p.amount),
          receivedAt: p.receivedAt,
          status: p.status,
          refundReason: p.refundReason,
        })),
    },
  };
}
