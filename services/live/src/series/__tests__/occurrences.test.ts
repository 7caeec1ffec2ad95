import { occurrenceRoomId, occurrences } from '../service';

const rule = (weekday: number, hh: number, mm = 0) => ({ weekday, minuteOfDay: hh * 60 + mm, timeZone: 'Asia/Shanghai' });

test('the local weekday and time in Asia/Shanghai (UTC+8), strictly after the given time, N weeks ahead', () => {
  // Wednesday 2026-12-02 12:00 UTC is Wednesday 20:00 in Shanghai.
  const at = new Date('2026-12-02T11:59:00Z');
  expect(occurrences(rule(3, 20), at, 2).map((d) => d.toISOString())).toEqual(['2026-12-02T12:00:00.000Z', '2026-12-09T12:00:00.000Z']);
  // Exactly at the start: that one is past, the next week's is the first.
  expect(occurrences(rule(3, 20), new Date('2026-12-02T12:00:00Z'), 1).map((d) => d.toISOString())).toEqual(['2026-12-09T12:00:00.000Z']);
  // Wednesday 02:00 in Shanghai is Tuesday 18:00 UTC (the local date is a day ahead of UTC's).
  expect(occurrences(rule(3, 2), new Date('2026-12-01T17:00:00Z'), 1).map((d) => d.toISOString())).toEqual(['2026-12-01T18:00:00.000Z']);
  // Sunday (7) 23:30 local.
  expect(occurrences(rule(7, 23, 30), new Date('2026-12-02T00:00:00Z'), 1).map((d) => d.toISOString())).toEqual([
    '2026-12-06T15:30:00.000Z',
  ]);
});

test('an occurrence has one room id, time-ordered, different per series', () => {
  const t = new Date('2026-12-09T12:00:00Z');
  expect(occurrenceRoomId('s1', t).equals(occurrenceRoomId('s1', t))).toBe(true);
  expect(occurrenceRoomId('s1', t).equals(occurrenceRoomId('s2', t))).toBe(false);
  expect(occurrenceRoomId('s1', t).getTimestamp().toISOString()).toBe(t.toISOString());
});
