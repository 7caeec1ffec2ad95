import { DEFAULT_RFM_SETTINGS, rfmSettingsSchema, segmentOf, type RfmMetrics } from '../segments';

const DAY = 86_400_000;
const at = new Date('2025-06-30T12:00:00Z');
const ago = (days: number) => new Date(at.getTime() - days * DAY);
const s = DEFAULT_RFM_SETTINGS; // recent 30, dormant 180, high F 3, high M 100000
const m = (over: Partial<RfmMetrics>): RfmMetrics => ({ frequency: 0, monetary: 0, lastPaidAt: null, registeredAt: ago(1), ...over });

describe('segmentOf places a member in one of the six segments', () => {
  test('no purchase: NEW, or DORMANT once registered more than dormantDays ago', () => {
    expect(segmentOf(m({}), s, at)).toBe('NEW');
    expect(segmentOf(m({ registeredAt: null }), s, at)).toBe('NEW');
    expect(segmentOf(m({ registeredAt: ago(180) }), s, at)).toBe('NEW');
    expect(segmentOf(m({ registeredAt: ago(181) }), s, at)).toBe('DORMANT');
  });

  test('a single (or every but one refunded) purchase is NEW while not dormant', () => {
    expect(segmentOf(m({ frequency: 1, monetary: 500_000, lastPaidAt: ago(0) }), s, at)).toBe('NEW');
    expect(segmentOf(m({ frequency: 0, monetary: 0, lastPaidAt: ago(10) }), s, at)).toBe('NEW');
  });

  test('long inactive is DORMANT whatever the value, from dormantDays + 1', () => {
    const big = { frequency: 50, monetary: 10_000_000 };
    expect(segmentOf(m({ ...big, lastPaidAt: ago(180) }), s, at)).toBe('IMPORTANT_RETAIN');
    expect(segmentOf(m({ ...big, lastPaidAt: ago(181) }), s, at)).toBe('DORMANT');
    expect(segmentOf(m({ frequency: 1, lastPaidAt: ago(181) }), s, at)).toBe('DORMANT');
  });

  test('high F and high M: IMPORTANT_VALUE up to recentDays, IMPORTANT_RETAIN after', () => {
    const hi = { frequency: 3, monetary: 100_000 };
    expect(segmentOf(m({ ...hi, lastPaidAt: ago(0) }), s, at)).toBe('IMPORTANT_VALUE');
    expect(segmentOf(m({ ...hi, lastPaidAt: ago(30) }), s, at)).toBe('IMPORTANT_VALUE');
    expect(segmentOf(m({ ...hi, lastPaidAt: ago(31) }), s, at)).toBe('IMPORTANT_RETAIN');
  });

  test('low F, high M, recent: IMPORTANT_DEVELOP; not recent: GENERAL_VALUE', () => {
    const dev = { frequency: 2, monetary: 100_000 };
    expect(segmentOf(m({ ...dev, lastPaidAt: ago(30) }), s, at)).toBe('IMPORTANT_DEVELOP');
    expect(segmentOf(m({ ...dev, lastPaidAt: ago(31) }), s, at)).toBe('GENERAL_VALUE');
  });

  test('everything else is GENERAL_VALUE (thresholds are inclusive)', () => {
    expect(segmentOf(m({ frequency: 2, monetary: 99_999, lastPaidAt: ago(1) }), s, at)).toBe('GENERAL_VALUE');
    expect(segmentOf(m({ frequency: 3, monetary: 99_999, lastPaidAt: ago(1) }), s, at)).toBe('GENERAL_VALUE');
    expect(segmentOf(m({ frequency: 10, monetary: 99_999, lastPaidAt: ago(100) }), s, at)).toBe('GENERAL_VALUE');
  });

  test('thresholds come from the settings', () => {
    const strict = { ...s, highFrequency: 5, highMonetary: 500_000, recentDays: 7 };
    const metrics = m({ frequency: 4, monetary: 600_000, lastPaidAt: ago(7) });
    expect(segmentOf(metrics, strict, at)).toBe('IMPORTANT_DEVELOP');
    expect(segmentOf({ ...metrics, frequency: 5 }, strict, at)).toBe('IMPORTANT_VALUE');
    expect(segmentOf({ ...metrics, frequency: 5, lastPaidAt: ago(8) }, strict, at)).toBe('IMPORTANT_RETAIN');
  });

  test('a purchase dated slightly in the future counts as today', () => {
    expect(segmentOf(m({ frequency: 3, monetary: 100_000, lastPaidAt: new Date(at.getTime() + 60_000) }), s, at)).toBe('IMPORTANT_VALUE');
  });
});

describe('rfm settings validation', () => {
  test('the defaults are valid; recentDays must be below dormantDays; highFrequency at least 2', () => {
    expect(rfmSettingsSchema.safeParse(DEFAULT_RFM_SETTINGS).success).toBe(true);
    expect(rfmSettingsSchema.safeParse({ ...s, recentDays: 180 }).success).toBe(false);
    expect(rfmSettingsSchema.safeParse({ ...s, highFrequency: 1 }).success).toBe(false);
    expect(rfmSettingsSchema.safeParse({ ...s, highMonetary: 0 }).success).toBe(false);
    expect(rfmSettingsSchema.safeParse({ ...s, recentDays: 1.5 }).success).toBe(false);
    expect(rfmSettingsSchema.safeParse({ ...s, other: 1 }).success).toBe(false);
  });
});
