// The zod shapes events and requests share: ids, times, money in fen, order lines, the order's
// source, tiers and segments. The package's public names are re-exported from index.ts.
import { z } from 'zod';

export const id = z.string().min(1);
export const dateTime = z.iso.datetime();
/** Integer fen; JSON numbers are exact up to 2^53. */
export const fen = z.number().int().safe();

export const OrderSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('DIRECT') }),
  z.object({ kind: z.literal('CONTENT'), articleId: id }),
  z.object({ kind: z.literal('LIVE'), roomId: id }),
  z.object({ kind: z.literal('COMMUNITY'), postId: id }),
  z.object({ kind: z.literal('REFERRAL'), code: id }),
]);
export type OrderSource = z.infer<typeof OrderSource>;

export const orderLine = z.object({ skuId: id, productId: id, quantity: z.number().int().positive(), unitPrice: fen });
export const stockLine = z.object({ skuId: id, quantity: z.number().int().positive() });
/** Which price a line was sold at; flash lines name their flash sale. */
export const PriceKind = z.enum(['LIST', 'MEMBER', 'FLASH']);
export const pricedLine = orderLine.extend({ priceKind: PriceKind, flashSaleId: id.optional() });

/** Membership tiers (普通 / 银卡 / 金卡 / 钻石) and the six RFM segments (docs/architecture.md, "Names and segments"). */
export const MemberTier = z.enum(['REGULAR', 'SILVER', 'GOLD', 'DIAMOND']);
export const MemberSegment = z.enum(['IMPORTANT_VALUE', 'IMPORTANT_RETAIN', 'IMPORTANT_DEVELOP', 'GENERAL_VALUE', 'NEW', 'DORMANT']);
