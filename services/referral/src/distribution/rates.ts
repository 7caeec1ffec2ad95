// The arithmetic of commissions, in integer fen and basis points only (BigInt where a product
// could pass 2^53): never a float.
import type { CommissionLevel, ProductRate } from './model';

export interface PaidLine {
  productId: string;
  quantity: number;
  unitPrice: number;
}

export interface Rates {
  level1Bps: number;
  level2Bps: number;
  productRates: readonly ProductRate[];
}

const mulDiv = (a: number, b: number, c: number) => Number((BigInt(a) * BigInt(b)) / BigInt(c));

/** The rate of a product at a level: its override, else the default. */
export function rateOf(rates: Rates, productId: string, level: CommissionLevel): number {
  const own = rates.productRates.find((r) => r.productId === productId);
  if (own) return level === 1 ? own.level1Bps : own.level2Bps;
  return level === 1 ? rates.level1Bps : rates.level2Bps;
}

/**
 * The commission of an order at a level. Each line's base is what was paid for it: its amount
 * (unitPrice × quantity), scaled down pro rata when the order total is below the lines' sum
 * (coupons, points), never up (shipping earns nothing). Rounding: floor per line, of
 * base × bps / 10000; the order's commission is the sum of the lines'.
 */
export function commissionOf(lines: readonly PaidLine[], orderTotal: number, rates: Rates, level: CommissionLevel): number {
  const sum = lines.reduce((s, l) => s + l.unitPrice * l.quantity, 0);
  if (sum <= 0) return 0;
  const paid = Math.min(orderTotal, sum);
  let total = 0;
  for (const l of lines) {
    const base = mulDiv(l.unitPrice * l.quantity, paid, sum);
    total += mulDiv(base, rateOf(rates, l.productId, level), 10_000);
  }
  return total;
}

/**
 * How much of a booked commission stands reversed once `refunded` fen of the order are refunded:
 * floor(booked × refunded / total), refunds capped at the total. Cumulative, so a reversal is this
 * minus what was reversed before: many partial refunds never reverse more than one full refund,
 * and a full refund reverses exactly what was booked.
 */
export function reversedAfter(booked: number, refunded: number, orderTotal: number): number {
  if (orderTotal <= 0) return booked;
  return mulDiv(booked, Math.min(refunded, orderTotal), orderTotal);
}
