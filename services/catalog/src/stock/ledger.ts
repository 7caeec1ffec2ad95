// Pure stock arithmetic and the in-process gate: no I/O, unit-tested on their own.
//
// Every stock account (a SKU, or a flash sale's quota `flash:<id>`) is an append-only ledger
// whose entries carry running totals, so the head IS the account's state:
//
//   onHand    book stock: every unit ever put into the account (INITIAL, ADJUST up, RESTOCK,
//             FLASH_RETURN) minus every unit taken out of it (ADJUST down, FLASH_ALLOCATE,
//             QUOTA_RETURN). A sale does NOT take a unit out of onHand: it moves it from
//             reserved to sold.
//   reserved  units held for orders that are neither paid nor released yet.
//   sold      units converted by payment (gross; a returned unit comes back as a RESTOCK, which
//             puts a unit into onHand, rather than un-selling it).
//   available = onHand - reserved - sold, never negative.
//
// So `onHand = available + reserved + sold` holds on every entry by construction.

export type StockKind =
  'INITIAL' | 'ADJUST' | 'RESERVE' | 'RELEASE' | 'SELL' | 'RESTOCK' | 'FLASH_ALLOCATE' | 'FLASH_RETURN' | 'QUOTA_RETURN';

/** A flash sale's quota is an account of its own. */
export const flashAccount = (flashSaleId: string) => `flash:${flashSaleId}`;

export const STOCK_KINDS: readonly StockKind[] = [
  'INITIAL',
  'ADJUST',
  'RESERVE',
  'RELEASE',
  'SELL',
  'RESTOCK',
  'FLASH_ALLOCATE',
  'FLASH_RETURN',
  'QUOTA_RETURN',
];

export interface StockTotals {
  onHand: number;
  reserved: number;
  sold: number;
}

export const EMPTY: StockTotals = { onHand: 0, reserved: 0, sold: 0 };

export const availableOf = (t: StockTotals): number => t.onHand - t.reserved - t.sold;

export const totalsOf = (head: StockTotals | null | undefined): StockTotals =>
  head ? { onHand: head.onHand, reserved: head.reserved, sold: head.sold } : { ...EMPTY };

/**
 * The totals after one move, or null when the move would take `available` below zero (the
 * caller turns that into its own refusal). `qty` is positive for every kind except ADJUST,
 * where it is the signed delta staff entered. Releasing or selling more than is reserved is a
 * bug, never a customer's refusal: it throws.
 */
export function applyMove(t: StockTotals, kind: StockKind, qty: number): StockTotals | null {
  const valid = Number.isSafeInteger(qty) && (kind === 'ADJUST' ? qty !== 0 : kind === 'INITIAL' ? qty >= 0 : qty > 0);
  if (!valid) throw new Error(`invalid ${kind} quantity ${qty}`);
  const available = availableOf(t);
  switch (kind) {
    case 'INITIAL':
    case 'RESTOCK':
    case 'FLASH_RETURN':
      return { ...t, onHand: t.onHand + qty };
    case 'ADJUST':
      return available + qty < 0 ? null : { ...t, onHand: t.onHand + qty };
    case 'FLASH_ALLOCATE':
    case 'QUOTA_RETURN':
      return available < qty ? null : { ...t, onHand: t.onHand - qty };
    case 'RESERVE':
      return available < qty ? null : { ...t, reserved: t.reserved + qty };
    case 'RELEASE':
      if (t.reserved < qty) throw new Error(`release of ${qty} with only ${t.reserved} reserved`);
      return { ...t, reserved: t.reserved - qty };
    case 'SELL':
      if (t.reserved < qty) throw new Error(`sale of ${qty} with only ${t.reserved} reserved`);
      return { ...t, reserved: t.reserved - qty, sold: t.sold + qty };
  }
}

/** True when this move takes available from above the threshold to at or below it: one alert per crossing. */
export function crossesLow(before: StockTotals, after: StockTotals, threshold: number): boolean {
  return availableOf(before) > threshold && availableOf(after) <= threshold;
}

export type FlashSaleStatus = 'UPCOMING' | 'LIVE' | 'SOLD_OUT' | 'ENDED';

/** A flash sale's status at `at`, given the quota still available in its account. */
export function flashStatusAt(window: { startsAt: Date; endsAt: Date }, available: number, at: Date): FlashSaleStatus {
  if (at < window.startsAt) return 'UPCOMING';
  if (at >= window.endsAt) return 'ENDED';
  return available > 0 ? 'LIVE' : 'SOLD_OUT';
}

/** Bounds that keep numbers sane; not business rules. */
export const MAX_STOCK = 10_000_000;
/** Per line of a quote or reservation; orders enforces its own, stricter per-order limits. */
export const MAX_LINE_QUANTITY = 999;
export const DEFAULT_LOW_STOCK_THRESHOLD = 5;
/** Each unit of a member's limit is one claim (a unique insert), so the limit stays small. */
export const MAX_PER_MEMBER_LIMIT = 20;
