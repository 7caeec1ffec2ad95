import { fromBusError, type Bus } from '@flywheel/service-kit';
import type { QuoteAdjuster } from '../checkout/pricing';
import type { Adjustment } from '../types';

/**
 * Referral's offer prices at checkout (拼团 group buys, 砍价 bargains) over `referral.price.quote|lock|release`.
 * Asks only when the order names an offer (`referralOffer`): an order without one costs referral
 * nothing. Referral prices only the offer's SKU line; `lock` takes the group slot or the bargain's
 * purchase for the checkout id (CONFLICT, e.g. reason GROUP_FULL, when it is gone; nothing taken),
 * `release` gives it back (a failed checkout; an unpaid order's cancellation reaches referral as
 * `orders.order.cancelled`). Generic over the offer's kind: referral dispatches by it.
 */
export function createReferralAdjuster(bus: Pick<Bus, 'request'>, timeoutMs?: number): QuoteAdjuster {
  return {
    name: 'referral',
    async quote(ctx) {
      if (!ctx.referralOffer) return [];
      const reply = await bus
        .request(
          'referral.price.quote',
          {
            checkoutId: ctx.checkoutId,
            memberId: ctx.memberId,
            offer: ctx.referralOffer,
            lines: ctx.quote.lines.map((l) => ({ skuId: l.skuId, quantity: l.quantity, unitPrice: l.unitPrice })),
          },
          { timeoutMs },
        )
        .catch(fromBusError);
      return reply.adjustments.map((a): Adjustment => ({ kind: a.kind, amount: a.amount, label: a.label, ref: a.ref, skuId: a.skuId }));
    },
    async lock(checkoutId, memberId, adjustments, choice) {
      const offer = choice?.referralOffer;
      if (!offer) return;
      await bus
        .request(
          'referral.price.lock',
          {
            checkoutId,
            memberId,
            offer,
            adjustments: adjustments.flatMap((a) =>
              (a.kind === 'GROUP_BUY' || a.kind === 'BARGAIN') && a.skuId
                ? [{ kind: a.kind, skuId: a.skuId, amount: a.amount, label: a.label, ref: a.ref }]
                : [],
            ),
          },
          { timeoutMs },
        )
        .catch(fromBusError);
    },
    async release(checkoutId) {
      await bus.request('referral.price.release', { checkoutId }, { timeoutMs }).catch(fromBusError);
    },
  };
}
