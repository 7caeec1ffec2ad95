import type { RequestData } from '@flywheel/events';
import { badInput, requireObjectId } from '@flywheel/service-kit';
import { mergeLines } from '../order/lines';
import type { OrderSourceDoc, OrderSourceKind, StockLine } from '../types';
import type { BenefitChoice } from './pricing';

const SOURCE_KINDS: readonly OrderSourceKind[] = ['DIRECT', 'CONTENT', 'LIVE', 'COMMUNITY', 'REFERRAL'];

export interface PlaceOrderInput {
  /** Required unless `fromCart`. */
  lines?: { skuId: string; quantity: number }[] | null;
  idempotencyKey: string;
  /** DIRECT when omitted. */
  source?: { kind: OrderSourceKind; refId?: string | null } | null;
  /** Order what the member's cart holds (every line with a quantity), then take it out of the cart. */
  fromCart?: boolean | null;
  /** A coupon of the member's wallet; the best applicable one when omitted (unless `noCoupon`). */
  couponId?: string | null;
  noCoupon?: boolean | null;
  /** Points to spend on the order (membership caps them at a share of the order). */
  points?: number | null;
  /** An address of the member's book; the default when omitted. */
  addressId?: string | null;
  /** A group buy to open or join, or a bargain: exactly one. */
  referralOffer?: { groupBuy?: { offerId: string; groupId?: string | null } | null; bargainId?: string | null } | null;
}

/** The offer as referral's pricing contract names it. */
export type ReferralOffer = RequestData<'referral.price.quote'>['offer'];

export interface ParsedRequest {
  key: string;
  /** Null for a checkout from the cart. */
  lines: StockLine[] | null;
  source: OrderSourceDoc;
  benefits: BenefitChoice;
  /** Null: the member's default address. */
  addressId: string | null;
  /** Null: no referral offer (the referral adjuster then asks nothing). */
  referralOffer: ReferralOffer | null;
}

function parseBenefits(input: PlaceOrderInput): BenefitChoice {
  const couponId = input.couponId?.trim() || null;
  if (couponId && input.noCoupon) throw badInput('Either a couponId or noCoupon', 'couponId');
  const points = input.points ?? 0;
  if (!Number.isSafeInteger(points) || points < 0) throw badInput('points must be a whole number of 0 or more', 'points');
  return { couponId, noCoupon: Boolean(input.noCoupon), points };
}

/** Validated, with lines of the same SKU added together and ordered by SKU (a stable fingerprint). */
export function parseRequest(input: PlaceOrderInput): ParsedRequest {
  const key = (input.idempotencyKey ?? '').trim();
  if (key.length < 1 || key.length > 128) throw badInput('idempotencyKey must be 1 to 128 characters', 'idempotencyKey');
  const source = parseSource(input.source);
  const benefits = parseBenefits(input);
  const addressId = input.addressId == null ? null : requireObjectId(input.addressId, 'addressId');
  const referralOffer = parseReferralOffer(input.referralOffer);
  if (input.fromCart) {
    if (input.lines?.length) throw badInput('A checkout from the cart takes its lines from the cart', 'lines');
    return { key, lines: null, source, benefits, addressId, referralOffer };
  }
  return { key, lines: mergeLines(input.lines ?? []), source, benefits, addressId, referralOffer };
}

/** Exactly one of a group buy and a bargain; ids are ObjectIds (a group's id is 24 hex digits too). */
function parseReferralOffer(raw: PlaceOrderInput['referralOffer']): ReferralOffer | null {
  if (!raw) return null;
  const { groupBuy, bargainId } = raw;
  if (Boolean(groupBuy) === Boolean(bargainId))
    throw badInput('A referral offer is exactly one of groupBuy and bargainId', 'referralOffer');
  if (bargainId) return { kind: 'BARGAIN', bargainId: requireObjectId(bargainId, 'referralOffer.bargainId') };
  const offerId = requireObjectId(groupBuy!.offerId, 'referralOffer.groupBuy.offerId');
  const groupId = groupBuy!.groupId == null ? null : requireObjectId(groupBuy!.groupId, 'referralOffer.groupBuy.groupId');
  return { kind: 'GROUP_BUY', offerId, ...(groupId ? { groupId } : {}) };
}

function parseSource(raw: PlaceOrderInput['source']): OrderSourceDoc {
  const kind = raw?.kind ?? 'DIRECT';
  if (!SOURCE_KINDS.includes(kind)) throw badInput(`Unknown source kind ${kind}`, 'source.kind');
  const refId = raw?.refId?.trim() || null;
  if (kind === 'DIRECT') {
    if (refId) throw badInput('A DIRECT order has no source reference', 'source.refId');
    return { kind, refId: null };
  }
  if (!refId || refId.length > 128) throw badInput(`A ${kind} order needs its source reference (1 to 128 characters)`, 'source.refId');
  return { kind, refId };
}
