import { addDays, localClock, localDate, localMidnight } from '../time';

describe('calendar time in a zone', () => {
  test('localMidnight is the instant the local day starts, with and without daylight saving', () => {
    expect(localMidnight('2026-12-03', 'Asia/Shanghai').toISOString()).toBe('2026-12-02T16:00:00.000Z');
    expect(localMidnight('2026-07-01', 'America/New_York').toISOString()).toBe('2026-07-01T04:00:00.000Z');
    expect(localMidnight('2026-01-15', 'America/New_York').toISOString()).toBe('2026-01-15T05:00:00.000Z');
    // The day daylight saving starts in New York (02:00 → 03:00): midnight is still EST.
    expect(localMidnight('2026-03-08', 'America/New_York').toISOString()).toBe('2026-03-08T05:00:00.000Z');
    for (const zone of ['Asia/Shanghai', 'Europe/London', 'America/Los_Angeles', 'Asia/Kolkata']) {
      const m = localMidnight('2026-10-25', zone);
      expect(localDate(m, zone)).toBe('2026-10-25');
      expect(localClock(m, zone).time).toBe('00:00');
      expect(localDate(new Date(m.getTime() - 1), zone)).toBe('2026-10-24');
    }
  });

  test('addDays crosses months and years', () => {
    expect(addDays('2026-12-30', 3)).toBe('2027-01-02');
    expect(addDays('2026-03-01', -1)).toBe('2026-02-28');
    expect(addDays('2028-03-01', -1)).toBe('2028-02-29');
  });
});
