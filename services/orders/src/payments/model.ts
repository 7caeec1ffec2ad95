import { Schema, type Connection } from 'mongoose';

/** One payment intent per order (unique orderId); `_id` is the provider's intent id. */
export interface PaymentIntentDoc {
  _id: string;
  orderId: string;
  provider: string;
  /** Integer fen: the order's total when the intent was created. */
  amount: number;
  currency: 'CNY';
  clientParams: string;
  createdAt: Date;
  /** When reconciliation last asked the provider about it (it asks less often as the intent ages). */
  askedAt?: Date;
}

/**
 * MATCHED: the money is what the intent asked for, for the intent's order. AMOUNT_MISMATCH: another
 * amount or currency than the intent's. INTENT_MISMATCH: the provider reports the charge for
 * another order than the intent's. Only MATCHED can pay an order; the rest is refunded.
 */
export type PaymentVerdict = 'MATCHED' | 'AMOUNT_MISMATCH' | 'INTENT_MISMATCH';

/**
 * Money the provider says it captured, claimed once per provider transaction
 * (`_id = <provider>:<providerTxnId>`): however often a callback is delivered, it is one payment.
 * The verdict is decided before the insert, so every redelivery sees the first decision.
 */
export interface PaymentDoc {
  _id: string;
  orderId: string;
  intentId: string;
  provider: string;
  providerTxnId: string;
  /** Integer fen actually captured. */
  amount: number;
  currency: string;
  verdict: PaymentVerdict;
  receivedAt: Date;
  /**
   * How orders learned of it first: the provider's callback, or reconciliation asking the provider;
   * ZERO_TOTAL for the settlement of an order that costs nothing (provider `none`, amount 0, no
   * intent, `_id = none:<orderId>`). Absent on older payments (callbacks).
   */
  via?: 'CALLBACK' | 'RECONCILIATION' | 'ZERO_TOTAL';
}

export type RefundReason = 'ORDER_CANCELLED' | 'ALREADY_PAID' | 'AMOUNT_MISMATCH' | 'INTENT_MISMATCH';

/**
 * A payment that did not pay its order goes back, claimed once per payment
 * (`_id = refund:<paymentId>`, also the provider's refund idempotency key). `completedAt` is set
 * once the provider confirmed; until then the refund sweeper retries.
 */
export interface RefundDoc {
  _id: string;
  paymentId: string;
  orderId: string;
  amount: number;
  reason: RefundReason;
  createdAt: Date;
  completedAt: Date | null;
  providerRefundId: string | null;
}

export function createPaymentModels(db: Connection) {
  const intentSchema = new Schema<PaymentIntentDoc>(
    {
      _id: String,
      orderId: { type: String, required: true },
      provider: { type: String, required: true },
      amount: { type: Number, required: true },
      currency: { type: String, required: true },
      clientParams: { type: String, required: true },
      createdAt: { type: Date, required: true },
      askedAt: { type: Date },
    },
    { versionKey: false },
  );
  intentSchema.index({ orderId: 1 }, { unique: true });
  // Reconciliation's worklist: intents old enough to have had their callback.
  intentSchema.index({ provider: 1, createdAt: 1 });

  const paymentSchema = new Schema<PaymentDoc>(
    {
      _id: String,
      orderId: { type: String, required: true },
      intentId: { type: String, required: true },
      provider: { type: String, required: true },
      providerTxnId: { type: String, required: true },
      amount: { type: Number, required: true },
      currency: { type: String, required: true },
      verdict: { type: String, required: true },
      receivedAt: { type: Date, required: true },
      via: { type: String },
    },
    { versionKey: false },
  );
  paymentSchema.index({ orderId: 1, receivedAt: 1 });
  paymentSchema.index({ intentId: 1 });

  const refundSchema = new Schema<RefundDoc>(
    {
      _id: String,
      paymentId: { type: String, required: true },
      orderId: { type: String, required: true },
      amount: { type: Number, required: true },
      reason: { type: String, required: true },
      createdAt: { type: Date, required: true },
      completedAt: { type: Date, default: null },
      providerRefundId: { type: String, default: null },
    },
    { versionKey: false },
  );
  refundSchema.index({ orderId: 1 });
  refundSchema.index({ completedAt: 1, createdAt: 1 });

  return {
    PaymentIntent: db.model<PaymentIntentDoc>('PaymentIntent', intentSchema, 'payment_intents'),
    Payment: db.model<PaymentDoc>('Payment', paymentSchema, 'payments'),
    Refund: db.model<RefundDoc>('Refund', refundSchema, 'refunds'),
  };
}
export type PaymentModels = ReturnType<typeof createPaymentModels>;
