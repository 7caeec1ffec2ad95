import { AppError, badInput } from '@flywheel/service-kit';
import type { AfterSaleKind, AfterSaleStatus, HeldUnits, OrderFacts, OrderStatus, StockLine } from '../types';
import { shipmentOf, type OrderDoc, type OrderTransitionDoc } from './model';

export type { AfterSaleKind, AfterSaleStatus, HeldUnits, OrderFacts, ShippedUnits } from '../types';

// What an order's units are doing, pure. Every entry of the order's ledger carries the whole of
// it after that entry (`facts`), so each decision about units — ship these, hold these for an
// after-sale, refund them — is checked against the real head and lands in the same unique
// insert that records it (docs/concurrency.md): two requests for the last refundable unit, or two
// shipments of the last unit, cannot both land.

export const AFTER_SALE_KINDS: readonly AfterSaleKind[] = ['REFUND_ONLY', 'RETURN_AND_REFUND'];
export const AFTER_SALE_STATUSES: readonly AfterSaleStatus[] = ['REQUESTED', 'APPROVED', 'REJECTED', 'RETURN_RECEIVED', 'REFUNDED'];
/** Undecided or decided but not yet refunded. */
export const OPEN_AFTER_SALE: readonly AfterSaleStatus[] = ['REQUESTED', 'APPROVED', 'RETURN_RECEIVED'];

const SHIPPED_ALREADY: readonly OrderStatus[] = ['SHIPPED', 'DELIVERED', 'COMPLETED'];

/** The facts after the head entry; entries written before facts existed are read as all-or-nothing shipments. */
export function factsOf(head: OrderTransitionDoc | null, order: OrderDoc): OrderFacts {
  if (head?.facts) return head.facts;
  const status = head?.to ?? 'PENDING_PAYMENT';
  return {
    shipped: SHIPPED_ALREADY.includes(status)
      ? order.lines.map((l) => ({ shipmentId: (head && shipmentOf(head)?.shipmentId) ?? 'legacy', skuId: l.skuId, quantity: l.quantity }))
      : [],
    holds: [],
    since: head?.at ?? order.createdAt,
    deliveredAt: head && status === 'DELIVERED' ? head.at : null,
  };
}

const sum = <T>(xs: readonly T[], f: (x: T) => number) => xs.reduce((s, x) => s + f(x), 0);
const active = (h: HeldUnits) => h.status !== 'REJECTED';

/** Integer fen the member paid for shipping (in `total`, never shared over the lines). */
export const shippingPaid = (order: Pick<OrderDoc, 'shipping'>) => order.shipping?.fee ?? 0;

/**
 * Integer fen each line actually cost the member: its subtotal, less line-level adjustments,
 * less a share of order-level ones in proportion; the lines add up to the order's goods total
 * (its total less the shipping fee) exactly.
 */
export function paidByLine(order: Pick<OrderDoc, 'lines' | 'adjustments' | 'total' | 'shipping'>): Map<string, number> {
  const goodsTotal = order.total - shippingPaid(order);
  const net = order.lines.map((l) =>
    Math.max(
      0,
      l.subtotal +
        sum(
          (order.adjustments ?? []).filter((a) => a.skuId === l.skuId),
          (a) => a.amount,
        ),
    ),
  );
  const netTotal = sum(net, (n) => n);
  let off = Math.max(0, netTotal - goodsTotal);
  const shares = net.map((n) => (netTotal ? Math.floor((off * n) / netTotal) : 0));
  off -= sum(shares, (s) => s);
  // What flooring left over comes off the lines in order, never below zero.
  const paid = net.map((n, i) => n - shares[i]!);
  for (let i = 0; off > 0 && i < paid.length; i++) {
    const take = Math.min(off, paid[i]!);
    paid[i] = paid[i]! - take;
    off -= take;
  }
  return new Map(order.lines.map((l, i) => [l.skuId, paid[i]!]));
}

/** One line's units and money, as the facts have them. */
export interface LineTally {
  skuId: string;
  ordered: number;
  paid: number;
  shipped: number;
  /** Units under an after-sale that is not rejected (refunded ones included). */
  held: number;
  heldUnshipped: number;
  heldShipped: number;
  /** Integer fen those held units refund. */
  heldAmount: number;
  refunded: number;
  refundedAmount: number;
}

export function tally(order: OrderDoc, facts: OrderFacts): Map<string, LineTally> {
  const paid = paidByLine(order);
  return new Map(
    order.lines.map((l) => {
      const holds = facts.holds.filter((h) => h.skuId === l.skuId && active(h));
      const refunded = holds.filter((h) => h.status === 'REFUNDED');
      const heldUnshipped = sum(holds, (h) => h.unshipped);
      const held = sum(holds, (h) => h.quantity);
      return [
        l.skuId,
        {
          skuId: l.skuId,
          ordered: l.quantity,
          paid: paid.get(l.skuId)!,
          shipped: sum(
            facts.shipped.filter((s) => s.skuId === l.skuId),
            (s) => s.quantity,
          ),
          held,
          heldUnshipped,
          heldShipped: held - heldUnshipped,
          heldAmount: sum(holds, (h) => h.amount),
          refunded: sum(refunded, (h) => h.quantity),
          refundedAmount: sum(refunded, (h) => h.amount),
        },
      ];
    }),
  );
}

/** Units still to ship: not shipped and not claimed by a refund-only after-sale. */
export const toShip = (t: LineTally) => t.ordered - t.shipped - t.heldUnshipped;

/**
 * Nothing left to ship and no after-sale still deciding about unshipped units (a rejection
 * would give them back to ship).
 */
export function fulfilled(order: OrderDoc, facts: OrderFacts): boolean {
  const pendingUnshipped = facts.holds.some((h) => h.unshipped > 0 && OPEN_AFTER_SALE.includes(h.status));
  return !pendingUnshipped && [...tally(order, facts).values()].every((t) => toShip(t) === 0);
}

/** Every unit paid for has been refunded. */
export const allRefunded = (order: OrderDoc, facts: OrderFacts) => [...tally(order, facts).values()].every((t) => t.refunded === t.ordered);

export function requireInOrder(order: OrderDoc, lines: readonly StockLine[]): void {
  for (const l of lines) {
    if (!order.lines.some((o) => o.skuId === l.skuId)) throw badInput(`SKU ${l.skuId} is not in this order`, `lines(${l.skuId})`);
  }
}

/** The lines of a shipment: those asked for, or everything still to ship. Throws to refuse. */
export function planShipment(order: OrderDoc, facts: OrderFacts, asked: readonly StockLine[] | null): StockLine[] {
  const t = tally(order, facts);
  if (!asked) {
    const rest = [...t.values()].map((x) => ({ skuId: x.skuId, quantity: toShip(x) })).filter((l) => l.quantity > 0);
    if (!rest.length) throw new AppError('CONFLICT', 'Nothing is left to ship on this order');
    return rest;
  }
  for (const l of asked) {
    const left = toShip(t.get(l.skuId)!);
    if (l.quantity > left) throw badInput(`Only ${left} unit(s) of SKU ${l.skuId} are left to ship`, `lines(${l.skuId}).quantity`);
  }
  return asked.map((l) => ({ ...l }));
}

/**
 * Claims units of an order for an after-sale, or throws why not. Never more than remains
 * refundable per line; a return only of units that shipped; a refund-only takes unshipped units
 * first (they then never ship). The money is the line's paid amount not yet held, shared over
 * its free units — the last free unit takes exactly what is left, so all of a line's refunds
 * add up to what was paid for it and never more.
 */
export function planHold(
  order: OrderDoc,
  facts: OrderFacts,
  afterSaleId: string,
  kind: AfterSaleKind,
  asked: readonly StockLine[],
): HeldUnits[] {
  const t = tally(order, facts);
  // The after-sale that takes the order's last refundable units refunds the shipping fee too: a
  // full refund returns everything paid. A partial refund never does (the parcel still went out,
  // or still goes out, for the rest).
  const heldAfter = [...t.values()].every((x) => x.held + (asked.find((l) => l.skuId === x.skuId)?.quantity ?? 0) >= x.ordered);
  const shippingBack = heldAfter ? shippingPaid(order) : 0;
  return asked.map((l, i) => {
    const x = t.get(l.skuId)!;
    const refundable = x.ordered - x.held;
    if (l.quantity > refundable) {
      throw badInput(`Only ${refundable} unit(s) of SKU ${l.skuId} can still be refunded`, `lines(${l.skuId}).quantity`);
    }
    const returnable = x.shipped - x.heldShipped;
    if (kind === 'RETURN_AND_REFUND' && l.quantity > returnable) {
      throw badInput(`Only ${returnable} shipped unit(s) of SKU ${l.skuId} can be returned`, `lines(${l.skuId}).quantity`);
    }
    const unshipped = kind === 'REFUND_ONLY' ? Math.min(l.quantity, toShip(x)) : 0;
    const budget = x.paid - x.heldAmount;
    const amount = Math.floor((budget * l.quantity) / refundable) + (i === asked.length - 1 ? shippingBack : 0);
    return { afterSaleId, kind, status: 'REQUESTED' as const, skuId: l.skuId, quantity: l.quantity, unshipped, amount };
  });
}

/** The holds of one after-sale, with every line set to `status`. */
export const withStatus = (facts: OrderFacts, afterSaleId: string, status: AfterSaleStatus): HeldUnits[] =>
  facts.holds.map((h) => (h.afterSaleId === afterSaleId ? { ...h, status } : h));

export const holdsOf = (facts: OrderFacts, afterSaleId: string) => facts.holds.filter((h) => h.afterSaleId === afterSaleId);

/** The after-sales still open on the order (the completion sweeper waits for them). */
export const hasOpenAfterSale = (facts: OrderFacts) => facts.holds.some((h) => OPEN_AFTER_SALE.includes(h.status));
