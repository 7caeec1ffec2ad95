import { randomUUID } from 'node:crypto';
import type { OrderSource } from '@flywheel/events';
import type { EventHandlers } from './shipping/events';
import { consumeForModules, outboxRecord, type Bus, type OutboxRecord } from '@flywheel/service-kit';
import type { OrderDoc, RefundRecord } from './order/model';
import { CURRENCY, type Move, type OrderSourceDoc, type StockLine } from './types';

// Every `orders.order.*` payload is built here, whichever module's write carries it: the
// placement rides in the Order insert (checkout), every other event in the ledger entry that
// records it (order moves, fulfilment's shipments, after-sales' refunds) and is published by the
// outbox relay. Payloads carry ids and facts, never whole documents.

/** The event contract names each kind's reference. */
export function eventSource(source: OrderSourceDoc): OrderSource {
  if (source.kind === 'DIRECT') return { kind: 'DIRECT' };
  const { kind, refId } = source;
  switch (kind) {
    case 'CONTENT':
      return { kind, articleId: refId };
    case 'LIVE':
      return { kind, roomId: refId };
    case 'COMMUNITY':
      return { kind, postId: refId };
    case 'REFERRAL':
      return { kind, code: refId };
  }
}

const stockLines = (order: Pick<OrderDoc, 'lines'>) => order.lines.map(({ skuId, quantity }) => ({ skuId, quantity }));

/** `orders.order.placed`, written with the order itself. */
export function orderPlaced(order: Pick<OrderDoc, '_id' | 'memberId' | 'total' | 'source' | 'lines'>, at: Date): OutboxRecord {
  return outboxRecord(
    'orders.order.placed',
    {
      orderId: order._id,
      memberId: order.memberId,
      total: order.total,
      currency: CURRENCY,
      lines: order.lines.map(({ skuId, productId, quantity, unitPrice }) => ({ skuId, productId, quantity, unitPrice })),
      source: eventSource(order.source),
    },
    randomUUID(),
    at,
  );
}

/** The coupons an order used, as `orders.order.paid` names them (omitted when none). */
function couponIdsOf(order: Pick<OrderDoc, 'adjustments'>): { couponIds?: string[] } {
  const couponIds = (order.adjustments ?? []).filter((a) => a.kind === 'COUPON').map((a) => a.ref);
  return couponIds.length ? { couponIds } : {};
}

/** The event a plain move of the state machine carries in its ledger entry, if any. */
export function orderMoved(order: OrderDoc, move: Move, at: Date): OutboxRecord | undefined {
  const id = randomUUID();
  const { _id: orderId, memberId } = order;
  switch (move.to) {
    case 'PAID':
      return outboxRecord(
        'orders.order.paid',
        {
          orderId,
          memberId,
          total: order.total,
          currency: order.currency,
          lines: order.lines.map((l) => ({
            skuId: l.skuId,
            productId: l.productId,
            quantity: l.quantity,
            unitPrice: l.unitPrice,
            priceKind: l.priceKind ?? 'LIST',
            ...(l.flashSaleId ? { flashSaleId: l.flashSaleId } : {}),
          })),
          source: eventSource(order.source),
          paymentId: move.paymentId,
          paidAt: at.toISOString(),
          ...couponIdsOf(order),
        },
        id,
        at,
      );
    case 'CANCELLED':
      return outboxRecord(
        'orders.order.cancelled',
        { orderId, memberId, reason: move.reason, lines: stockLines(order), cancelledAt: at.toISOString() },
        id,
        at,
      );
    case 'DELIVERED':
      return outboxRecord('orders.order.delivered', { orderId, memberId, deliveredAt: at.toISOString() }, id, at);
    case 'COMPLETED':
      return outboxRecord('orders.order.completed', { orderId, memberId, total: order.total, completedAt: at.toISOString() }, id, at);
    default:
      // Shipments and refunds carry their own events (orderShipped, orderRefunded).
      return undefined;
  }
}

/** `orders.order.shipped`, one per parcel. */
export function orderShipped(
  order: Pick<OrderDoc, '_id' | 'memberId'>,
  parcel: { shipmentId: string; carrier: string; trackingNumber: string; lines: StockLine[] },
  at: Date,
): OutboxRecord {
  return outboxRecord('orders.order.shipped', { orderId: order._id, memberId: order.memberId, ...parcel }, randomUUID(), at);
}

/** `orders.order.refunded`, one per after-sale refund. */
export function orderRefunded(
  order: Pick<OrderDoc, '_id' | 'memberId'>,
  refund: Pick<RefundRecord, 'refundId' | 'amount' | 'restock'>,
  at: Date,
): OutboxRecord {
  return outboxRecord(
    'orders.order.refunded',
    {
      orderId: order._id,
      memberId: order.memberId,
      refundId: refund.refundId,
      amount: refund.amount,
      currency: CURRENCY,
      restock: refund.restock,
      refundedAt: at.toISOString(),
    },
    randomUUID(),
    at,
  );
}

/**
 * One durable consumer per subject (`orders_<subject>`) running every module's handler for it.
 * Orders consumes `membership.member.erased` (shipping/: the address snapshots of the member's
 * orders go); group-buy outcomes (`referral.groupbuy.*`) arrive with the group-buy saga. It
 * publishes through the outbox only (the builders above), and asks catalog and membership over
 * request/reply (clients/). Every handler is idempotent by itself.
 */
export const registerConsumers = ({ bus, handlers }: { bus: Bus; handlers: EventHandlers[] }): Promise<void> =>
  consumeForModules(bus, handlers);
