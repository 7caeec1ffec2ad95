import type { ReplyData } from '@flywheel/events';
import { fromBusError, type Bus } from '@flywheel/service-kit';
import type { QuoteAdjuster } from '../checkout/pricing';
import type { Adjustment, AdjustmentKind } from '../types';

type BenefitAdjustment = ReplyData<'membership.benefits.quote'>['adjustments'][number];

const KINDS: Record<BenefitAdjustment['kind'], AdjustmentKind> = { TIER: 'TIER', COUPON: 'COUPON', POINTS: 'POINTS' };

/**
 * Membership's benefits at checkout (docs/architecture.md), over NATS request/reply: the tier discount,
 * a coupon (the member's choice, or the best applicable one) and a points deduction. `lock`
 * takes the coupon and the points for the checkout id; `release` gives them back; membership
 * itself consumes them when `orders.order.paid` arrives and returns them on cancel or refund.
 * Refusals keep membership's code (BAD_USER_INPUT for more points than the balance, FORBIDDEN
 * for another member's coupon, CONFLICT for a coupon already used); no answer is UNAVAILABLE.
 */
export function createMembershipAdjuster(bus: Pick<Bus, 'request'>, timeoutMs?: number): QuoteAdjuster {
  return {
    name: 'membership',
    async quote(ctx) {
      const reply = await bus
        .request(
          'membership.benefits.quote',
          {
            checkoutId: ctx.checkoutId,
            memberId: ctx.memberId,
            lines: ctx.quote.lines.map((l) => ({
              skuId: l.skuId,
              productId: l.productId,
              quantity: l.quantity,
              unitPrice: l.unitPrice,
              priceKind: l.priceKind,
              ...(l.flashSaleId ? { flashSaleId: l.flashSaleId } : {}),
              ...(l.categoryIds ? { categoryIds: l.categoryIds } : {}),
            })),
            subtotal: ctx.runningTotal,
            coupon: ctx.benefits?.couponId ? { couponId: ctx.benefits.couponId } : ctx.benefits?.noCoupon ? 'NONE' : 'BEST',
            points: ctx.benefits?.points ?? 0,
          },
          { timeoutMs },
        )
        .catch(fromBusError);
      return {
        adjustments: reply.adjustments.map((a): Adjustment => ({ kind: KINDS[a.kind], amount: a.amount, label: a.label, ref: a.ref })),
        freeShipping: reply.freeShipping ?? false,
      };
    },
    async lock(checkoutId, memberId, adjustments) {
      const taken = adjustments.filter((a) => a.kind === 'COUPON' || a.kind === 'POINTS');
      if (!taken.length) return;
      await bus
        .request(
          'membership.benefits.lock',
          {
            checkoutId,
            memberId,
            adjustments: taken.map((a) => ({ kind: a.kind as 'COUPON' | 'POINTS', amount: a.amount, label: a.label, ref: a.ref })),
          },
          { timeoutMs },
        )
        .catch(fromBusError);
    },
    async release(checkoutId) {
      await bus.request('membership.benefits.release', { checkoutId }, { timeoutMs }).catch(fromBusError);
    },
  };
}

export type AddressSnapshot = NonNullable<ReplyData<'membership.address.snapshot'>['address']>;

/** The member's address book at membership, as checkout reads it (`membership.address.snapshot`). */
export interface AddressBook {
  /** The named address (NOT_FOUND unless the member's own), or the default; null when the book is empty. */
  snapshot(memberId: string, addressId: string | null): Promise<AddressSnapshot | null>;
}

export function createAddressBook(bus: Pick<Bus, 'request'>, timeoutMs?: number): AddressBook {
  return {
    async snapshot(memberId, addressId) {
      const reply = await bus
        .request('membership.address.snapshot', { memberId, ...(addressId ? { addressId } : {}) }, { timeoutMs })
        .catch(fromBusError);
      return reply.address;
    },
  };
}
