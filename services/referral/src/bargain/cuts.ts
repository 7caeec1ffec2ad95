import { createHmac } from 'node:crypto';

/**
 * The cuts of a bargain (砍价), a pure function of its seed: `helpers` positive integers (fen)
 * summing to exactly `total` (= start price − floor price), so the price reaches the floor at the
 * last required helper and never passes it. Each cut is 1 fen plus a share of the rest weighted
 * by HMAC-SHA256(seed, k), and earlier helpers weigh more (the first cuts feel big, the last ones
 * small, as shoppers expect). Largest remainders place the leftover fen; all in BigInt, so the
 * sum is exact for any safe integer.
 */
export function bargainCuts(seed: string, total: number, helpers: number): number[] {
  if (!Number.isSafeInteger(total) || !Number.isInteger(helpers) || helpers < 1 || total < helpers) {
    throw new RangeError(`cannot cut ${total} fen into ${helpers} positive cuts`);
  }
  const rest = BigInt(total - helpers);
  const weights = Array.from({ length: helpers }, (_, i) => {
    const h = createHmac('sha256', seed)
      .update(`cut:${i + 1}`)
      .digest()
      .readUInt32BE(0);
    return BigInt((h % 1000) + 1) * BigInt(helpers - i);
  });
  const sum = weights.reduce((a, w) => a + w, 0n);
  const shares = weights.map((w) => (rest * w) / sum);
  let left = rest - shares.reduce((a, s) => a + s, 0n);
  // The leftover fen go to the largest remainders, ties to the earlier helper.
  const order = weights.map((w, i) => ({ i, r: (rest * w) % sum })).sort((a, b) => (a.r === b.r ? a.i - b.i : a.r > b.r ? -1 : 1));
  for (const { i } of order) {
    if (left === 0n) break;
    shares[i] = shares[i]! + 1n;
    left -= 1n;
  }
  return shares.map((s) => Number(s) + 1);
}

/** The price after the first `helped` cuts (never below the floor: extra helps are refused). */
export function priceAfter(cuts: readonly number[], startPrice: number, helped: number): number {
  let price = startPrice;
  for (let i = 0; i < Math.min(helped, cuts.length); i++) price -= cuts[i]!;
  return price;
}
