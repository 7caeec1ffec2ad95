import { z } from 'zod';
import type { ServiceName } from './index';
import { dateTime, fen, id, pricedLine, stockLine } from './shapes';

// ---------------------------------------------------------------------------------------------
// Request/reply: commands that need an answer now. Subjects never overlap event subjects.

const benefitLine = pricedLine.extend({
  /** The product's category and its ancestors (for category-scoped coupons). */
  categoryIds: z.array(id).optional(),
});
/** Integer fen, never positive; `ref` names the coupon, or `points:<n>` for a deduction. */
const benefitAdjustment = z.object({
  kind: z.enum(['TIER', 'COUPON', 'POINTS']),
  amount: z.number().int().safe().nonpositive(),
  label: z.string(),
  ref: z.string(),
});

function request<Req extends z.ZodType, Res extends z.ZodType>(service: ServiceName, req: Req, res: Res) {
  return { service, request: req, reply: res };
}

/** The referral offer an order is placed under (拼团: open a group or join one; 砍价: the member's own bargain). */
const referralOffer = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('GROUP_BUY'), offerId: id, groupId: id.optional() }),
  z.object({ kind: z.literal('BARGAIN'), bargainId: id }),
]);
/** A referral price adjustment: money off one SKU's line (never positive). */
const referralAdjustment = z.object({
  kind: z.enum(['GROUP_BUY', 'BARGAIN']),
  skuId: id,
  amount: z.number().int().max(0).safe(),
  label: z.string().max(100),
  /** What the adjustment is for: `groupbuy:<groupId>` or `bargain:<bargainId>`. */
  ref: z.string().max(200),
});

export const requests = {
  /**
   * Server-side prices. With `memberId` the quote applies member prices and any live flash sale
   * the member may still buy (per-member limit); all prices are as of now.
   */
  'catalog.price.quote': request(
    'catalog',
    z.object({
      lines: z.array(stockLine).min(1).max(100),
      memberId: id.optional(),
      /**
       * The checkout's order, when the quote is for placing it: a live flash line is then decided
       * at catalog's flash gate and, admitted, holds its units for this order until it reserves
       * (or the hold expires). Without it (previews, carts) nothing is held.
       */
      orderId: id.optional(),
    }),
    z.object({
      lines: z.array(
        pricedLine.extend({
          name: z.string(),
          skuName: z.string(),
          /**
           * Units that could be reserved as of the quote: the SKU's regular stock (its ledger head)
           * or, for a FLASH line, the flash sale's remaining quota. Advisory (the reservation
           * decides); optional so that older catalogs stay valid.
           */
          available: z.number().int().optional(),
          /** The product's category and its ancestors, nearest first (category-scoped coupons). */
          categoryIds: z.array(id).optional(),
          /** Weight of one unit in grams, when staff entered one (weight-based shipping fees). */
          weightGrams: z.number().int().nonnegative().optional(),
        }),
      ),
      total: fen,
      currency: z.literal('CNY'),
    }),
  ),
  /**
   * Reserves stock for an order, all lines or none (OUT_OF_STOCK names the SKU). Idempotent per
   * orderId: a replay answers with the first result. Flash lines draw on the flash sale's quota
   * and the member's limit.
   */
  'catalog.stock.reserve': request(
    'catalog',
    z.object({
      orderId: id,
      memberId: id,
      lines: z
        .array(stockLine.extend({ flashSaleId: id.optional() }))
        .min(1)
        .max(100),
    }),
    z.object({ orderId: id, reservedAt: dateTime }),
  ),
  /** Releases an order's reservation exactly once (a checkout that failed after reserving). */
  'catalog.stock.release': request('catalog', z.object({ orderId: id }), z.object({ orderId: id, released: z.boolean() })),
  /**
   * A checkout quoted for an order (flash lines held at catalog's gate) stopped before reserving
   * (a cap, a coupon, a member limit): its holds go back now rather than when they expire.
   */
  'catalog.flash.unhold': request(
    'catalog',
    z.object({ orderId: id, flashSaleIds: z.array(id).min(1).max(100) }),
    z.object({ orderId: id }),
  ),
  /**
   * A flash sale's SKU, product and window (a live room links it as a flash deal; the sale itself
   * stays catalog's, bought through its gate). Unknown is NOT_FOUND.
   */
  'catalog.flash.describe': request(
    'catalog',
    z.object({ flashSaleId: id }),
    z.object({ flashSaleId: id, skuId: id, productId: id, startsAt: dateTime, endsAt: dateTime }),
  ),
  /**
   * Membership's part of a checkout price, without side effects: the tier discount, a coupon
   * (the one asked for, or the best applicable one) and a points deduction, applied in that
   * order to `subtotal` (what the order costs before membership). Refusals (a coupon of another
   * member, expired, out of scope, below its threshold; a group-exclusive coupon of a group the
   * member is no longer in; more points than the balance) are BAD_USER_INPUT / FORBIDDEN / CONFLICT.
   * A group-exclusive coupon makes one `community.group.membership` request; BEST skips such a
   * coupon when the member left the group (or community does not answer).
   */
  'membership.benefits.quote': request(
    'membership',
    z.object({
      checkoutId: id,
      memberId: id,
      lines: z.array(benefitLine).min(1).max(100),
      subtotal: fen,
      /** BEST (default): the best applicable coupon; NONE: no coupon; a coupon id: that one. */
      coupon: z.union([z.literal('BEST'), z.literal('NONE'), z.object({ couponId: id })]).optional(),
      /** Points to spend; capped by the program's share of the order. 0 or absent: none. */
      points: z.number().int().nonnegative().safe().optional(),
    }),
    z.object({
      adjustments: z.array(benefitAdjustment),
      pointsBalance: z.number().int(),
      /** The most points this order could take (balance, rate and cap). */
      pointsUsable: z.number().int().nonnegative(),
      /** The member's tier ships free (a tier benefit): checkout waives the shipping fee. Absent: no. */
      freeShipping: z.boolean().optional(),
    }),
  ),
  /**
   * Takes what a quote's adjustments use, keyed by the checkout id (= order id): the coupon is
   * locked and the points debited. Idempotent; a coupon already locked elsewhere or points no
   * longer there is CONFLICT, and nothing is taken.
   */
  'membership.benefits.lock': request(
    'membership',
    z.object({ checkoutId: id, memberId: id, adjustments: z.array(benefitAdjustment) }),
    z.object({ checkoutId: id }),
  ),
  /** Gives back what a checkout locked (its failure or abandonment); idempotent, a no-op if nothing was. */
  'membership.benefits.release': request('membership', z.object({ checkoutId: id }), z.object({ checkoutId: id, released: z.boolean() })),
  /**
   * Referral's part of a checkout price (拼团 / 砍价), without side effects: the order names one
   * referral offer — a group-buy offer (opening a group, or joining `groupId`) or the member's own
   * bargain — and referral answers the GROUP_BUY / BARGAIN adjustments that bring its SKU's line
   * to the offer's price. Refusals (unknown or ended offer, a full group, over the member's limit,
   * a bargain of another member or already bought) are BAD_USER_INPUT / FORBIDDEN / CONFLICT /
   * NOT_FOUND with extensions.reason.
   */
  'referral.price.quote': request(
    'referral',
    z.object({
      checkoutId: id,
      memberId: id,
      offer: referralOffer,
      lines: z
        .array(z.object({ skuId: id, quantity: z.number().int().positive(), unitPrice: fen }))
        .min(1)
        .max(100),
    }),
    z.object({ adjustments: z.array(referralAdjustment) }),
  ),
  /**
   * Takes what a quote's adjustments use, keyed by the checkout id (= order id): a group-buy slot
   * claimed for the order, a bargain's one purchase. Idempotent for the same checkout; a slot or
   * purchase taken meanwhile is CONFLICT, and nothing is taken.
   */
  'referral.price.lock': request(
    'referral',
    z.object({ checkoutId: id, memberId: id, offer: referralOffer, adjustments: z.array(referralAdjustment) }),
    z.object({ checkoutId: id }),
  ),
  /** Gives back what a checkout locked (its failure or abandonment, an unpaid order cancelled); idempotent, a no-op if nothing was. */
  'referral.price.release': request('referral', z.object({ checkoutId: id }), z.object({ checkoutId: id, released: z.boolean() })),
  /**
   * Grants a member a coupon of a template (live-room coupons, win-back campaigns); `key` makes
   * it idempotent per caller. The template's quota and per-member limit apply.
   */
  'membership.coupon.grant': request(
    'membership',
    z.object({ key: z.string().min(1).max(200), memberId: id, templateId: id, reason: z.string().max(200) }),
    z.object({ couponId: id }),
  ),
  /**
   * A coupon template's name and whether it is still issued (ACTIVE and not expired), for a caller
   * about to promise it (a live room's coupon offer or lottery prize). Unknown is NOT_FOUND.
   */
  /**
   * The loyalty program's facts other services follow: its time zone, whose calendar days are the
   * days of sign-ins, tasks and (in community) check-in challenges.
   */
  'membership.program.describe': request('membership', z.object({}), z.object({ timeZone: z.string().min(1).max(64) })),
  'membership.coupon.template': request(
    'membership',
    z.object({ templateId: id }),
    z.object({ templateId: id, name: z.string(), active: z.boolean() }),
  ),
  /**
   * Takes back the coupon granted under `key` (the same key as `membership.coupon.grant`) while it
   * is unused: it becomes REVOKED, never usable at checkout. Idempotent (a repeat answers `revoked`
   * again). A coupon LOCKED by an unpaid order or already USED is not taken: `revoked: false` and
   * its state, for the caller to retry (LOCKED) or record a shortfall (USED). Unknown key: `NONE`.
   */
  'membership.coupon.revoke': request(
    'membership',
    z.object({ key: z.string().min(1).max(200), reason: z.string().max(200) }),
    z.object({ revoked: z.boolean(), state: z.enum(['REVOKED', 'LOCKED', 'USED', 'NONE']), couponId: id.optional() }),
  ),
  /** Grants a member points (a lot that expires like earned points), once per `key`; a key reused for other points is CONFLICT. */
  'membership.points.grant': request(
    'membership',
    z.object({
      key: z.string().min(1).max(200),
      memberId: id,
      points: z.number().int().min(1).max(1_000_000),
      reason: z.string().max(200),
    }),
    z.object({ points: z.number().int() }),
  ),
  /**
   * Takes back the points granted under `key`, once (a repeat answers the same), the way a refund
   * claws back: from the newest lots, never below zero; what the member already spent is
   * `shortfall`. Unknown key: `revoked: false`, nothing taken.
   */
  'membership.points.revoke': request(
    'membership',
    z.object({ key: z.string().min(1).max(200), reason: z.string().max(200) }),
    z.object({ revoked: z.boolean(), taken: z.number().int(), shortfall: z.number().int() }),
  ),
  /**
   * Whether a member is in a community group now (group-exclusive coupons, 专属福利). An unknown
   * group answers `member: false`.
   */
  'community.group.membership': request('community', z.object({ groupId: id, memberId: id }), z.object({ member: z.boolean() })),
  /**
   * A member's shipping address as it is now, for an order to keep (orders stores it encrypted):
   * the one named, which must be the member's own (another member's, or an unknown id, is
   * NOT_FOUND), or the member's default address when `addressId` is absent — `address` is then
   * null when the member has no address at all.
   */
  'membership.address.snapshot': request(
    'membership',
    z.object({ memberId: id, addressId: id.optional() }),
    z.object({
      address: z
        .object({
          addressId: id,
          recipientName: z.string().min(1).max(50),
          phone: z.string().min(1).max(20),
          provinceCode: z.string().regex(/^\d{6}$/),
          provinceName: z.string().max(50),
          cityCode: z.string().regex(/^\d{6}$/),
          cityName: z.string().max(50),
          districtCode: z.string().regex(/^\d{6}$/),
          districtName: z.string().max(50),
          detail: z.string().min(1).max(200),
          label: z.string().max(20).optional(),
        })
        .nullable(),
    }),
  ),
} as const;

export type RequestSubject = keyof typeof requests;
export type RequestData<S extends RequestSubject> = z.infer<(typeof requests)[S]['request']>;
export type ReplyData<S extends RequestSubject> = z.infer<(typeof requests)[S]['reply']>;

/** Typed failure of a request; `code` uses the same set as GraphQL errors. */
/** `reason`: the refusal's machine-readable cause (e.g. GROUP_FULL), passed on as the GraphQL error's `extensions.reason`. */
export const ReplyError = z.object({ code: z.string(), message: z.string(), reason: z.string().max(64).optional() });
export const ReplyWire = z.union([
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: ReplyError }),
]);
