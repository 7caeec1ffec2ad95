import { applyChange, supersedes } from '../service';

const t = (s: number) => new Date(Date.UTC(2025, 5, 18, 12, 0, s));

test('a later changedAt supersedes; an earlier one or the same value at the same time does not', () => {
  expect(supersedes({ value: null, at: null }, { value: 'GOLD', at: t(0) })).toBe(true);
  expect(supersedes({ value: 'GOLD', at: t(5) }, { value: 'SILVER', at: t(6) })).toBe(true);
  expect(supersedes({ value: 'GOLD', at: t(5) }, { value: 'SILVER', at: t(4) })).toBe(false);
  expect(supersedes({ value: 'GOLD', at: t(5) }, { value: 'GOLD', at: t(5) })).toBe(false);
  // A tie on time is settled by the value, so both delivery orders end alike.
  expect(supersedes({ value: 'GOLD', at: t(5) }, { value: 'SILVER', at: t(5) })).toBe(true);
  expect(supersedes({ value: 'SILVER', at: t(5) }, { value: 'GOLD', at: t(5) })).toBe(false);
});

test('a change replaces its own dimension only, and only when newer', () => {
  const head = { tier: 'GOLD' as const, tierAt: t(5), segment: 'NEW' as const, segmentAt: t(5) };
  expect(applyChange(null, { tier: 'SILVER', at: t(1) })).toEqual({ tier: 'SILVER', tierAt: t(1), segment: null, segmentAt: null });
  expect(applyChange(head, { segment: 'DORMANT', at: t(9) })).toEqual({ ...head, segment: 'DORMANT', segmentAt: t(9) });
  expect(applyChange(head, { tier: 'DIAMOND', at: t(9) })).toEqual({ ...head, tier: 'DIAMOND', tierAt: t(9) });
  expect(applyChange(head, { tier: 'SILVER', at: t(4) })).toBeNull();
  expect(applyChange(head, { tier: 'GOLD', at: t(5) })).toBeNull();
});
