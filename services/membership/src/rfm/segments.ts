import { z } from 'zod';

/** The six segments (用户分层, docs/architecture.md "Names and segments"), same names as `MemberSegment` in @flywheel/events. */
export const SEGMENTS = ['IMPORTANT_VALUE', 'IMPORTANT_RETAIN', 'IMPORTANT_DEVELOP', 'GENERAL_VALUE', 'NEW', 'DORMANT'] as const;
export type Segment = (typeof SEGMENTS)[number];

const DAY_MS = 86_400_000;

/**
 * RFM thresholds as shop operators configure them, stored in `settings/rfm` over the defaults
 * and validated together on save.
 */
export const rfmSettingsSchema = z
  .object({
    /** A purchase at most this many days ago is recent. */
    recentDays: z.number().int().min(1).max(3650),
    /** A member whose last purchase (or, without one, registration) is older than this is dormant. */
    dormantDays: z.number().int().min(2).max(3650),
    /** Paid orders (not fully refunded) from which frequency is high. */
    highFrequency: z.number().int().min(2).max(100_000),
    /** Net fen paid from which monetary value is high. */
    highMonetary: z.number().int().min(1).safe(),
  })
  .strict()
  .superRefine((s, ctx) => {
    if (s.dormantDays <= s.recentDays) {
      ctx.addIssue({ code: 'custom', path: ['dormantDays'], message: 'must be above recentDays' });
    }
  });
export type RfmSettings = z.infer<typeof rfmSettingsSchema>;

export const DEFAULT_RFM_SETTINGS: RfmSettings = {
  recentDays: 30,
  dormantDays: 180,
  highFrequency: 3,
  highMonetary: 100_000,
};

export const RFM_SETTINGS_KEY = 'rfm';

export interface RfmMetrics {
  /** Paid orders not fully refunded. */
  frequency: number;
  /** Fen paid minus fen refunded, never below 0. */
  monetary: number;
  lastPaidAt: Date | null;
  /** When the member registered, if known (ages a member who never bought into DORMANT). */
  registeredAt: Date | null;
}

/** Whole days elapsed from `from` to `at` (0 when `from` is later, e.g. a skewed clock). */
export function daysSince(from: Date, at: Date): number {
  return Math.max(0, Math.floor((at.getTime() - from.getTime()) / DAY_MS));
}

export const recencyDays = (lastPaidAt: Date | null, at: Date): number | null => (lastPaidAt ? daysSince(lastPaidAt, at) : null);

/**
 * The member's segment at `at`, rules in order:
 * 1. never paid → NEW, or DORMANT once registered more than dormantDays ago;
 * 2. last paid more than dormantDays ago → DORMANT;
 * 3. frequency ≤ 1 → NEW (first purchase, or every order but one refunded);
 * 4. high F and high M → IMPORTANT_VALUE if recent, else IMPORTANT_RETAIN;
 * 5. low F, high M, recent → IMPORTANT_DEVELOP;
 * 6. anything else → GENERAL_VALUE.
 * High means at or above the threshold; recent means at most recentDays ago.
 */
export function segmentOf(m: RfmMetrics, s: RfmSettings, at: Date): Segment {
  if (!m.lastPaidAt) return m.registeredAt && daysSince(m.registeredAt, at) > s.dormantDays ? 'DORMANT' : 'NEW';
  const recency = daysSince(m.lastPaidAt, at);
  if (recency > s.dormantDays) return 'DORMANT';
  if (m.frequency <= 1) return 'NEW';
  const highF = m.frequency >= s.highFrequency;
  const highM = m.monetary >= s.highMonetary;
  const recent = recency <= s.recentDays;
  if (highF && highM) return recent ? 'IMPORTANT_VALUE' : 'IMPORTANT_RETAIN';
  if (highM && recent) return 'IMPORTANT_DEVELOP';
  return 'GENERAL_VALUE';
}
