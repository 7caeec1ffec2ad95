import DataLoader from 'dataloader';
import type { QueryFilter } from 'mongoose';
import {
  AppError,
  badInput,
  byIdLoader,
  forbidden,
  isSelf,
  isSelfOrStaff,
  notFound,
  paginate,
  requireRole,
  requireViewer,
  type Logger,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { Move, OrderActor, OrderStatus } from '../types';
import type { OrderLedger } from './ledger';
import type { Models, OrderDoc, OrderTransitionDoc } from './model';
import { ORDER_STATUSES, statusOf } from './state';

/** One step of an order's history as clients see it; the first is the placement. */
export interface TransitionView {
  from: OrderStatus | null;
  to: OrderStatus;
  at: Date;
  by: OrderActor;
  reason: string | null;
}

export interface OrdersDeps {
  models: Models;
  ledger: OrderLedger;
  now: () => Date;
  /** An unpaid order is cancelled this long after it was placed. */
  paymentTimeoutMs: number;
  logger?: Pick<Logger, 'warn'>;
}

export function createOrderLoaders(models: Models) {
  return {
    order: byIdLoader(models.Order),
    /** Each order's transitions, oldest first, in one query per tick. */
    transitions: new DataLoader<string, OrderTransitionDoc[]>(async (ids) => {
      const entries = await models.OrderTransition.find({ accountId: { $in: [...ids] } })
        .sort({ accountId: 1, seq: 1 })
        .lean<OrderTransitionDoc[]>();
      const byOrder = new Map<string, OrderTransitionDoc[]>();
      for (const e of entries) byOrder.set(e.accountId, [...(byOrder.get(e.accountId) ?? []), e]);
      return ids.map((id) => byOrder.get(id) ?? []);
    }),
  };
}
export type OrderLoaders = ReturnType<typeof createOrderLoaders>;

/**
 * The order aggregate as people see and move it: reading (a member their own, staff any),
 * staff search, cancelling, and the unpaid-order sweeper. Every move goes through the ledger.
 */
export function createOrders(deps: OrdersDeps) {
  const { models, ledger, now, paymentTimeoutMs } = deps;

  // Order ids are hashes (the idempotency claim), not time-ordered: page by createdAt.
  const newestFirst = (filter: QueryFilter<OrderDoc>, args: PageArgs) => paginate(models.Order, filter, args, { by: 'createdAt' });

  /** When an unpaid order is cancelled. */
  const payBy = (order: OrderDoc) => new Date(order.createdAt.getTime() + paymentTimeoutMs);

  /** The order if this viewer may see it; another member's order is exactly like an unknown one. */
  async function visible(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
    requireViewer(viewer);
    const order = await models.Order.findById(orderId).lean<OrderDoc>();
    if (!order || !isSelfOrStaff(viewer, order.memberId)) throw notFound('Order');
    return order;
  }

  /** A move asked for by a person: repeating a move already made answers the order as it is. */
  async function moveOrRefuse(order: OrderDoc, m: Move): Promise<OrderDoc> {
    const r = await ledger.move(order, m);
    if (!r.moved && r.status !== m.to) throw new AppError('CONFLICT', r.refused ?? `The order is ${r.status}`);
    return { ...order, status: r.status };
  }

  return {
    visible,
    moveOrRefuse,
    payBy,

    /** Another member's order answers exactly like an unknown one. */
    async order(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc> {
      requireViewer(viewer);
      const order = await loaders.order.load(id);
      if (!order || !isSelfOrStaff(viewer, order.memberId)) throw notFound('Order');
      return order;
    },

    /** For `_entities`: null rather than an error, so one hidden order does not fail a whole plan. */
    async orderReference(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc | null> {
      const order = await loaders.order.load(id);
      return order && isSelfOrStaff(viewer, order.memberId) ? order : null;
    },

    memberOrders(viewer: Viewer | null, memberId: string, args: PageArgs) {
      requireViewer(viewer);
      if (!isSelfOrStaff(viewer, memberId)) throw forbidden("Only the member or staff can list a member's orders");
      return newestFirst({ memberId }, args);
    },

    /** Staff search, newest first. `status` filters on the projection of each order's head. */
    searchOrders(
      viewer: Viewer | null,
      args: PageArgs & { status?: OrderStatus | null; memberId?: string | null; from?: Date | null; to?: Date | null },
    ) {
      requireRole(viewer, 'STAFF');
      const filter: QueryFilter<OrderDoc> = {};
      if (args.status) {
        if (!ORDER_STATUSES.includes(args.status)) throw badInput(`Unknown status ${args.status}`, 'status');
        filter.status = args.status;
        // Paid group-buy orders still waiting for their group are not awaiting shipment.
        if (args.status === 'PAID') filter.grouping = { $ne: true };
      }
      if (args.memberId) filter.memberId = args.memberId;
      if (args.from || args.to) {
        if (args.from && args.to && args.from >= args.to) throw badInput('from must be before to', 'from');
        filter.createdAt = { ...(args.from ? { $gte: args.from } : {}), ...(args.to ? { $lt: args.to } : {}) };
      }
      return newestFirst(filter, args);
    },

    /** The member (their own unpaid order) or staff; cancelling twice answers the cancelled order. */
    async cancelOrder(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const order = await visible(viewer, orderId);
      const by: OrderActor = isSelf(viewer, order.memberId) ? 'MEMBER' : 'STAFF';
      return moveOrRefuse(order, { to: 'CANCELLED', by, actorId: viewer!.id, reason: by });
    },

    /**
     * The unpaid-order sweeper: orders still PENDING_PAYMENT past the payment timeout are
     * cancelled through the ledger, so a payment landing at the same moment and the sweeper
     * cannot both win; `orders.order.cancelled` tells catalog to release the stock.
     */
    async cancelUnpaid(at: Date = now()): Promise<number> {
      const cutoff = new Date(at.getTime() - paymentTimeoutMs);
      const due = await models.Order.find({ status: 'PENDING_PAYMENT', createdAt: { $lt: cutoff } })
        .sort({ createdAt: 1 })
        .limit(200)
        .lean<OrderDoc[]>();
      let cancelled = 0;
      for (const order of due) {
        try {
          if ((await ledger.move(order, { to: 'CANCELLED', by: 'SYSTEM', actorId: null, reason: 'EXPIRED' })).moved) cancelled++;
        } catch (err) {
          deps.logger?.warn({ err, orderId: order._id }, 'unpaid order cancel failed; will retry');
        }
      }
      return cancelled;
    },

    /** Decided by the head, never by the stored projection. */
    async status(loaders: OrderLoaders, order: OrderDoc): Promise<OrderStatus> {
      return statusOf((await loaders.transitions.load(order._id)).at(-1));
    },

    async history(loaders: OrderLoaders, order: OrderDoc): Promise<TransitionView[]> {
      const entries = await loaders.transitions.load(order._id);
      return [
        { from: null, to: 'PENDING_PAYMENT', at: order.createdAt, by: 'MEMBER', reason: null },
        // Shipments and after-sale steps that left the status as it was are not moves.
        ...entries.filter((e) => e.from !== e.to).map((e) => ({ from: e.from, to: e.to, at: e.at, by: e.by, reason: e.reason })),
      ];
    },

    /** When the unpaid order is cancelled; null once it is no longer waiting for payment. */
    async payByOf(loaders: OrderLoaders, order: OrderDoc): Promise<Date | null> {
      return statusOf((await loaders.transitions.load(order._id)).at(-1)) === 'PENDING_PAYMENT' ? payBy(order) : null;
    },
  };
}
export type Orders = ReturnType<typeof createOrders>;
