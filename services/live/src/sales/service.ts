import type { EventData } from '@flywheel/events';
import {
  appendOnce,
  badInput,
  claimOnce,
  createKeyQueue,
  isObjectId,
  knownLedgerHead,
  ledgerHead,
  notFound,
  requireRole,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { Models } from '../model';
import type { ProductSalesDoc, RoomSalesDoc, SalesModels } from './model';

export const SALES_LIMITS = {
  /** A visitor's client-made id: 8 to 64 of A–Z, a–z, 0–9, `_` and `-`. */
  visitorId: { min: 8, max: 64 },
  /** Products a report ranks at most. */
  topProducts: 50,
} as const;
const VISITOR_ID = /^[A-Za-z0-9_-]+$/;

/** The viewer's key in a room: `m:<id>` for a signed-in viewer, `v:<visitorId>` for an anonymous one. */
export function viewerKey(viewer: Viewer | null, visitorId: string | null | undefined): string {
  if (viewer) return `m:${viewer.id}`;
  const id = (visitorId ?? '').trim();
  const { min, max } = SALES_LIMITS.visitorId;
  if (id.length < min || id.length > max || !VISITOR_ID.test(id)) {
    throw badInput(`A visitor id of ${min} to ${max} letters, digits, _ or -`, 'visitorId');
  }
  return `v:${id}`;
}

/** The totals after a paid order: its lines added to the room's products. */
export function addPaid(
  head: Pick<RoomSalesDoc, 'orders' | 'gmv' | 'refunded' | 'buyers' | 'products'> | null,
  order: { total: number; lines: readonly { productId: string; quantity: number; unitPrice: number }[] },
  newBuyer: boolean,
): Pick<RoomSalesDoc, 'orders' | 'gmv' | 'refunded' | 'buyers' | 'products'> {
  const products = new Map<string, ProductSalesDoc>((head?.products ?? []).map((p) => [p.productId, { ...p }]));
  for (const l of order.lines) {
    const p = products.get(l.productId) ?? { productId: l.productId, units: 0, gmv: 0 };
    p.units += l.quantity;
    p.gmv += l.quantity * l.unitPrice;
    products.set(l.productId, p);
  }
  return {
    orders: (head?.orders ?? 0) + 1,
    gmv: (head?.gmv ?? 0) + order.total,
    refunded: head?.refunded ?? 0,
    buyers: (head?.buyers ?? 0) + (newBuyer ? 1 : 0),
    products: [...products.values()],
  };
}

/** Products by units sold, then GMV, then id (a stable order). */
export function rankProducts(products: readonly ProductSalesDoc[], first: number): ProductSalesDoc[] {
  const n = Math.max(0, Math.min(first, SALES_LIMITS.topProducts));
  return [...products]
    .sort((a, b) => b.units - a.units || b.gmv - a.gmv || (a.productId < b.productId ? -1 : a.productId > b.productId ? 1 : 0))
    .slice(0, n);
}

export interface RoomSalesReport {
  orders: number;
  gmv: number;
  refunded: number;
  netGmv: number;
  buyers: number;
  viewers: number;
  /** Buyers ÷ unique viewers; null without viewers. */
  conversion: number | null;
  products: ProductSalesDoc[];
}

export function createSalesService(deps: { models: SalesModels; core: Models; now: () => Date; logger: Logger }) {
  const { models, core, now } = deps;
  // One room's appends run one at a time in this replica, each at the head the previous one
  // wrote (an optimisation only: the unique seq and op decide across replicas).
  const perRoom = createKeyQueue();

  const roomExists = async (roomId: string) => isObjectId(roomId) && (await core.LiveRoom.exists({ _id: roomId })) !== null;

  return {
    /**
     * Records the viewer in the room once: an append to the room's viewer ledger under the unique
     * `${roomId}:${viewerKey}`. Returns whether this was the viewer's first entry.
     */
    async enter(viewer: Viewer | null, roomId: string, visitorId?: string | null): Promise<boolean> {
      const key = viewerKey(viewer, visitorId);
      if (!(await roomExists(roomId))) throw notFound('Live room');
      const at = now();
      const entry = await perRoom.run(`v:${roomId}`, () =>
        appendOnce(models.RoomViewer, roomId, `${roomId}:${key}`, () => ({ at }), {
          knownHead: knownLedgerHead(models.RoomViewer, roomId),
        }),
      );
      return entry !== null;
    },

    /**
     * A paid order: every order is recorded by id (its room, or null); a LIVE one whose room
     * exists claims its buyer and appends `paid:<orderId>` to the room's sales ledger. Each step is
     * keyed by the order, so a redelivery (or a crash between steps) ends with the order counted once.
     */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      const at = new Date(data.paidAt);
      const source = data.source;
      const roomId = source.kind === 'LIVE' && (await roomExists(source.roomId)) ? source.roomId : null;
      await claimOnce(models.SalesOrder, { _id: data.orderId, roomId, memberId: data.memberId, total: data.total, at });
      if (!roomId) return;
      const buyerId = `${roomId}:${data.memberId}`;
      // The member's first order in the room makes them a buyer: this order's claim, or this
      // order's own claim from a delivery that stopped before its ledger entry.
      const newBuyer =
        (await claimOnce(models.RoomBuyer, { _id: buyerId, orderId: data.orderId, at })) ||
        (await models.RoomBuyer.findById(buyerId).lean())?.orderId === data.orderId;
      await perRoom.run(`s:${roomId}`, () =>
        appendOnce(
          models.RoomSales,
          roomId,
          `paid:${data.orderId}`,
          (head) =>
            ({
              kind: 'PAID',
              orderId: data.orderId,
              memberId: data.memberId,
              total: data.total,
              newBuyer,
              at,
              ...addPaid(head, data, newBuyer),
            }) as Omit<RoomSalesDoc, '_id' | 'accountId' | 'seq' | 'op'>,
          { knownHead: knownLedgerHead(models.RoomSales, roomId) },
        ),
      );
    },

    /** A refund of a room's order nets out of its GMV: `refund:<refundId>` once. */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const order = await models.SalesOrder.findById(data.orderId).lean();
      // The paid event has not been handled yet: redeliver later rather than lose the refund.
      if (!order) throw new Error(`refund ${data.refundId}: order ${data.orderId} not recorded yet`);
      const roomId = order.roomId;
      if (!roomId) return;
      const at = new Date(data.refundedAt);
      await perRoom.run(`s:${roomId}`, () =>
        appendOnce(
          models.RoomSales,
          roomId,
          `refund:${data.refundId}`,
          (head) =>
            ({
              kind: 'REFUND',
              orderId: data.orderId,
              refundId: data.refundId,
              amount: data.amount,
              at,
              orders: head?.orders ?? 0,
              gmv: head?.gmv ?? 0,
              refunded: (head?.refunded ?? 0) + data.amount,
              buyers: head?.buyers ?? 0,
              products: head?.products ?? [],
            }) as Omit<RoomSalesDoc, '_id' | 'accountId' | 'seq' | 'op'>,
          { knownHead: knownLedgerHead(models.RoomSales, roomId) },
        ),
      );
    },

    /** A report's products ranked, at most `first` (bounded). */
    rank: rankProducts,

    /** Staff only: the room's report from two ledger heads (`_id` reads only). */
    async report(viewer: Viewer | null, roomId: string): Promise<RoomSalesReport> {
      requireRole(viewer, 'STAFF');
      const [sales, viewers] = await Promise.all([ledgerHead(models.RoomSales, roomId), ledgerHead(models.RoomViewer, roomId)]);
      const count = viewers?.seq ?? 0;
      const buyers = sales?.buyers ?? 0;
      const gmv = sales?.gmv ?? 0;
      const refunded = sales?.refunded ?? 0;
      return {
        orders: sales?.orders ?? 0,
        gmv,
        refunded,
        netGmv: gmv - refunded,
        buyers,
        viewers: count,
        conversion: count > 0 ? buyers / count : null,
        products: sales?.products ?? [],
      };
    },
  };
}
export type SalesService = ReturnType<typeof createSalesService>;
