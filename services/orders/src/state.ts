import type { OrderActor, OrderStatus, OrderTransitionDoc } from './model';

// The order state machine, pure. The ledger (service.ts) asks `refusal(head, move)` against the
// real head on every append attempt, so two racing moves from PENDING_PAYMENT cannot both land.

export const ORDER_STATUSES: readonly OrderStatus[] = ['PENDING_PAYMENT', 'PAID', 'SHIPPED', 'DELIVERED', 'COMPLETED', 'CANCELLED'];

/** Which actors may make which move. */
const MOVES: Record<OrderStatus, Partial<Record<OrderStatus, readonly OrderActor[]>>> = {
  PENDING_PAYMENT: { PAID: ['PAYMENT'], CANCELLED: ['MEMBER', 'STAFF', 'SYSTEM'] },
  PAID: { SHIPPED: ['STAFF'] },
  SHIPPED: { DELIVERED: ['STAFF'] },
  DELIVERED: { COMPLETED: ['MEMBER', 'STAFF'] },
  COMPLETED: {},
  CANCELLED: {},
};

/** An order with no transitions is where every order starts. */
export const statusOf = (head: Pick<OrderTransitionDoc, 'to'> | null | undefined): OrderStatus => head?.to ?? 'PENDING_PAYMENT';

/** Null when `by` may move the order from `from` to `to`; otherwise why not. */
export function refusal(from: OrderStatus, to: OrderStatus, by: OrderActor): string | null {
  const allowed = MOVES[from][to];
  if (!allowed) return `An order that is ${from} cannot become ${to}`;
  if (!allowed.includes(by)) return `${by} cannot move an order from ${from} to ${to}`;
  return null;
}
