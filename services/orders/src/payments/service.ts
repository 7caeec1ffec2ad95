import type { IncomingHttpHeaders } from 'node:http';
import { AppError, claimOnce, notFound, requireRole, type Logger, type Viewer } from '@flywheel/service-kit';
import type { OrderDoc } from '../order/model';
import { CURRENCY, type OrderStatus } from '../types';
import type { PaymentDoc, PaymentIntentDoc, PaymentModels, PaymentVerdict, RefundDoc, RefundReason } from './model';
import { CallbackRejected, type PaymentProvider, type VerifiedCallback } from './provider';

/** What payments needs from the order aggregate; the ledger decides, never this module. */
export interface PayableOrders {
  find(orderId: string): Promise<OrderDoc | null>;
  /** The head of the order's transitions. */
  status(orderId: string): Promise<OrderStatus>;
  /** Appends PENDING_PAYMENT → PAID for this payment; false when the head refused it. */
  markPaid(order: OrderDoc, paymentId: string): Promise<boolean>;
  /** The payment the order's PAID transition names, if it was paid. */
  paidBy(orderId: string): Promise<string | null>;
  /** When an unpaid order is cancelled. */
  payBy(order: OrderDoc): Date;
}

export interface CallbackAnswer {
  status: number;
  body: Record<string, unknown>;
}

export type CallbackOutcome = 'PAID' | 'REFUNDED' | 'IGNORED';
export type PaymentStatus = 'CAPTURED' | 'REFUND_PENDING' | 'REFUNDED';

/** A payment as the order's member and staff see it. */
export interface PaymentView {
  id: string;
  amount: number;
  receivedAt: Date;
  status: PaymentStatus;
  refundReason: RefundReason | null;
}

export interface PaymentDeps {
  models: PaymentModels;
  provider: PaymentProvider;
  orders: PayableOrders;
  now: () => Date;
  /** Reconciliation asks the provider about intents without a payment this old (60 s) … */
  reconcileAfterSeconds?: number;
  /** … and up to this old: past the payment window, so a charge captured at the deadline is found too. */
  reconcileUntilSeconds?: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Refunds the provider has not confirmed after this long are asked for again. */
const REFUND_RETRY_MS = 30_000;
/** Intents read per reconciliation pass, and at most asked about (oldest first; the rest wait). */
const RECONCILE_SCAN = 2000;
const RECONCILE_ASK = 200;

export type PaymentSource = 'CALLBACK' | 'RECONCILIATION';

/** The provider name of a zero-total order's settlement: no money moved, so nothing to ask or refund at a provider. */
export const ZERO_PROVIDER = 'none';

export function createPaymentService(deps: PaymentDeps) {
  const { models, provider, orders, now } = deps;

  /** Money that did not pay its order goes back: one refund per payment, whoever asks first. */
  async function refund(payment: PaymentDoc, reason: RefundReason): Promise<RefundDoc> {
    const refundId = `refund:${payment._id}`;
    await claimOnce(models.Refund, {
      _id: refundId,
      paymentId: payment._id,
      orderId: payment.orderId,
      amount: payment.amount,
      reason,
      createdAt: now(),
      completedAt: null,
      providerRefundId: null,
    });
    const claimed = (await models.Refund.findById(refundId).lean<RefundDoc>())!;
    return claimed.completedAt ? claimed : complete(claimed, payment.providerTxnId);
  }

  /** The provider is idempotent per refund id: asking again after a crash returns money once. */
  async function complete(r: RefundDoc, providerTxnId: string): Promise<RefundDoc> {
    const { providerRefundId } = await provider.refund({ providerTxnId, amount: r.amount, refundId: r._id });
    const completedAt = now();
    await models.Refund.updateOne({ _id: r._id }, { $set: { completedAt, providerRefundId } });
    return { ...r, completedAt, providerRefundId };
  }

  /** Applies a recorded payment; safe to run again for the same payment (redelivery, crash). */
  async function apply(payment: PaymentDoc, order: OrderDoc): Promise<CallbackOutcome> {
    if (payment.verdict !== 'MATCHED') {
      await refund(payment, payment.verdict);
      return 'REFUNDED';
    }
    if (await orders.markPaid(order, payment._id)) return 'PAID';
    // The head refused: already paid by this very payment (a redelivery raced us), paid by
    // another one, or cancelled first. Money that did not pay the order goes back.
    const paidBy = await orders.paidBy(order._id);
    if (paidBy === payment._id) return 'PAID';
    await refund(payment, paidBy ? 'ALREADY_PAID' : 'ORDER_CANCELLED');
    return 'REFUNDED';
  }

  /**
   * A charge the provider reported (callback or query), checked against the intent it names:
   * this provider's intent, the intent's order when the provider reports one, the intent's
   * amount and currency. Claimed once per provider transaction — the first report decides the
   * verdict every later one sees — then applied. Null for an intent we do not know.
   */
  async function record(cb: VerifiedCallback, via: PaymentSource): Promise<CallbackOutcome | null> {
    const intent = await models.PaymentIntent.findOne({ _id: cb.intentId, provider: provider.name }).lean<PaymentIntentDoc>();
    const order = intent && (await orders.find(intent.orderId));
    if (!intent || !order) {
      // Authentic, yet for nothing we know: answer non-2xx so the provider keeps it and alerts.
      deps.logger?.error({ intentId: cb.intentId, txnId: cb.providerTxnId, via }, 'payment for an unknown intent');
      return null;
    }
    const verdict: PaymentVerdict =
      cb.orderId !== undefined && cb.orderId !== intent.orderId
        ? 'INTENT_MISMATCH'
        : cb.amount === intent.amount && cb.currency === intent.currency && intent.amount === order.total
          ? 'MATCHED'
          : 'AMOUNT_MISMATCH';
    const paymentId = `${provider.name}:${cb.providerTxnId}`;
    await claimOnce(models.Payment, {
      _id: paymentId,
      orderId: order._id,
      intentId: intent._id,
      provider: provider.name,
      providerTxnId: cb.providerTxnId,
      amount: cb.amount,
      currency: cb.currency,
      verdict,
      receivedAt: now(),
      via,
    });
    const payment = (await models.Payment.findById(paymentId).lean<PaymentDoc>())!;
    if (payment.verdict !== 'MATCHED') {
      deps.logger?.warn(
        {
          paymentId,
          orderId: order._id,
          verdict: payment.verdict,
          amount: payment.amount,
          currency: payment.currency,
          intent: { amount: intent.amount, currency: intent.currency },
          reportedOrderId: cb.orderId,
        },
        'payment does not match its intent; it is refunded',
      );
    }
    return apply(payment, order);
  }

  /**
   * An order that costs nothing (coupons covered the goods and shipping was free) is paid at once,
   * with no provider round-trip: one payment of 0 per order (`none:<orderId>`, a claim), then the
   * same PENDING_PAYMENT → PAID move a callback makes, so every consumer of `orders.order.paid`
   * sees a normal paid order. Safe to repeat (a retried checkout, the recovery sweeper): the
   * payment is claimed once and the ledger moves once. True when the order is paid by it.
   */
  async function settleFree(order: OrderDoc): Promise<boolean> {
    if (order.total !== 0) return false;
    const paymentId = `${ZERO_PROVIDER}:${order._id}`;
    await claimOnce(models.Payment, {
      _id: paymentId,
      orderId: order._id,
      intentId: paymentId,
      provider: ZERO_PROVIDER,
      providerTxnId: order._id,
      amount: 0,
      currency: CURRENCY,
      verdict: 'MATCHED',
      receivedAt: now(),
      via: 'ZERO_TOTAL',
    });
    if (await orders.markPaid(order, paymentId)) return true;
    const paidBy = await orders.paidBy(order._id);
    // Cancelled first (a crash left it unpaid past its window): no money moved, none goes back.
    if (paidBy !== paymentId) deps.logger?.warn({ orderId: order._id, paidBy }, 'zero-total order not paid by its settlement');
    return paidBy === paymentId;
  }

  return {
    settleFree,

    /** The member's one intent for an order: asking again returns the same intent. */
    async payOrder(viewer: Viewer | null, orderId: string): Promise<PaymentIntentDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const order = await orders.find(orderId);
      if (!order || order.memberId !== memberId) throw notFound('Order');
      if (order.total === 0) {
        // Paid when placed; a crash before that is finished here rather than at a provider.
        await settleFree(order);
        throw new AppError('CONFLICT', 'Nothing to pay: an order with a zero total is paid when it is placed');
      }
      const existing = await models.PaymentIntent.findOne({ orderId }).lean<PaymentIntentDoc>();
      if (existing) return existing;
      const status = await orders.status(orderId);
      if (status !== 'PENDING_PAYMENT') throw new AppError('CONFLICT', `The order is ${status}`);
      if (orders.payBy(order) <= now()) throw new AppError('CONFLICT', 'The time to pay for this order has run out');
      const created = await provider.createIntent({ orderId, amount: order.total, currency: CURRENCY });
      const intent: PaymentIntentDoc = {
        _id: created.intentId,
        orderId,
        provider: provider.name,
        amount: order.total,
        currency: CURRENCY,
        clientParams: created.clientParams,
        createdAt: now(),
      };
      if (await claimOnce(models.PaymentIntent, { ...intent })) return intent;
      return (await models.PaymentIntent.findOne({ orderId }).lean<PaymentIntentDoc>())!;
    },

    /**
     * A provider's notification, from its raw bytes. Nothing is believed before the signature
     * is; each charge is one payment however often it arrives; the order's ledger decides
     * whether it pays the order, and money that does not pay it is refunded, never lost.
     */
    async handleCallback(rawBody: string, headers: IncomingHttpHeaders): Promise<CallbackAnswer> {
      let cb;
      try {
        cb = await provider.verifyCallback(rawBody, headers);
      } catch (err) {
        if (err instanceof CallbackRejected) return { status: err.status, body: { error: err.message } };
        throw err;
      }
      if (cb.status !== 'SUCCEEDED') return { status: 200, body: { received: true, outcome: 'IGNORED' } };
      const outcome = await record(cb, 'CALLBACK');
      if (!outcome) return { status: 404, body: { error: 'unknown intent' } };
      return { status: 200, body: { received: true, outcome } };
    },

    /**
     * The reconciliation pass: intents with no payment recorded, old enough that their callback
     * should have come, are asked about at the provider; a charge it reports is applied exactly
     * as its callback would be (one payment per provider transaction, so a callback arriving at
     * the same time, or later, changes nothing). The window runs past the payment deadline: a
     * charge captured just before the order was cancelled is found and refunded.
     */
    async reconcile(at: Date = now()): Promise<{ asked: number; applied: number }> {
      const after = (deps.reconcileAfterSeconds ?? 60) * 1000;
      const until = (deps.reconcileUntilSeconds ?? 3600) * 1000;
      const intents = await models.PaymentIntent.find({
        provider: provider.name,
        createdAt: { $gte: new Date(at.getTime() - until), $lte: new Date(at.getTime() - after) },
      })
        .sort({ createdAt: 1 })
        .limit(RECONCILE_SCAN)
        .lean<PaymentIntentDoc[]>();
      if (!intents.length) return { asked: 0, applied: 0 };
      const paid = new Set(
        (await models.Payment.find({ intentId: { $in: intents.map((i) => i._id) } }, { intentId: 1 }).lean<PaymentDoc[]>()).map(
          (p) => p.intentId,
        ),
      );
      // Asked less often as an intent ages (a quarter of its age apart): an abandoned intent costs
      // a dozen queries over its window, not one per sweep.
      const due = (i: PaymentIntentDoc) =>
        !paid.has(i._id) &&
        (!i.askedAt || at.getTime() - i.askedAt.getTime() >= Math.max(after, (at.getTime() - i.createdAt.getTime()) / 4));
      const tally = { asked: 0, applied: 0 };
      for (const intent of intents.filter(due).slice(0, RECONCILE_ASK)) {
        try {
          tally.asked++;
          const found = await provider.queryIntent(intent._id);
          await models.PaymentIntent.updateOne({ _id: intent._id }, { $set: { askedAt: at } });
          if (found?.status !== 'SUCCEEDED') continue;
          if (found.intentId !== intent._id) {
            deps.logger?.error({ intentId: intent._id, reported: found.intentId }, 'provider answered a query with another intent');
            continue;
          }
          deps.logger?.warn(
            { intentId: intent._id, orderId: intent.orderId, txnId: found.providerTxnId },
            'payment found by reconciliation: its callback never came',
          );
          if (await record(found, 'RECONCILIATION')) tally.applied++;
        } catch (err) {
          deps.logger?.warn({ err, intentId: intent._id }, 'payment reconciliation failed; will retry');
        }
      }
      return tally;
    },

    /** Refunds whose provider call failed or was cut short are asked for again. */
    async retryRefunds(at: Date = now()): Promise<number> {
      const stale = await models.Refund.find({ completedAt: null, createdAt: { $lt: new Date(at.getTime() - REFUND_RETRY_MS) } })
        .limit(100)
        .lean<RefundDoc[]>();
      let done = 0;
      for (const r of stale) {
        const payment = await models.Payment.findById(r.paymentId).lean<PaymentDoc>();
        if (!payment) continue;
        try {
          await complete(r, payment.providerTxnId);
          done++;
        } catch (err) {
          deps.logger?.warn({ err, refundId: r._id }, 'refund retry failed; will retry');
        }
      }
      return done;
    },

    /** Oldest first. */
    async paymentsOf(orderId: string): Promise<PaymentView[]> {
      const [payments, refunds] = await Promise.all([
        models.Payment.find({ orderId }).sort({ receivedAt: 1, _id: 1 }).lean<PaymentDoc[]>(),
        models.Refund.find({ orderId }).lean<RefundDoc[]>(),
      ]);
      const byPayment = new Map(refunds.map((r) => [r.paymentId, r]));
      return payments.map((p) => {
        const r = byPayment.get(p._id);
        return {
          id: p._id,
          amount: p.amount,
          receivedAt: p.receivedAt,
          status: r ? (r.completedAt ? 'REFUNDED' : 'REFUND_PENDING') : 'CAPTURED',
          refundReason: r?.reason ?? null,
        };
      });
    },

    intentOf: (orderId: string) => models.PaymentIntent.findOne({ orderId }).lean<PaymentIntentDoc>(),
  };
}
export type PaymentService = ReturnType<typeof createPaymentService>;
