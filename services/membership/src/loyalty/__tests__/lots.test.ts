import { addLots, available, dropExpired, expiryOf, portionOf, proRata, takeFifo, takeNewest, total } from '../lots';

const d = (s: string) => new Date(`${s}T00:00:00Z`);
const now = d('2026-06-01');

describe('lot arithmetic', () => {
  test('expiries round up to a whole UTC day, so a day of earnings is one lot', () => {
    expect(expiryOf(new Date('2026-06-01T08:30:00Z'), 10).toISOString()).toBe('2026-06-12T00:00:00.000Z');
    const lots = addLots(
      [],
      [
        { expiresAt: expiryOf(new Date('2026-06-01T08:30:00Z'), 10), n: 5 },
        { expiresAt: expiryOf(new Date('2026-06-01T20:00:00Z'), 10), n: 7 },
      ],
    );
    expect(lots).toEqual([{ expiresAt: d('2026-06-12'), n: 12 }]);
  });

  test('spends take the lots that expire first and say what they took', () => {
    const lots = addLots(
      [],
      [
        { expiresAt: d('2026-09-01'), n: 10 },
        { expiresAt: d('2026-07-01'), n: 4 },
      ],
    );
    const res = takeFifo(lots, 6, now)!;
    expect(res.taken).toEqual([
      { expiresAt: d('2026-07-01'), n: 4 },
      { expiresAt: d('2026-09-01'), n: 2 },
    ]);
    expect(res.lots).toEqual([{ expiresAt: d('2026-09-01'), n: 8 }]);
  });

  test('a spend larger than the unexpired lots is refused; expired lots never count', () => {
    const lots = addLots(
      [],
      [
        { expiresAt: d('2026-05-01'), n: 100 },
        { expiresAt: d('2026-09-01'), n: 3 },
      ],
    );
    expect(available(lots, now)).toBe(3);
    expect(takeFifo(lots, 4, now)).toBeNull();
    expect(dropExpired(lots, now)).toEqual({ lots: [{ expiresAt: d('2026-09-01'), n: 3 }], expired: 100 });
  });

  test('a claw-back takes the newest lots and never goes below zero', () => {
    const lots = addLots(
      [],
      [
        { expiresAt: d('2026-07-01'), n: 2 },
        { expiresAt: d('2026-09-01'), n: 3 },
      ],
    );
    const res = takeNewest(lots, 10, now);
    expect(res.shortfall).toBe(5);
    expect(total(res.lots)).toBe(0);
  });

  test('a partial return gives back the latest-expiring part of what a spend took', () => {
    const taken = [
      { expiresAt: d('2026-07-01'), n: 4 },
      { expiresAt: d('2026-09-01'), n: 2 },
    ];
    expect(portionOf(taken, 3)).toEqual([
      { expiresAt: d('2026-09-01'), n: 2 },
      { expiresAt: d('2026-07-01'), n: 1 },
    ]);
    expect(() => portionOf(taken, 7)).toThrow();
  });

  test('pro-rata shares over several partial refunds add up to the whole exactly', () => {
    const earned = 333;
    const refunds = [1000, 2500, 3499, 3001];
    const whole = refunds.reduce((a, b) => a + b, 0);
    let cum = 0;
    let back = 0;
    for (const r of refunds) {
      back += proRata(earned, cum + r, whole) - proRata(earned, cum, whole);
      cum += r;
    }
    expect(back).toBe(earned);
  });
});
