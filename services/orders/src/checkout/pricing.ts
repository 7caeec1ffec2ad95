import type { Adjustment, AppliedAdjustment, CatalogQuote, OrderSourceDoc } from '../types';
import type { ReferralOffer } from './request';

export type { Adjustment, AppliedAdjustment, CatalogQuote } from '../types';

export interface BenefitChoice {
  couponId?: string | null;
  /** No coupon at all (otherwise the best applicable one is applied). */
  noCoupon?: boolean;
  /** Points to spend; 0 for none. */
  points?: number;
}

export interface PricingContext {
  /** Also the order id: locks are keyed by it, so a replayed checkout takes nothing twice. */
  checkoutId: string;
  memberId: string;
  source: OrderSourceDoc;
  quote: CatalogQuote;
  /** What the member asked for at checkout: a coupon (or none) and points to spend. */
  benefits?: BenefitChoice;
  /** The group buy or bargain the order is placed under, if any (referral's adjuster prices it). */
  referralOffer?: ReferralOffer | null;
  /** What adjusters earlier in the list already took off (a coupon threshold sees points, …). */
  applied: readonly AppliedAdjustment[];
  /** Integer fen: the catalog total less `applied`. */
  runningTotal: number;
}

/**
 * The pricing extension point of checkout, one per source of discounts. Membership (coupons,
 * points deduction, member-day benefits over `membership.benefits.quote|lock|release`) and
 * referral (group-buy and bargain prices over `referral.price.quote`) plug in here; the list is
 * empty until they exist, so an order costs exactly the catalog's quote.
 *
 * The saga calls, in list order: `quote` for every adjuster (no side effects), then, after stock
 * is reserved, `lock` for every adjuster; when the checkout fails or is abandoned, `release` for
 * every adjuster, including ones that never locked (it must be an idempotent no-op then).
 */
export interface QuoteAdjuster {
  /** Stable name stored on each adjustment, e.g. `membership.coupon`. */
  readonly name: string;
  /** The adjustments, or with them the perks that are not money off (a tier's free shipping). */
  quote(ctx: PricingContext): Promise<Adjustment[] | { adjustments: Adjustment[]; freeShipping?: boolean }>;
  /** Takes what the adjustments use, keyed by checkout id; idempotent. A refusal fails the checkout. */
  lock(
    checkoutId: string,
    memberId: string,
    adjustments: readonly Adjustment[],
    choice?: Pick<PricingContext, 'referralOffer'>,
  ): Promise<void>;
  /** Gives back what `lock` took for this checkout, if anything; idempotent. */
  release(checkoutId: string): Promise<void>;
}

export interface PricedCheckout {
  /** Integer fen: the catalog's total. */
  subtotal: number;
  adjustments: AppliedAdjustment[];
  /** Integer fen: what the member pays for the goods (shipping comes on top, see shipping/). */
  total: number;
  /** An adjuster granted free shipping (membership: the tier's benefit); absent when none did. */
  freeShipping?: true;
}

/** Runs the adjusters in order over the catalog's quote; the result never goes below zero. */
export async function priceCheckout(
  adjusters: readonly QuoteAdjuster[],
  base: Omit<PricingContext, 'applied' | 'runningTotal'>,
): Promise<PricedCheckout> {
  const subtotal = base.quote.total;
  const applied: AppliedAdjustment[] = [];
  let total = subtotal;
  let freeShipping = false;
  for (const adjuster of adjusters) {
    const answer = await adjuster.quote({ ...base, applied: [...applied], runningTotal: total });
    const proposed = Array.isArray(answer) ? answer : answer.adjustments;
    if (!Array.isArray(answer) && answer.freeShipping) freeShipping = true;
    for (const a of proposed) {
      if (!Number.isSafeInteger(a.amount) || a.amount > 0) throw new Error(`adjuster ${adjuster.name} proposed a non-discount ${a.amount}`);
      if (a.skuId && !base.quote.lines.some((l) => l.skuId === a.skuId)) {
        throw new Error(`adjuster ${adjuster.name} adjusted SKU ${a.skuId}, which is not in the order`);
      }
      if (total + a.amount < 0) throw new Error(`adjuster ${adjuster.name} took the total below zero`);
      total += a.amount;
      applied.push({ ...a, adjuster: adjuster.name });
    }
  }
  return { subtotal, adjustments: applied, total, ...(freeShipping ? { freeShipping: true as const } : {}) };
}
