/**
 * What distribution needs from a payout provider (WeChat Pay's transfer to balance, Alipay's
 * transfer, a bank): an adapter per provider implements it; `TestPayoutProvider` behaves like a
 * real one for development and tests.
 *
 * Contract every adapter keeps: `payout` is idempotent per `payoutId` (the provider's merchant
 * transfer number, here the withdrawal id): asking twice moves money once and answers the same
 * transfer. A thrown error means nothing was paid as far as we know; the sweep asks again under
 * the same id, which the provider answers with the first transfer if there was one after all.
 */
export interface PayoutProvider {
  readonly name: string;
  payout(req: { payoutId: string; memberId: string; amount: number; currency: 'CNY' }): Promise<{ providerPayoutId: string }>;
}

export interface RecordedPayout {
  payoutId: string;
  memberId: string;
  amount: number;
  providerPayoutId: string;
  at: Date;
}

/** Records every payout once per id; `failNext(n)` makes the next n calls fail (a provider outage). */
export class TestPayoutProvider implements PayoutProvider {
  readonly name = 'test';
  private readonly paid = new Map<string, RecordedPayout>();
  private failures = 0;
  /** Every call, including replays and failures. */
  calls = 0;

  failNext(n = 1): void {
    this.failures = n;
  }

  async payout(req: { payoutId: string; memberId: string; amount: number; currency: 'CNY' }): Promise<{ providerPayoutId: string }> {
    this.calls++;
    if (this.failures > 0) {
      this.failures--;
      throw new Error('test payout provider: unavailable');
    }
    const known = this.paid.get(req.payoutId);
    if (known) return { providerPayoutId: known.providerPayoutId };
    const providerPayoutId = `test-payout-${this.paid.size + 1}`;
    this.paid.set(req.payoutId, { payoutId: req.payoutId, memberId: req.memberId, amount: req.amount, providerPayoutId, at: new Date() });
    return { providerPayoutId };
  }

  /** What was paid, once per payout id. */
  payouts(): RecordedPayout[] {
    return [...this.paid.values()];
  }
}
