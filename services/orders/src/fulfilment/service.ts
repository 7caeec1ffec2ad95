import { AppError, isSelf, notFound, requireRole, sha256, text, type Logger, type Viewer } from '@flywheel/service-kit';
import { orderShipped } from '../events';
import { fulfilled, hasOpenAfterSale, planShipment, requireInOrder } from '../order/facts';
import type { OrderLedger } from '../order/ledger';
import { mergeLines } from '../order/lines';
import { shipmentOf, type Models, type OrderDoc, type OrderTransitionDoc } from '../order/model';
import type { Orders } from '../order/service';
import type { OrderActor, OrderStatus, StockLine } from '../types';

/** One parcel as the member and staff see it. */
export interface ShipmentView {
  id: string;
  carrier: string;
  trackingNumber: string;
  lines: StockLine[];
  shippedAt: Date;
}

export interface ShipInput {
  carrier: string;
  trackingNumber: string;
  /** What goes in the parcel; everything still to ship when omitted. */
  lines?: StockLine[] | null;
}

const SHIPPABLE: readonly OrderStatus[] = ['PAID', 'PARTIALLY_SHIPPED'];
const DAY_MS = 86_400_000;

/** A parcel is identified by its carrier and tracking number: shipping it again is a replay. */
export const shipmentIdFor = (orderId: string, carrier: string, trackingNumber: string) =>
  sha256(`shipment\0${orderId}\0${carrier}\0${trackingNumber}`).slice(0, 24);

export interface FulfilmentDeps {
  models: Models;
  ledger: OrderLedger;
  orders: Pick<Orders, 'visible' | 'moveOrRefuse'>;
  now: () => Date;
  /** A shipped order nobody confirmed is delivered this long after it shipped in full. */
  autoConfirmDays: number;
  /** After-sales stay open this long after delivery; then the order completes. */
  afterSaleWindowDays: number;
  /** Refuses a parcel for an order still waiting in its group buy (CONFLICT, reason GROUPING). */
  requireReleased?: (order: OrderDoc) => Promise<void>;
  logger?: Pick<Logger, 'warn'>;
}

/**
 * Shipments, delivery and completion. A shipment is an entry of the order's ledger (claimed
 * once: its units are checked against the head, and its id — carrier and tracking number — is
 * in the head's facts once it landed) carrying `orders.order.shipped`; the sweepers move orders
 * through the same ledger, so a member confirming and the sweeper cannot both deliver.
 */
export function createFulfilment(deps: FulfilmentDeps) {
  const { models, ledger, orders, now } = deps;
  const autoConfirmMs = deps.autoConfirmDays * DAY_MS;
  const windowMs = deps.afterSaleWindowDays * DAY_MS;

  async function ship(order: OrderDoc, staffId: string, input: ShipInput): Promise<OrderStatus> {
    const carrier = text(input.carrier, 'carrier', 64);
    const trackingNumber = text(input.trackingNumber, 'trackingNumber', 64);
    const asked = input.lines == null ? null : mergeLines(input.lines);
    if (asked) requireInOrder(order, asked);
    await deps.requireReleased?.(order);
    const shipmentId = shipmentIdFor(order._id, carrier, trackingNumber);
    const r = await ledger.append(order, ({ status, facts, at }) => {
      // The same parcel again (a retry, or a racing duplicate that lost): already recorded.
      if (facts.shipped.some((s) => s.shipmentId === shipmentId)) return null;
      if (!SHIPPABLE.includes(status)) throw new AppError('CONFLICT', `An order that is ${status} cannot be shipped`);
      const lines = planShipment(order, facts, asked);
      const after = { ...facts, shipped: [...facts.shipped, ...lines.map((l) => ({ shipmentId, ...l }))] };
      return {
        op: 'SHIP',
        to: fulfilled(order, after) ? 'SHIPPED' : 'PARTIALLY_SHIPPED',
        by: 'STAFF',
        actorId: staffId,
        shipment: { shipmentId, carrier, trackingNumber, lines },
        facts: after,
        outbox: orderShipped(order, { shipmentId, carrier, trackingNumber, lines }, at),
      };
    });
    return r.status;
  }

  /**
   * The auto-confirm sweeper: orders SHIPPED (in full) longer than AUTO_CONFIRM_DAYS ago are
   * delivered by SYSTEM, checked against the head so a member confirming meanwhile wins cleanly.
   */
  async function autoConfirm(at: Date = now()): Promise<number> {
    const cutoff = new Date(at.getTime() - autoConfirmMs);
    const due = await models.Order.find({ status: 'SHIPPED', statusAt: { $lte: cutoff } })
      .sort({ statusAt: 1 })
      .limit(200)
      .lean<OrderDoc[]>();
    let delivered = 0;
    for (const order of due) {
      try {
        const r = await ledger.move(order, { to: 'DELIVERED', by: 'SYSTEM', actorId: null }, (v) => v.facts.since <= cutoff);
        if (r.moved) delivered++;
      } catch (err) {
        deps.logger?.warn({ err, orderId: order._id }, 'auto-confirm failed; will retry');
      }
    }
    return delivered;
  }

  /**
   * The completion sweeper: orders delivered longer than AFTER_SALE_WINDOW_DAYS ago complete
   * (`orders.order.completed`: commissions settle, showcase posts open). An order with an
   * after-sale still open waits until it is decided and refunded.
   */
  async function completeDue(at: Date = now()): Promise<number> {
    const cutoff = new Date(at.getTime() - windowMs);
    const due = await models.Order.find({ status: 'DELIVERED', statusAt: { $lte: cutoff } })
      .sort({ statusAt: 1 })
      .limit(200)
      .lean<OrderDoc[]>();
    let completed = 0;
    for (const order of due) {
      try {
        const r = await ledger.move(
          order,
          { to: 'COMPLETED', by: 'SYSTEM', actorId: null },
          ({ facts }) => Boolean(facts.deliveredAt && facts.deliveredAt <= cutoff) && !hasOpenAfterSale(facts),
        );
        if (r.moved) completed++;
      } catch (err) {
        deps.logger?.warn({ err, orderId: order._id }, 'completion failed; will retry');
      }
    }
    return completed;
  }

  /** Oldest first; orders shipped before partial shipments existed show their one parcel with every line. */
  function shipments(order: OrderDoc, entries: readonly OrderTransitionDoc[]): ShipmentView[] {
    return entries.flatMap((e) => {
      const shipment = shipmentOf(e);
      if (!shipment) return [];
      return [
        {
          id: shipment.shipmentId,
          carrier: shipment.carrier,
          trackingNumber: shipment.trackingNumber,
          lines: shipment.lines ?? order.lines.map(({ skuId, quantity }) => ({ skuId, quantity })),
          shippedAt: e.at,
        },
      ];
    });
  }

  /** After-sales may be requested until this long after delivery (and any time before it). */
  const windowClosesAt = (deliveredAt: Date) => new Date(deliveredAt.getTime() + windowMs);

  return {
    /** Staff; a parcel (carrier + tracking number) is recorded once, shipping it again answers the order. */
    async shipOrder(viewer: Viewer | null, input: ShipInput & { orderId: string }): Promise<OrderDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const order = await orders.visible(viewer, input.orderId);
      return { ...order, status: await ship(order, staff.id, input) };
    },

    async markOrderDelivered(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const order = await orders.visible(viewer, orderId);
      return orders.moveOrRefuse(order, { to: 'DELIVERED', by: 'STAFF', actorId: staff.id });
    },

    /** The member confirms the parcels arrived: SHIPPED → DELIVERED (the after-sales window starts). */
    async confirmDelivery(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const order = await orders.visible(viewer, orderId);
      if (order.memberId !== memberId) throw notFound('Order');
      return orders.moveOrRefuse(order, { to: 'DELIVERED', by: 'MEMBER', actorId: memberId });
    },

    /** The member confirms receipt (or staff closes it) once delivered. */
    async completeOrder(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const order = await orders.visible(viewer, orderId);
      const by: OrderActor = isSelf(viewer, order.memberId) ? 'MEMBER' : 'STAFF';
      return orders.moveOrRefuse(order, { to: 'COMPLETED', by, actorId: viewer!.id });
    },

    autoConfirm,
    completeDue,
    shipments,
    windowClosesAt,
  };
}
export type Fulfilment = ReturnType<typeof createFulfilment>;
