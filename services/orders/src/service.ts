import DataLoader from 'dataloader';
import type { QueryFilter } from 'mongoose';
import {
  AppError,
  badInput,
  byIdLoader,
  forbidden,
  notFound,
  paginate,
  requireRole,
  requireViewer,
  type BaseContext,
  type Bus,
  type Logger,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { AfterSaleDoc, AfterSaleModels } from './aftersales/model';
import { createAfterSales, type AfterSaleView, type RequestAfterSaleInput } from './aftersales/service';
import { createCartService } from './cart/service';
import type { CartModels } from './cart/model';
import { createCatalogClient } from './catalog';
import { createCheckout, type CheckoutHooks, type PlaceOrderInput } from './checkout';
import type { AfterSaleStatus } from './facts';
import { createFulfilment, type ShipInput, type ShipmentView } from './fulfilment';
import { createOrderLedger, type CancelReason, type Move } from './ledger';
import type { Models, OrderActor, OrderDoc, OrderStatus, OrderTransitionDoc } from './model';
import type { PaymentIntentDoc, PaymentModels } from './payments/model';
import type { PaymentProvider } from './payments/provider';
import { createPaymentService } from './payments/service';
import type { QuoteAdjuster } from './pricing';
import { canSee, isMember } from './shared';
import { ORDER_STATUSES, statusOf } from './state';
import { createUnpaidHolds, type UnpaidCaps } from './unpaid';

export { orderIdFor, type CheckoutHooks, type PlaceOrderInput } from './checkout';
export { CURRENCY, money, MAX_LINES, MAX_QUANTITY, type Money } from './shared';
export type { AfterSaleView, ShipmentView, CancelReason };

/** A member as orders knows one: by key only (membership owns the rest). */
export interface MemberRef {
  id: string;
}

export interface OrdersDeps {
  models: Models;
  cartModels: CartModels;
  paymentModels: PaymentModels;
  afterSaleModels: AfterSaleModels;
  /** Request/reply to other services (prices and stock from catalog). */
  bus: Pick<Bus, 'request'>;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  provider: PaymentProvider;
  catalogTimeoutMs?: number;
  paymentTimeoutSeconds?: number;
  checkoutRecoverySeconds?: number;
  /** A shipped order nobody confirmed is delivered this many days after it shipped in full (7). */
  autoConfirmDays?: number;
  /** After-sales stay open this many days after delivery, then the order completes (7). */
  afterSaleWindowDays?: number;
  /** Caps on what one member's unpaid orders hold (MAX_UNPAID_*). */
  unpaidCaps?: UnpaidCaps;
  /** Reconciliation asks the provider about intents whose callback has not come after this long (60). */
  paymentReconcileAfterSeconds?: number;
  /** Checkout pricing extension point (coupons, points, group-buy): none yet. */
  adjusters?: readonly QuoteAdjuster[];
  hooks?: CheckoutHooks;
  now?: () => Date;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** One step of an order's history as clients see it; the first is the placement. */
export interface TransitionView {
  from: OrderStatus | null;
  to: OrderStatus;
  at: Date;
  by: OrderActor;
  reason: string | null;
}

export function createOrderService(deps: OrdersDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());
  const paymentTimeoutMs = (deps.paymentTimeoutSeconds ?? 900) * 1000;
  const catalog = createCatalogClient(deps.bus, deps.catalogTimeoutMs);
  const cart = createCartService({ models: deps.cartModels, catalog, now });
  const recoverySeconds = deps.checkoutRecoverySeconds ?? 60;
  const unpaid = createUnpaidHolds({
    models,
    caps: deps.unpaidCaps ?? { orders: 3, units: 30, flashUnitsPerSku: 5 },
    now,
    recoverySeconds,
    logger: deps.logger,
  });
  const checkout = createCheckout({
    models,
    catalog,
    cart,
    unpaid,
    adjusters: deps.adjusters ?? [],
    hooks: deps.hooks ?? {},
    kick: deps.kick,
    now,
    recoverySeconds,
    logger: deps.logger,
  });

  // Order ids are hashes (the idempotency claim), not time-ordered: page by createdAt.
  const newestFirst = (filter: QueryFilter<OrderDoc>, args: PageArgs) => paginate(models.Order, filter, args, { by: 'createdAt' });

  const ledger = createOrderLedger({
    models,
    now,
    kick: deps.kick,
    // Paid, cancelled or expired: the order's share of the member's unpaid allowance goes back.
    // A failure here is not the move's (it landed): the member's next checkout at a cap finds
    // the stale hold and gives it back.
    leftUnpaid: (order) =>
      unpaid
        .release(order.memberId, order._id)
        .then(() => undefined)
        .catch((err: unknown) => deps.logger?.warn({ err, orderId: order._id }, 'unpaid hold not released; released when next needed')),
  });
  const { move } = ledger;
  const payBy = (order: OrderDoc) => new Date(order.createdAt.getTime() + paymentTimeoutMs);
  const fulfilment = createFulfilment({
    models,
    ledger,
    now,
    autoConfirmDays: deps.autoConfirmDays ?? 7,
    afterSaleWindowDays: deps.afterSaleWindowDays ?? 7,
    logger: deps.logger,
  });
  const afterSales = createAfterSales({
    models,
    afterSaleModels: deps.afterSaleModels,
    paymentModels: deps.paymentModels,
    provider: deps.provider,
    ledger,
    windowClosesAt: fulfilment.windowClosesAt,
    now,
    logger: deps.logger,
  });

  /** The order if this viewer may see it; another member's order is exactly like an unknown one. */
  async function visible(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
    requireViewer(viewer);
    const order = await models.Order.findById(orderId).lean<OrderDoc>();
    if (!order || !canSee(viewer, order.memberId)) throw notFound('Order');
    return order;
  }

  /** A move asked for by a person: repeating a move already made answers the order as it is. */
  async function moveOrRefuse(order: OrderDoc, m: Move): Promise<OrderDoc> {
    const r = await move(order, m);
    if (!r.moved && r.status !== m.to) throw new AppError('CONFLICT', r.refused ?? `The order is ${r.status}`);
    return { ...order, status: r.status };
  }

  /**
   * The unpaid-order sweeper: orders still PENDING_PAYMENT past the payment timeout are
   * cancelled through the ledger, so a payment landing at the same moment and the sweeper
   * cannot both win; `orders.order.cancelled` tells catalog to release the stock.
   */
  async function cancelUnpaid(at: Date = now()): Promise<number> {
    const cutoff = new Date(at.getTime() - paymentTimeoutMs);
    const due = await models.Order.find({ status: 'PENDING_PAYMENT', createdAt: { $lt: cutoff } })
      .sort({ createdAt: 1 })
      .limit(200)
      .lean<OrderDoc[]>();
    let cancelled = 0;
    for (const order of due) {
      try {
        if ((await move(order, { to: 'CANCELLED', by: 'SYSTEM', actorId: null, reason: 'EXPIRED' })).moved) cancelled++;
      } catch (err) {
        deps.logger?.warn({ err, orderId: order._id }, 'unpaid order cancel failed; will retry');
      }
    }
    return cancelled;
  }

  const payments = createPaymentService({
    models: deps.paymentModels,
    provider: deps.provider,
    now,
    reconcileAfterSeconds: deps.paymentReconcileAfterSeconds ?? 60,
    // Past the payment deadline by more than the wait for a callback: a charge captured at the
    // last moment is still found (and refunded, its order being cancelled by then).
    reconcileUntilSeconds: (deps.paymentTimeoutSeconds ?? 900) + recoverySeconds + 2 * (deps.paymentReconcileAfterSeconds ?? 60) + 600,
    logger: deps.logger,
    orders: {
      find: (orderId) => models.Order.findById(orderId).lean<OrderDoc>(),
      status: async (orderId) => statusOf(await ledger.head(orderId)),
      markPaid: async (order, paymentId) => (await move(order, { to: 'PAID', by: 'PAYMENT', actorId: null, paymentId })).moved,
      // The move that paid it: later entries of a paid order (shipments, after-sales) are `to: PAID` too.
      paidBy: async (orderId) =>
        (await models.OrderTransition.findOne({ accountId: orderId, from: 'PENDING_PAYMENT', to: 'PAID' }).lean<OrderTransitionDoc>())
          ?.paymentId ?? null,
      payBy,
    },
  });

  return {
    placeOrder: (viewer: Viewer | null, input: PlaceOrderInput) => checkout.placeOrder(viewer, input),
    checkoutPreview: (viewer: Viewer | null, input: Omit<PlaceOrderInput, 'idempotencyKey'>) => checkout.preview(viewer, input),

    /** Another member's order answers exactly like an unknown one. */
    async order(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc> {
      requireViewer(viewer);
      const order = await loaders.order.load(id);
      if (!order || !canSee(viewer, order.memberId)) throw notFound('Order');
      return order;
    },

    /** For `_entities`: null rather than an error, so one hidden order does not fail a whole plan. */
    async orderReference(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc | null> {
      const order = await loaders.order.load(id);
      return order && canSee(viewer, order.memberId) ? order : null;
    },

    memberOrders(viewer: Viewer | null, memberId: string, args: PageArgs) {
      requireViewer(viewer);
      if (!canSee(viewer, memberId)) throw forbidden("Only the member or staff can list a member's orders");
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
      const by: OrderActor = isMember(viewer, order.memberId) ? 'MEMBER' : 'STAFF';
      return moveOrRefuse(order, { to: 'CANCELLED', by, actorId: viewer!.id, reason: by });
    },

    /** Staff; a parcel (carrier + tracking number) is recorded once, shipping it again answers the order. */
    async shipOrder(viewer: Viewer | null, input: ShipInput & { orderId: string }): Promise<OrderDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const order = await visible(viewer, input.orderId);
      return { ...order, status: await fulfilment.ship(order, staff.id, input) };
    },

    async markOrderDelivered(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const order = await visible(viewer, orderId);
      return moveOrRefuse(order, { to: 'DELIVERED', by: 'STAFF', actorId: staff.id });
    },

    /** The member confirms the parcels arrived: SHIPPED → DELIVERED (the after-sales window starts). */
    async confirmDelivery(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const order = await visible(viewer, orderId);
      if (order.memberId !== memberId) throw notFound('Order');
      return moveOrRefuse(order, { to: 'DELIVERED', by: 'MEMBER', actorId: memberId });
    },

    /** The member confirms receipt (or staff closes it) once delivered. */
    async completeOrder(viewer: Viewer | null, orderId: string): Promise<OrderDoc> {
      const order = await visible(viewer, orderId);
      const by: OrderActor = isMember(viewer, order.memberId) ? 'MEMBER' : 'STAFF';
      return moveOrRefuse(order, { to: 'COMPLETED', by, actorId: viewer!.id });
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
    async payBy(loaders: OrderLoaders, order: OrderDoc): Promise<Date | null> {
      return statusOf((await loaders.transitions.load(order._id)).at(-1)) === 'PENDING_PAYMENT' ? payBy(order) : null;
    },

    /** One pass of every sweeper (run on a timer by main.ts). */
    async sweep(at: Date = now()) {
      // Payments first: a charge whose callback was lost pays its order before the unpaid-order
      // sweeper would cancel it (and is refunded if the order was cancelled already).
      const reconciled = await payments.reconcile(at);
      const [checkouts, expired, refunds, delivered, completed, afterSale] = await Promise.all([
        checkout.recover(at),
        cancelUnpaid(at),
        payments.retryRefunds(at),
        fulfilment.autoConfirm(at),
        fulfilment.completeDue(at),
        afterSales.sweep(at),
      ]);
      return { reconciled, checkouts, expired, refunds, delivered, completed, afterSales: afterSale };
    },

    cancelUnpaid,
    /** Asks the provider about intents whose callback never came (also a step of `sweep`). */
    reconcilePayments: (at?: Date) => payments.reconcile(at),
    /** What the member's unpaid orders hold against the caps. */
    unpaidHeldBy: (memberId: string) => unpaid.heldBy(memberId),
    /** Delivers orders shipped longer than AUTO_CONFIRM_DAYS before `at`. */
    autoConfirmDeliveries: (at?: Date) => fulfilment.autoConfirm(at),
    /** Completes orders delivered longer than AFTER_SALE_WINDOW_DAYS before `at`. */
    completeDueOrders: (at?: Date) => fulfilment.completeDue(at),
    sweepAfterSales: (at?: Date) => afterSales.sweep(at),

    async shipments(loaders: OrderLoaders, order: OrderDoc): Promise<ShipmentView[]> {
      return fulfilment.shipments(order, await loaders.transitions.load(order._id));
    },

    /** Oldest first, read from the order's ledger. */
    async afterSalesOf(loaders: OrderLoaders, order: OrderDoc): Promise<AfterSaleView[]> {
      const entries = await loaders.transitions.load(order._id);
      return entries.filter((e) => e.op === 'AFTER_SALE_REQUEST').map((e) => afterSales.view(entries, e.afterSaleId!)!);
    },

    /** Integer fen refunded through after-sales so far. */
    async refunded(loaders: OrderLoaders, order: OrderDoc): Promise<number> {
      const entries = await loaders.transitions.load(order._id);
      return entries.reduce((s, e) => s + (e.op === 'REFUND' ? (e.refund?.amount ?? 0) : 0), 0);
    },

    requestAfterSale: (viewer: Viewer | null, input: RequestAfterSaleInput) => afterSales.request(viewer, input),
    approveAfterSale: (viewer: Viewer | null, input: { afterSaleId: string; note?: string | null }) => afterSales.approve(viewer, input),
    rejectAfterSale: (viewer: Viewer | null, input: { afterSaleId: string; note: string }) => afterSales.reject(viewer, input),
    receiveReturn: (viewer: Viewer | null, input: { afterSaleId: string }) => afterSales.receiveReturn(viewer, input),
    afterSale: (viewer: Viewer | null, id: string) => afterSales.find(viewer, id),
    afterSales: (viewer: Viewer | null, args: PageArgs & { status?: AfterSaleStatus | null }) => afterSales.list(viewer, args),
    /** A listed after-sale as of its order's ledger. */
    async afterSaleView(loaders: OrderLoaders, doc: AfterSaleDoc): Promise<AfterSaleView> {
      return afterSales.view(await loaders.transitions.load(doc.orderId), doc._id)!;
    },
    recoverCheckouts: (at?: Date) => checkout.recover(at),

    cart: (viewer: Viewer | null) => cart.cart(viewer),
    addCartLine: (viewer: Viewer | null, input: { skuId: string; quantity: number }) => cart.addLine(viewer, input),
    updateCartLine: (viewer: Viewer | null, input: { skuId: string; quantity: number }) => cart.updateLine(viewer, input),
    removeCartLine: (viewer: Viewer | null, input: { skuId: string }) => cart.removeLine(viewer, input),

    payOrder: (viewer: Viewer | null, orderId: string) => payments.payOrder(viewer, orderId),
    handlePaymentCallback: payments.handleCallback,
    /** Reached through Order, which is already gated to its member and staff. */
    paymentsOf: payments.paymentsOf,

    /** An intent follows its order: paid once the order is, cancelled with it. */
    async intentStatus(loaders: OrderLoaders, intent: PaymentIntentDoc): Promise<'REQUIRES_PAYMENT' | 'SUCCEEDED' | 'CANCELLED'> {
      const status = statusOf((await loaders.transitions.load(intent.orderId)).at(-1));
      return status === 'PENDING_PAYMENT' ? 'REQUIRES_PAYMENT' : status === 'CANCELLED' ? 'CANCELLED' : 'SUCCEEDED';
    },

    loaders: () => createLoaders(models),
  };
}

function createLoaders(models: Models) {
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
export type OrderLoaders = ReturnType<typeof createLoaders>;
export type OrderService = ReturnType<typeof createOrderService>;

export interface Context extends BaseContext {
  service: OrderService;
  loaders: OrderLoaders;
}
