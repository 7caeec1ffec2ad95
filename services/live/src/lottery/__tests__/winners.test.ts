// The lottery's published algorithm, re-implemented here from its documentation (not from the
// module's code) and compared with `lotteryWinners` on fixed inputs.
import { createHash, createHmac } from 'node:crypto';
import { eligibleListHash, lotteryCommitment, lotteryWinners } from '../service';

/** The documented algorithm, written independently: a verifier's implementation. */
function reference(seedHex: string, ids: string[], count: number): string[] {
  const list = Array.from(new Set(ids)).sort();
  const key = Buffer.from(seedHex, 'hex');
  const out: string[] = [];
  const k = Math.min(count, list.length);
  let c = 0;
  while (out.length < k) {
    const msg = Buffer.from([(c >>> 24) & 255, (c >>> 16) & 255, (c >>> 8) & 255, c & 255]);
    c++;
    const h = createHmac('sha256', key).update(msg).digest();
    const x = ((h[0]! << 24) >>> 0) + (h[1]! << 16) + (h[2]! << 8) + h[3]!;
    const m = list.length;
    if (x >= Math.floor(4294967296 / m) * m) continue;
    out.push(list.splice(x % m, 1)[0]!);
  }
  return out;
}

const SEED = '00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff';
const ids = (n: number) => Array.from({ length: n }, (_, i) => `5f00${(i * 7919).toString(16).padStart(20, '0')}`);

test('the winners follow the documented algorithm on fixed inputs', () => {
  for (const [n, k] of [
    [1, 1],
    [2, 1],
    [3, 3],
    [10, 3],
    [37, 10],
    [1000, 25],
  ] as const) {
    const list = ids(n);
    const winners = lotteryWinners(SEED, list, k);
    expect(winners).toEqual(reference(SEED, list, k));
    expect(winners).toHaveLength(Math.min(n, k));
    expect(new Set(winners).size).toBe(winners.length);
    for (const w of winners) expect(list).toContain(w);
  }
});

test('the input order and duplicates do not matter; the seed does', () => {
  const list = ids(50);
  const shuffled = [...list].reverse().concat(list.slice(0, 5));
  expect(lotteryWinners(SEED, shuffled, 5)).toEqual(lotteryWinners(SEED, list, 5));
  expect(lotteryWinners('ff'.repeat(32), list, 5)).not.toEqual(lotteryWinners(SEED, list, 5));
});

test('more winners than members: everyone wins; nobody eligible: nobody', () => {
  const list = ids(4);
  expect([...lotteryWinners(SEED, list, 10)].sort()).toEqual([...list].sort());
  expect(lotteryWinners(SEED, [], 3)).toEqual([]);
  expect(() => lotteryWinners('abc', list, 1)).toThrow();
});

test('the commitment is SHA-256 of the seed bytes; the list hash is over the sorted ids', () => {
  expect(lotteryCommitment(SEED)).toBe(createHash('sha256').update(Buffer.from(SEED, 'hex')).digest('hex'));
  expect(eligibleListHash(['b', 'a', 'b'])).toBe(createHash('sha256').update('a\nb').digest('hex'));
});
