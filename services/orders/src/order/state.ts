import type { OrderActor, OrderStatus } from '../types';
import type { OrderTransitionDoc } from './model';

// The order state machine, pure. The ledger (ledger.ts) asks `refusal(head, move)` against the
// real head on every append attempt, so two racing moves from one state cannot both land.
//
// Fulfilment: the first shipment moves PAID to PARTIALLY_SHIPPED, or straight to SHIPPED when it
// leaves nothing to ship; the shipment (or the refund of the last unshipped units) that leaves
// nothing to ship moves PARTIALLY_SHIPPED to SHIPPED. Delivery is confirmed by the member, staff
// or the auto-confirm sweeper (SYSTEM); the completion sweeper (SYSTEM) closes the after-sales
// window. After-sales never move an order backwards: partial refunds leave the status as it is,
// and the refund that returns the last paid unit moves the order to the terminal REFUNDED.

export const ORDER_STATUSES: readonly OrderStatus[] = [
  'PENDING_PAYMENT',
  'PAID',
  'PARTIALLY_SHIPPED',
  'SHIPPED',
  'DELIVERED',
  'COMPLETED',
  'CANCELLED',
  'REFUNDED',
];

/** Which actors may make which move. */
const MOVES: Record<OrderStatus, Partial<Record<OrderStatus, readonly OrderActor[]>>> = {
  PENDING_PAYMENT: { PAID: ['PAYMENT'], CANCELLED: ['MEMBER', 'STAFF', 'SYSTEM'] },
  PAID: { PARTIALLY_SHIPPED: ['STAFF'], SHIPPED: ['STAFF'], REFUNDED: ['SYSTEM'] },
  PARTIALLY_SHIPPED: { SHIPPED: ['STAFF', 'SYSTEM'], REFUNDED: ['SYSTEM'] },
  SHIPPED: { DELIVERED: ['MEMBER', 'STAFF', 'SYSTEM'], REFUNDED: ['SYSTEM'] },
  DELIVERED: { COMPLETED: ['MEMBER', 'STAFF', 'SYSTEM'], REFUNDED: ['SYSTEM'] },
  // A request made inside the after-sales window may be refunded after completion.
  COMPLETED: { REFUNDED: ['SYSTEM'] },
  CANCELLED: {},
  REFUNDED: {},
};

/** Paid, not fully refunded: goods may still ship and money may still go back. */
export const PAID_STATUSES: readonly OrderStatus[] = ['PAID', 'PARTIALLY_SHIPPED', 'SHIPPED', 'DELIVERED', 'COMPLETED'];

/** An order with no transitions is where every order starts. */
export const statusOf = (head: Pick<OrderTransitionDoc, 'to'> | null | undefined): OrderStatus => head?.to ?? 'PENDING_PAYMENT';

/** Null when `by` may move the order from `from` to `to`; otherwise why not. */
export function refusal(from: OrderStatus, to: OrderStatus, by: OrderActor): string | null {
  const allowed = MOVES[from][to];
  if (!allowed) return `An order that is ${from} cannot become ${to}`;
  if (!allowed.includes(by)) return `${by} cannot move an order from ${from} to ${to}`;
  return null;
}
