import { badInput } from '@flywheel/service-kit';
import type { CouponKind, CouponScope, CouponTemplateDoc } from './model';

// Pure coupon rules (no I/O): template validation, a coupon's window, and what it takes off.

export const MAX_AMOUNT = 100_000_000; // ¥1,000,000 in fen
export const MAX_QUOTA = 1_000_000;
export const MAX_PER_MEMBER = 100;
export const MAX_SCOPE_IDS = 500;
export const MAX_VALID_DAYS = 3650;
const DAY_MS = 86_400_000;

export interface TemplateInput {
  name: string;
  kind: CouponKind;
  amount?: number | null;
  percentOff?: number | null;
  maxDiscount?: number | null;
  threshold?: number | null;
  scope?: CouponScope | null;
  productIds?: readonly string[] | null;
  categoryIds?: readonly string[] | null;
  validFrom?: Date | null;
  validUntil?: Date | null;
  validDaysAfterClaim?: number | null;
  totalQuota?: number | null;
  perMemberLimit?: number | null;
  claimable?: boolean | null;
  memberDayOnly?: boolean | null;
  /** Restricts the template to the current members of one community group. */
  groupId?: string | null;
}

export type TemplateFields = Omit<CouponTemplateDoc, '_id' | 'status' | 'createdAt' | 'createdBy' | 'stoppedAt'>;

const intIn = (v: unknown, min: number, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
const given = (v: unknown) => v !== null && v !== undefined;
const validDate = (d: unknown): d is Date => d instanceof Date && !Number.isNaN(d.getTime());

function ids(list: readonly string[] | null | undefined, field: string): string[] {
  const out = [...new Set((list ?? []).map((s) => s.trim()))];
  if (out.some((s) => !s || s.length > 64)) throw badInput(`${field} must be non-empty ids`, field);
  if (out.length > MAX_SCOPE_IDS) throw badInput(`at most ${MAX_SCOPE_IDS} ${field}`, field);
  return out;
}

/** Every rule of a template, checked before anything is stored; the first problem names its field. */
export function validateTemplate(input: TemplateInput, now: Date): TemplateFields {
  const name = (input.name ?? '').trim();
  if (name.length < 1 || name.length > 60) throw badInput('name must be 1..60 characters', 'name');

  let amount: number | null = null;
  let percentOff: number | null = null;
  let maxDiscount: number | null = null;
  if (input.kind === 'FIXED') {
    if (!intIn(input.amount, 1, MAX_AMOUNT)) throw badInput(`a FIXED coupon needs amount 1..${MAX_AMOUNT} fen`, 'amount');
    if (given(input.percentOff)) throw badInput('percentOff is only for PERCENT coupons', 'percentOff');
    if (given(input.maxDiscount)) throw badInput('maxDiscount is only for PERCENT coupons', 'maxDiscount');
    amount = input.amount!;
  } else if (input.kind === 'PERCENT') {
    if (!intIn(input.percentOff, 1, 99)) throw badInput('a PERCENT coupon needs percentOff 1..99', 'percentOff');
    if (!intIn(input.maxDiscount, 1, MAX_AMOUNT)) throw badInput(`a PERCENT coupon needs maxDiscount 1..${MAX_AMOUNT} fen`, 'maxDiscount');
    if (given(input.amount)) throw badInput('amount is only for FIXED coupons', 'amount');
    percentOff = input.percentOff!;
    maxDiscount = input.maxDiscount!;
  } else {
    throw badInput('kind must be FIXED or PERCENT', 'kind');
  }

  const threshold = input.threshold ?? 0;
  if (!intIn(threshold, 0, MAX_AMOUNT)) throw badInput(`threshold must be 0..${MAX_AMOUNT} fen`, 'threshold');

  const scope = input.scope ?? 'ALL';
  const productIds = ids(input.productIds, 'productIds');
  const categoryIds = ids(input.categoryIds, 'categoryIds');
  if (scope === 'ALL') {
    if (productIds.length) throw badInput('productIds need scope PRODUCTS', 'productIds');
    if (categoryIds.length) throw badInput('categoryIds need scope CATEGORIES', 'categoryIds');
  } else if (scope === 'PRODUCTS') {
    if (!productIds.length) throw badInput('scope PRODUCTS needs productIds', 'productIds');
    if (categoryIds.length) throw badInput('categoryIds need scope CATEGORIES', 'categoryIds');
  } else if (scope === 'CATEGORIES') {
    if (!categoryIds.length) throw badInput('scope CATEGORIES needs categoryIds', 'categoryIds');
    if (productIds.length) throw badInput('productIds need scope PRODUCTS', 'productIds');
  } else {
    throw badInput('scope must be ALL, PRODUCTS or CATEGORIES', 'scope');
  }

  let validFrom: Date | null = null;
  let validUntil: Date | null = null;
  let validDaysAfterClaim: number | null = null;
  if (given(input.validDaysAfterClaim)) {
    if (given(input.validFrom) || given(input.validUntil)) {
      throw badInput('give either validFrom/validUntil or validDaysAfterClaim, not both', 'validDaysAfterClaim');
    }
    if (!intIn(input.validDaysAfterClaim, 1, MAX_VALID_DAYS)) {
      throw badInput(`validDaysAfterClaim must be 1..${MAX_VALID_DAYS}`, 'validDaysAfterClaim');
    }
    validDaysAfterClaim = input.validDaysAfterClaim!;
  } else {
    if (!validDate(input.validFrom)) throw badInput('give validFrom and validUntil, or validDaysAfterClaim', 'validFrom');
    if (!validDate(input.validUntil)) throw badInput('give validFrom and validUntil, or validDaysAfterClaim', 'validUntil');
    if (input.validUntil <= input.validFrom) throw badInput('validUntil must be after validFrom', 'validUntil');
    if (input.validUntil <= now) throw badInput('validUntil must be in the future', 'validUntil');
    validFrom = input.validFrom;
    validUntil = input.validUntil;
  }

  const totalQuota = input.totalQuota ?? null;
  if (totalQuota !== null && !intIn(totalQuota, 1, MAX_QUOTA)) throw badInput(`totalQuota must be 1..${MAX_QUOTA} (or null)`, 'totalQuota');
  const perMemberLimit = input.perMemberLimit ?? 1;
  if (!intIn(perMemberLimit, 1, MAX_PER_MEMBER)) throw badInput(`perMemberLimit must be 1..${MAX_PER_MEMBER}`, 'perMemberLimit');
  const claimable = input.claimable ?? true;
  const memberDayOnly = input.memberDayOnly ?? false;
  if (memberDayOnly && !claimable) throw badInput('memberDayOnly applies to claimable templates only', 'memberDayOnly');
  const groupId = given(input.groupId) ? input.groupId!.trim() : null;
  if (groupId !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(groupId)) throw badInput('groupId must be a community group id', 'groupId');

  return {
    name,
    kind: input.kind,
    amount,
    percentOff,
    maxDiscount,
    threshold,
    scope,
    productIds,
    categoryIds,
    validFrom,
    validUntil,
    validDaysAfterClaim,
    totalQuota,
    perMemberLimit,
    claimable,
    memberDayOnly,
    groupId,
  };
}

/** The window of a coupon issued at `at`. */
export function couponWindow(t: Pick<CouponTemplateDoc, 'validFrom' | 'validUntil' | 'validDaysAfterClaim'>, at: Date) {
  if (t.validDaysAfterClaim !== null && t.validDaysAfterClaim !== undefined) {
    return { validFrom: at, validUntil: new Date(at.getTime() + t.validDaysAfterClaim * DAY_MS) };
  }
  return { validFrom: t.validFrom!, validUntil: t.validUntil! };
}

export interface PricedLine {
  productId: string;
  categoryIds?: string[];
  quantity: number;
  unitPrice: number;
}

type DiscountRule = Pick<
  CouponTemplateDoc,
  'kind' | 'amount' | 'percentOff' | 'maxDiscount' | 'threshold' | 'scope' | 'productIds' | 'categoryIds'
>;

export function lineMatches(t: DiscountRule, line: PricedLine): boolean {
  if (t.scope === 'PRODUCTS') return t.productIds.includes(line.productId);
  if (t.scope === 'CATEGORIES') return (line.categoryIds ?? []).some((c) => t.categoryIds.includes(c));
  return true;
}

export type Refusal = 'OUT_OF_SCOPE' | 'BELOW_THRESHOLD';

/**
 * What a coupon takes off these lines: computed on the eligible amount (the matching lines),
 * never more than that amount nor than the order's `subtotal`. Integer fen; percentages round
 * down (the shop never gives more than it said).
 */
export function discountOf(
  t: DiscountRule,
  lines: readonly PricedLine[],
  subtotal: number,
): { eligible: number; discount: number; refusal?: Refusal } {
  const eligible = lines.filter((l) => lineMatches(t, l)).reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
  if (eligible <= 0) return { eligible: 0, discount: 0, refusal: 'OUT_OF_SCOPE' };
  if (eligible < t.threshold) return { eligible, discount: 0, refusal: 'BELOW_THRESHOLD' };
  const raw =
    t.kind === 'FIXED' ? (t.amount ?? 0) : Math.min(Math.floor((eligible * (t.percentOff ?? 0)) / 100), t.maxDiscount ?? Infinity);
  return { eligible, discount: Math.max(0, Math.min(raw, eligible, subtotal)) };
}
