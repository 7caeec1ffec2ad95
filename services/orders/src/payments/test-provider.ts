import { createHmac, timingSafeEqual } from 'node:crypto';
import type { IncomingHttpHeaders } from 'node:http';
import { Schema, type Connection, type Model } from 'mongoose';
import { isDuplicateKey, sha256 } from '@flywheel/service-kit';
import { CallbackRejected, type CreatedIntent, type PaymentProvider, type VerifiedCallback } from './provider';

// A payment provider for development and tests that behaves like a real one: it keeps its own
// records (its "side" of the world, in collections of its own), charges an intent at most once,
// signs every notification with HMAC-SHA256 over `<timestamp>.<body>` (Stripe's scheme) and
// delivers it by POSTing to the callback URL — as often, as late and in whatever order a test
// asks, as real providers do. Never enabled in production (see config.ts).

export const TEST_PROVIDER = 'test';
export const SIGNATURE_HEADER = 'x-testpay-signature';
/** A notification signed longer ago than this is refused (replayed captures). */
const TOLERANCE_SECONDS = 300;

interface IntentRecord {
  _id: string;
  orderId: string;
  amount: number;
  currency: string;
  createdAt: Date;
}
interface ChargeRecord {
  _id: string;
  intentId: string;
  amount: number;
  currency: string;
  at: Date;
}
interface RefundRecord {
  _id: string;
  txnId: string;
  amount: number;
  at: Date;
}

export interface CallbackPayload {
  type: 'payment.succeeded' | 'payment.failed';
  intentId: string;
  /** The merchant order number the intent was created for (as real providers echo it). */
  orderId: string;
  txnId: string;
  amount: number;
  currency: string;
  at: string;
}

export interface Delivery {
  status: number;
  body: string;
}

export interface TestPaymentProvider extends PaymentProvider {
  /**
   * The member pays: the provider charges the intent (once, whatever the number of calls) and
   * returns the notification it will send. `amount` and `currency` make a misbehaving provider
   * capture something else than the intent's (tests of the amount rule).
   */
  capture(intentId: string, opts?: { amount?: number; currency?: string }): Promise<CallbackPayload>;
  /** A declined attempt's notification (no charge). */
  declined(intentId: string): Promise<CallbackPayload>;
  /** Signs `payload` now and POSTs it to the callback URL. */
  deliver(payload: CallbackPayload): Promise<Delivery>;
  /** `capture` then `deliver`, `times` times (redeliveries of the same charge). */
  pay(intentId: string, opts?: { times?: number; amount?: number }): Promise<Delivery[]>;
  /** The signature header for a raw body, as this provider computes it. */
  sign(rawBody: string, at?: Date): string;
  /** Money the provider returned for a charge, refund by refund. */
  refundsOf(txnId: string): Promise<{ refundId: string; amount: number }[]>;
}

export function createTestPaymentProvider(opts: { db: Connection; secret: string; callbackUrl: () => string }): TestPaymentProvider {
  const { db, secret } = opts;
  const model = <T>(name: string, collection: string, schema: Schema<T>): Model<T> =>
    (db.models[name] as Model<T> | undefined) ?? db.model<T>(name, schema, collection);
  const Intent = model(
    'TestPayIntent',
    'testpay_intents',
    new Schema<IntentRecord>({ _id: String, orderId: String, amount: Number, currency: String, createdAt: Date }, { versionKey: false }),
  );
  const Charge = model(
    'TestPayCharge',
    'testpay_charges',
    new Schema<ChargeRecord>({ _id: String, intentId: String, amount: Number, currency: String, at: Date }, { versionKey: false }),
  );
  const refundSchema = new Schema<RefundRecord>({ _id: String, txnId: String, amount: Number, at: Date }, { versionKey: false });
  refundSchema.index({ txnId: 1 });
  const Refund = model('TestPayRefund', 'testpay_refunds', refundSchema);

  const insertOnce = async <T>(m: { create(doc: T): Promise<unknown> }, doc: T) => {
    try {
      await m.create(doc);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
  };
  const hmac = (payload: string) => createHmac('sha256', secret).update(payload).digest('hex');
  const sign = (rawBody: string, at = new Date()) => {
    const t = Math.floor(at.getTime() / 1000);
    return `t=${t},v1=${hmac(`${t}.${rawBody}`)}`;
  };

  /** One charge per intent: the provider captures an intent at most once. */
  const txnIdOf = (intentId: string) => `txn_${sha256(`charge\0${intentId}`).slice(0, 24)}`;

  async function intent(intentId: string): Promise<IntentRecord> {
    const found = await Intent.findById(intentId).lean<IntentRecord>();
    if (!found) throw new Error(`test provider: no intent ${intentId}`);
    return found;
  }

  const provider: TestPaymentProvider = {
    name: TEST_PROVIDER,

    async createIntent({ orderId, amount, currency }): Promise<CreatedIntent> {
      const intentId = `tpi_${sha256(`intent\0${orderId}`).slice(0, 24)}`;
      await insertOnce(Intent, { _id: intentId, orderId, amount, currency, createdAt: new Date() });
      const found = await intent(intentId);
      // Like a real provider: one merchant order number, one amount.
      if (found.amount !== amount) throw new Error(`test provider: order ${orderId} already has an intent for ${found.amount}`);
      return { intentId, clientParams: JSON.stringify({ provider: TEST_PROVIDER, intentId }) };
    },

    async verifyCallback(rawBody: string, headers: IncomingHttpHeaders): Promise<VerifiedCallback> {
      const header = headers[SIGNATURE_HEADER];
      const parts = Object.fromEntries(
        (typeof header === 'string' ? header : '').split(',').map((kv) => kv.split('=', 2) as [string, string | undefined]),
      );
      const t = Number(parts.t);
      const given = Buffer.from(parts.v1 ?? '', 'hex');
      const expected = Buffer.from(hmac(`${parts.t}.${rawBody}`), 'hex');
      if (!Number.isInteger(t) || given.length !== expected.length || !timingSafeEqual(given, expected)) {
        throw new CallbackRejected('invalid signature');
      }
      if (Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS) throw new CallbackRejected('signature timestamp outside tolerance');
      let p: CallbackPayload;
      try {
        p = JSON.parse(rawBody) as CallbackPayload;
      } catch {
        throw new CallbackRejected('body is not JSON', 400);
      }
      if (
        (p.type !== 'payment.succeeded' && p.type !== 'payment.failed') ||
        typeof p.intentId !== 'string' ||
        typeof p.txnId !== 'string' ||
        (p.orderId !== undefined && typeof p.orderId !== 'string') ||
        !Number.isSafeInteger(p.amount) ||
        typeof p.currency !== 'string'
      ) {
        throw new CallbackRejected('malformed notification', 400);
      }
      return {
        intentId: p.intentId,
        ...(p.orderId !== undefined ? { orderId: p.orderId } : {}),
        providerTxnId: p.txnId,
        amount: p.amount,
        currency: p.currency,
        status: p.type === 'payment.succeeded' ? 'SUCCEEDED' : 'FAILED',
      };
    },

    async refund({ providerTxnId, amount, refundId }) {
      const charge = await Charge.findById(providerTxnId).lean<ChargeRecord>();
      if (!charge) throw new Error(`test provider: no charge ${providerTxnId}`);
      await insertOnce(Refund, { _id: refundId, txnId: providerTxnId, amount, at: new Date() });
      const refunded = (await Refund.find({ txnId: providerTxnId }).lean<RefundRecord[]>()).reduce((s, r) => s + r.amount, 0);
      if (refunded > charge.amount) throw new Error(`test provider: refunds exceed charge ${providerTxnId}`);
      return { providerRefundId: `tpr_${sha256(refundId).slice(0, 24)}` };
    },

    async queryIntent(intentId) {
      // From the provider's own records, as a real provider's query API answers.
      const i = await Intent.findById(intentId).lean<IntentRecord>();
      const charge = i && (await Charge.findById(txnIdOf(intentId)).lean<ChargeRecord>());
      if (!i || !charge) return null;
      return {
        intentId,
        orderId: i.orderId,
        providerTxnId: charge._id,
        amount: charge.amount,
        currency: charge.currency,
        status: 'SUCCEEDED',
      };
    },

    async capture(intentId, o = {}) {
      const i = await intent(intentId);
      const txnId = txnIdOf(intentId);
      await insertOnce(Charge, { _id: txnId, intentId, amount: o.amount ?? i.amount, currency: o.currency ?? i.currency, at: new Date() });
      const charge = (await Charge.findById(txnId).lean<ChargeRecord>())!;
      return {
        type: 'payment.succeeded',
        intentId,
        orderId: i.orderId,
        txnId,
        amount: charge.amount,
        currency: charge.currency,
        at: charge.at.toISOString(),
      };
    },

    async declined(intentId) {
      const i = await intent(intentId);
      const txnId = `txn_declined_${sha256(`${intentId}\0${Date.now()}\0${Math.random()}`).slice(0, 16)}`;
      return {
        type: 'payment.failed',
        intentId,
        orderId: i.orderId,
        txnId,
        amount: i.amount,
        currency: i.currency,
        at: new Date().toISOString(),
      };
    },

    async deliver(payload) {
      const body = JSON.stringify(payload);
      const res = await fetch(opts.callbackUrl(), {
        method: 'POST',
        headers: { 'content-type': 'application/json', [SIGNATURE_HEADER]: sign(body) },
        body,
      });
      return { status: res.status, body: await res.text() };
    },

    async pay(intentId, o = {}) {
      const payload = await provider.capture(intentId, { amount: o.amount });
      const deliveries: Delivery[] = [];
      for (let i = 0; i < (o.times ?? 1); i++) deliveries.push(await provider.deliver(payload));
      return deliveries;
    },

    sign,

    async refundsOf(txnId) {
      return (await Refund.find({ txnId }).lean<RefundRecord[]>()).map((r) => ({ refundId: r._id, amount: r.amount }));
    },
  };
  return provider;
}
