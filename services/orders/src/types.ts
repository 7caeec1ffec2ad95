import type { ReplyData } from '@flywheel/events';
import { AppError } from '@flywheel/service-kit';

// Types (and the few constants and rules) more than one module of orders uses. Imports nothing from
// orders, so every module can depend on it without a cycle.

export const CURRENCY = 'CNY';
export interface Money {
  /** Integer fen. */
  amount: number;
  currency: typeof CURRENCY;
}
export const money = (amount: number): Money => ({ amount, currency: CURRENCY });

/** Lines per order and per cart; units of one SKU per order and per cart line. */
export const MAX_LINES = 50;
export const MAX_QUANTITY = 99;

/** The code of a refusal the client saw (AppError), or null for anything else. */
export const codeOf = (err: unknown): string | null => (err instanceof AppError ? String(err.extensions.code) : null);

export type OrderStatus =
  'PENDING_PAYMENT' | 'PAID' | 'PARTIALLY_SHIPPED' | 'SHIPPED' | 'DELIVERED' | 'COMPLETED' | 'CANCELLED' | 'REFUNDED';
export type OrderActor = 'MEMBER' | 'STAFF' | 'SYSTEM' | 'PAYMENT';
export type OrderSourceKind = 'DIRECT' | 'CONTENT' | 'LIVE' | 'COMMUNITY' | 'REFERRAL';
export type PriceKind = 'LIST' | 'MEMBER' | 'FLASH';
export type CancelReason = 'MEMBER' | 'STAFF' | 'EXPIRED';

/** Where an order came from: a DIRECT order has no reference, every other kind names one. */
export type OrderSourceDoc = { kind: 'DIRECT'; refId: null } | { kind: Exclude<OrderSourceKind, 'DIRECT'>; refId: string };

export interface StockLine {
  skuId: string;
  quantity: number;
}

interface MoveBase {
  by: OrderActor;
  actorId: string | null;
}
/** A plain move of the order's state machine: paying names the payment, cancelling its reason. */
export type Move =
  | (MoveBase & { to: 'PAID'; paymentId: string })
  | (MoveBase & { to: 'CANCELLED'; reason: CancelReason })
  | (MoveBase & { to: Exclude<OrderStatus, 'PAID' | 'CANCELLED'> });

/** The catalog's server-side quote: list, member or flash prices per line (never the client's). */
export type CatalogQuote = ReplyData<'catalog.price.quote'>;
export type QuotedLine = CatalogQuote['lines'][number];

export type AdjustmentKind = 'TIER' | 'COUPON' | 'POINTS' | 'GROUP_BUY' | 'BARGAIN';

/** One change to the catalog's price, proposed by an adjuster. */
export interface Adjustment {
  kind: AdjustmentKind;
  /** Integer fen, never positive: adjusters only take money off the catalog's price. */
  amount: number;
  /** What the member sees, e.g. the coupon's name. */
  label: string;
  /** The coupon, points lock, group-buy or bargain it comes from (for reversal on refund). */
  ref: string;
  /** A line-level adjustment (group-buy or bargain price) names its SKU. */
  skuId?: string;
}

/** As stored on the order: which adjuster made it. */
export interface AppliedAdjustment extends Adjustment {
  adjuster: string;
}

export type AfterSaleKind = 'REFUND_ONLY' | 'RETURN_AND_REFUND';
export type AfterSaleStatus = 'REQUESTED' | 'APPROVED' | 'REJECTED' | 'RETURN_RECEIVED' | 'REFUNDED';

/** Units of one SKU that went out in one shipment. */
export interface ShippedUnits {
  shipmentId: string;
  skuId: string;
  quantity: number;
}

/** Units of one SKU claimed by one after-sale; a rejected claim gives its units back. */
export interface HeldUnits {
  afterSaleId: string;
  kind: AfterSaleKind;
  status: AfterSaleStatus;
  skuId: string;
  quantity: number;
  /** Of `quantity`, units that had not shipped: they never ship and never come back by parcel. */
  unshipped: number;
  /** Integer fen this after-sale refunds for these units (fixed when claimed). */
  amount: number;
}

/** What an order's units are doing after a ledger entry (see order/facts.ts). */
export interface OrderFacts {
  shipped: ShippedUnits[];
  holds: HeldUnits[];
  /** When the current status began. */
  since: Date;
  /** When the order was delivered: the after-sales window runs from here. */
  deliveredAt: Date | null;
}
