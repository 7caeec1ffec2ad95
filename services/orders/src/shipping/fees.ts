import { AppError } from '@flywheel/service-kit';
import type { FeeRuleDoc, OrderShippingDoc, ShippingTemplateEntry } from './model';

// The fee of a checkout, pure: the template in force, the province shipped to, the lines, the
// goods total after discounts and the member's tier benefit.

export interface FeeLine {
  quantity: number;
  /** Grams per unit; a SKU without a weight counts 0 g. */
  weightGrams?: number;
}

/** firstFee for the first `first` (at least one parcel), then additionalFee per started `additional`. */
export function ruleFee(rule: FeeRuleDoc, amount: number): number {
  const beyond = Math.max(0, amount - rule.first);
  return rule.firstFee + Math.ceil(beyond / rule.additional) * rule.additionalFee;
}

export interface FeeInput {
  template: ShippingTemplateEntry | null;
  /** Null when the order has no address (a member whose book is empty): the default rule applies. */
  provinceCode: string | null;
  provinceName?: string | null;
  lines: readonly FeeLine[];
  /** Integer fen: the goods after every discount (the 包邮 threshold is on this). */
  goodsTotal: number;
  /** The member's tier ships free (membership's benefit). */
  tierFreeShipping: boolean;
}

/**
 * The order's shipping charge. An undeliverable province is refused (BAD_USER_INPUT on
 * `addressId`, reason UNDELIVERABLE_REGION) whatever the waivers. Waivers, in order: the tier's
 * free shipping, then the threshold; the base fee is kept so the client can show it struck out.
 */
export function shippingFee(input: FeeInput): OrderShippingDoc {
  const t = input.template;
  if (!t || !t.enabled) return { fee: 0, baseFee: 0, waivedBy: null, templateVersion: t?.seq ?? null };
  if (input.provinceCode && t.undeliverable.includes(input.provinceCode)) {
    throw new AppError('BAD_USER_INPUT', `The shop does not deliver to ${input.provinceName || input.provinceCode}`, {
      field: 'addressId',
      reason: 'UNDELIVERABLE_REGION',
    });
  }
  const rule = (input.provinceCode && t.regionRules.find((r) => r.provinceCodes.includes(input.provinceCode!))) || t.defaultRule;
  const amount =
    t.method === 'WEIGHT'
      ? input.lines.reduce((s, l) => s + (l.weightGrams ?? 0) * l.quantity, 0)
      : input.lines.reduce((s, l) => s + l.quantity, 0);
  const baseFee = ruleFee(rule, amount);
  const waivedBy =
    baseFee === 0
      ? null
      : input.tierFreeShipping
        ? ('TIER' as const)
        : t.freeThreshold !== null && input.goodsTotal >= t.freeThreshold
          ? ('THRESHOLD' as const)
          : null;
  return { fee: waivedBy ? 0 : baseFee, baseFee, waivedBy, templateVersion: t.seq };
}
