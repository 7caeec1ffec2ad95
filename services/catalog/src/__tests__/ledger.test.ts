import { createKeyQueue } from '@flywheel/service-kit';
import { applyMove, availableOf, crossesLow, EMPTY, flashStatusAt, type StockTotals } from '../stock/ledger';

const t = (onHand: number, reserved = 0, sold = 0): StockTotals => ({ onHand, reserved, sold });

describe('stock moves (pure)', () => {
  test('every move keeps onHand = available + reserved + sold', () => {
    let s = applyMove(EMPTY, 'INITIAL', 10)!;
    const moves = [
      ['RESERVE', 4],
      ['SELL', 3],
      ['RELEASE', 1],
      ['ADJUST', -2],
      ['RESTOCK', 1],
      ['FLASH_ALLOCATE', 3],
      ['FLASH_RETURN', 2],
      ['ADJUST', 5],
    ] as const;
    for (const [kind, qty] of moves) {
      s = applyMove(s, kind, qty)!;
      expect(s.onHand).toBe(availableOf(s) + s.reserved + s.sold);
      expect(availableOf(s)).toBeGreaterThanOrEqual(0);
    }
    expect(s).toEqual({ onHand: 13, reserved: 0, sold: 3 });
  });

  test('a move that would take available below zero is refused (null), never applied', () => {
    expect(applyMove(t(5, 3, 1), 'RESERVE', 2)).toBeNull();
    expect(applyMove(t(5, 3, 1), 'RESERVE', 1)).toEqual(t(5, 4, 1));
    expect(applyMove(t(5, 3), 'ADJUST', -3)).toBeNull();
    expect(applyMove(t(5, 3), 'ADJUST', -2)).toEqual(t(3, 3));
    expect(applyMove(t(5, 3), 'FLASH_ALLOCATE', 3)).toBeNull();
    expect(applyMove(t(5, 3), 'QUOTA_RETURN', 2)).toEqual(t(3, 3));
  });

  test('releasing or selling more than is reserved is a bug, not a refusal', () => {
    expect(() => applyMove(t(5, 1), 'RELEASE', 2)).toThrow(/reserved/);
    expect(() => applyMove(t(5, 1), 'SELL', 2)).toThrow(/reserved/);
    expect(() => applyMove(t(5), 'RESERVE', 0)).toThrow(/quantity/);
    expect(() => applyMove(t(5), 'ADJUST', 0)).toThrow(/quantity/);
    expect(applyMove(EMPTY, 'INITIAL', 0)).toEqual(EMPTY);
  });

  test('low stock: only the move that goes from above the threshold to at or below it crosses', () => {
    expect(crossesLow(t(6), t(6, 1), 5)).toBe(true);
    expect(crossesLow(t(6), t(6, 3), 5)).toBe(true);
    expect(crossesLow(t(6, 1), t(6, 2), 5)).toBe(false);
    expect(crossesLow(t(6, 2), t(6, 1), 5)).toBe(false);
    expect(crossesLow(EMPTY, t(3), 5)).toBe(false);
  });

  test('flash sale status follows the window and the quota left', () => {
    const w = { startsAt: new Date(1_000), endsAt: new Date(2_000) };
    expect(flashStatusAt(w, 5, new Date(999))).toBe('UPCOMING');
    expect(flashStatusAt(w, 5, new Date(1_000))).toBe('LIVE');
    expect(flashStatusAt(w, 0, new Date(1_500))).toBe('SOLD_OUT');
    expect(flashStatusAt(w, 5, new Date(2_000))).toBe('ENDED');
  });
});

describe('the per-key gate', () => {
  test('runs one task at a time per key, keys in parallel, and survives a failing task', async () => {
    const gate = createKeyQueue();
    const log: string[] = [];
    let inA = 0;
    let maxInA = 0;
    const task = (key: string, i: number, fail = false) =>
      gate.run(key, async () => {
        if (key === 'a') maxInA = Math.max(maxInA, ++inA);
        log.push(`${key}${i}:start`);
        await new Promise((r) => setTimeout(r, 5));
        log.push(`${key}${i}:end`);
        if (key === 'a') inA--;
        if (fail) throw new Error('boom');
        return i;
      });
    const results = await Promise.allSettled([task('a', 1), task('a', 2, true), task('b', 1), task('a', 3)]);
    expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'fulfilled']);
    expect(maxInA).toBe(1);
    expect(log.filter((l) => l.startsWith('a'))).toEqual(['a1:start', 'a1:end', 'a2:start', 'a2:end', 'a3:start', 'a3:end']);
    // b did not wait for a's queue.
    expect(log.indexOf('b1:start')).toBeLessThan(log.indexOf('a1:end'));
    await new Promise((r) => setImmediate(r));
    expect(gate.size()).toBe(0);
  });
});
