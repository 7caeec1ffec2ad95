import type { IncomingHttpHeaders } from 'node:http';
import { AppError, claimOnce, notFound, requireRole, type Logger, type Viewer } from '@flywheel/service-kit';
import type { OrderDoc, OrderStatus } from '../model';
import { CURRENCY } from '../shared';
import type { PaymentDoc, PaymentIntentDoc, PaymentModels, RefundDoc, RefundReason } from './model';
import { CallbackRejected, type PaymentProvider } from './provider';

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
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/** Refunds the provider has not confirmed after this long are asked for again. */
const REFUND_RETRY_MS = 30_000;

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
    if (payment.verdict === 'AMOUNT_MISMATCH') {
      await refund(payment, 'AMOUNT_MISMATCH');
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

  return {
    /** The member's one intent for an order: asking again returns the same intent. */
    async payOrder(viewer: Viewer | null, orderId: string): Promise<PaymentIntentDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const order = await orders.find(orderId);
      if (!order || order.memberId !== memberId) throw notFound('Order');
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
      const intent = await models.PaymentIntent.findOne({ _id: cb.intentId, provider: provider.name }).lean<PaymentIntentDoc>();
      const order = intent && (await orders.find(intent.orderId));
      if (!intent || !order) {
        // Authentic, yet for nothing we know: answer non-2xx so the provider keeps it and alerts.
        deps.logger?.error({ intentId: cb.intentId, txnId: cb.providerTxnId }, 'payment callback for an unknown intent');
        return { status: 404, body: { error: 'unknown intent' } };
      }
      const paymentId = `${provider.name}:${cb.providerTxnId}`;
      await claimOnce(models.Payment, {
        _id: paymentId,
        orderId: order._id,
        intentId: intent._id,
        provider: provider.name,
        providerTxnId: cb.providerTxnId,
        amount: cb.amount,
        currency: cb.currency,
        verdict: cb.amount === order.total && cb.currency === order.currency ? 'MATCHED' : 'AMOUNT_MISMATCH',
        receivedAt: now(),
      });
      const payment = (await models.Payment.findById(paymentId).lean<PaymentDoc>())!;
      if (payment.verdict === 'AMOUNT_MISMATCH') {
        deps.logger?.warn(
          { paymentId, orderId: order._id, amount: payment.amount, total: order.total },
          'payment amount does not match the order',
        );
      }
      const outcome = await apply(payment, order);
      return { status: 200, body: { received: true, outcome } };
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
