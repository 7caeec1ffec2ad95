import type { IncomingHttpHeaders } from 'node:http';

/**
 * What orders needs from a payment provider (WeChat Pay, Alipay, a card acquirer …). An adapter
 * per provider implements it; the built-in `test` provider (test-provider.ts) behaves like a real
 * one for development and tests.
 *
 * Contract every adapter keeps:
 * - `createIntent` is idempotent per order id (the provider's merchant order number): asking
 *   twice returns the same intent, so an order can only ever be charged through one intent.
 * - `verifyCallback` authenticates a notification from its raw bytes and headers (signature,
 *   timestamp) before anything in it is believed; it throws `CallbackRejected` otherwise.
 * - `refund` is idempotent per refund id: asking twice returns money once.
 * - `queryIntent` asks the provider what it captured for an intent (WeChat Pay's order query,
 *   Alipay's trade query): the reconciliation sweeper applies what it reports exactly as it
 *   would the callback that should have brought it, so a lost callback never loses a payment.
 */
export interface PaymentProvider {
  /** Lowercase; also the callback route: `POST /payments/<name>/callback`. */
  readonly name: string;
  createIntent(req: { orderId: string; amount: number; currency: 'CNY' }): Promise<CreatedIntent>;
  verifyCallback(rawBody: string, headers: IncomingHttpHeaders): Promise<VerifiedCallback>;
  refund(req: { providerTxnId: string; amount: number; refundId: string }): Promise<{ providerRefundId: string }>;
  /** The charge captured for an intent, as a callback would report it; null while nothing was captured. */
  queryIntent(intentId: string): Promise<VerifiedCallback | null>;
}

export interface CreatedIntent {
  intentId: string;
  /** Opaque parameters the client hands to the provider's SDK to pay (JSON). */
  clientParams: string;
}

export interface VerifiedCallback {
  intentId: string;
  /**
   * The merchant order number the provider holds for the intent, when it reports one (WeChat
   * Pay's out_trade_no): checked against the intent's order before anything is applied.
   */
  orderId?: string;
  /** The provider's id of the money movement: one per charge, repeated on every redelivery. */
  providerTxnId: string;
  /** Integer fen actually captured. */
  amount: number;
  currency: string;
  /** Only SUCCEEDED moves money; FAILED attempts are acknowledged and change nothing. */
  status: 'SUCCEEDED' | 'FAILED';
}

/** A callback that cannot be believed (bad or missing signature, stale timestamp, malformed). */
export class CallbackRejected extends Error {
  constructor(
    message: string,
    /** 401 for authentication failures, 400 for a malformed but authentic body. */
    readonly status: 400 | 401 = 401,
  ) {
    super(message);
  }
}
