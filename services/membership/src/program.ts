import { z } from 'zod';
import { badInput, isTimeZone, localDate } from '@flywheel/service-kit';
import type { Settings } from './settings';

export const TIERS = ['REGULAR', 'SILVER', 'GOLD', 'DIAMOND'] as const;
export const TASKS = ['COMPLETE_PROFILE', 'FIRST_ORDER', 'SIGN_IN', 'BROWSE', 'SHARE', 'REVIEW'] as const;
export type TaskName = (typeof TASKS)[number];
/** New-member tasks reward once ever; the others once per day. */
export const ONCE_TASKS: readonly TaskName[] = ['COMPLETE_PROFILE', 'FIRST_ORDER'];
export type TierName = (typeof TIERS)[number];

const tierRule = z.object({
  /** Growth value from which the tier applies (REGULAR is 0). */
  threshold: z.number().int().nonnegative(),
  /** Extra discount on the order, in per-mille (50 = 5 % off), on top of member prices. */
  discountPermille: z.number().int().min(0).max(500),
  /** Points earned per yuan paid, multiplied by this (in percent: 150 = 1.5 ×). */
  pointsMultiplierPercent: z.number().int().min(0).max(1000),
  freeShipping: z.boolean(),
  /** Coupon template granted once a year on the member's birthday (none when null). */
  birthdayCouponTemplateId: z.string().nullable(),
  /** Points granted once a year on the member's birthday. */
  birthdayPoints: z.number().int().nonnegative(),
});
export type TierRule = z.infer<typeof tierRule>;

/**
 * The loyalty program as shop operators configure it (会员体系). Stored in `settings/loyalty`
 * over these defaults; every field is validated together on save.
 */
export const loyaltyProgram = z
  .object({
    /** Points per yuan (100 fen) paid, before the tier multiplier; fractions round down. */
    pointsPerYuan: z.number().int().min(0).max(100),
    /** Growth value per yuan paid. */
    growthPerYuan: z.number().int().min(0).max(100),
    /** Points worth one yuan at checkout (100 = 1 point is 1 fen). */
    pointsPerYuanRedeemed: z.number().int().min(1).max(100_000),
    /** Most of an order points may pay for, in percent. */
    pointsMaxSharePercent: z.number().int().min(0).max(100),
    /** Days an earned lot of points lives; spends take the oldest lots first (FIFO). */
    pointsLifetimeDays: z.number().int().min(1).max(3650),
    /** `expiringSoon` counts lots that expire within this many days. */
    expiringSoonDays: z.number().int().min(1).max(365),
    tiers: z.object({ REGULAR: tierRule, SILVER: tierRule, GOLD: tierRule, DIAMOND: tierRule }),
    /** Days a member keeps a tier after their growth has fallen below it (no instant downgrade). */
    tierRetentionDays: z.number().int().min(0).max(3650),
    /** Growth counts over this rolling window of days (earned growth older than this falls away). */
    growthWindowDays: z.number().int().min(30).max(3650),
    /** 会员日: a day of the month with multiplied points on paid orders; null turns it off. */
    memberDay: z
      .object({
        dayOfMonth: z.number().int().min(1).max(28),
        pointsMultiplierPercent: z.number().int().min(100).max(1000),
      })
      .nullable(),
    /**
     * Growth tasks (成长任务) and what each rewards when the member claims it, once per period:
     * ONCE for new-member tasks, DAY for daily ones.
     */
    tasks: z.record(
      z.enum(['COMPLETE_PROFILE', 'FIRST_ORDER', 'SIGN_IN', 'BROWSE', 'SHARE', 'REVIEW']),
      z.object({ points: z.number().int().min(0).max(100_000), growth: z.number().int().min(0).max(100_000) }),
    ),
    /** Extra points on the n-th consecutive sign-in day (every multiple of `days`). */
    signInStreakBonus: z.object({ days: z.number().int().min(2).max(365), points: z.number().int().min(0).max(100_000) }),
    /** IANA zone the program's days (member day, birthdays, daily tasks) are counted in. */
    timeZone: z.string().min(1),
  })
  .superRefine((p, ctx) => {
    const t = p.tiers;
    if (t.REGULAR.threshold !== 0) ctx.addIssue({ code: 'custom', path: ['tiers', 'REGULAR', 'threshold'], message: 'must be 0' });
    TIERS.forEach((tier, i) => {
      const below = TIERS[i - 1];
      if (below && t[tier].threshold <= t[below].threshold) {
        ctx.addIssue({ code: 'custom', path: ['tiers', tier, 'threshold'], message: `must be above ${below}'s` });
      }
    });
    if (!isTimeZone(p.timeZone)) ctx.addIssue({ code: 'custom', path: ['timeZone'], message: 'unknown time zone' });
  });
export type LoyaltyProgram = z.infer<typeof loyaltyProgram>;

const noGift = { birthdayCouponTemplateId: null, birthdayPoints: 0 };
export const DEFAULT_LOYALTY_PROGRAM: LoyaltyProgram = {
  pointsPerYuan: 1,
  growthPerYuan: 1,
  pointsPerYuanRedeemed: 100,
  pointsMaxSharePercent: 50,
  pointsLifetimeDays: 365,
  expiringSoonDays: 30,
  tiers: {
    REGULAR: { threshold: 0, discountPermille: 0, pointsMultiplierPercent: 100, freeShipping: false, ...noGift },
    SILVER: { threshold: 1_000, discountPermille: 0, pointsMultiplierPercent: 120, freeShipping: false, ...noGift, birthdayPoints: 100 },
    GOLD: { threshold: 5_000, discountPermille: 20, pointsMultiplierPercent: 150, freeShipping: true, ...noGift, birthdayPoints: 300 },
    DIAMOND: {
      threshold: 20_000,
      discountPermille: 50,
      pointsMultiplierPercent: 200,
      freeShipping: true,
      ...noGift,
      birthdayPoints: 1_000,
    },
  },
  tierRetentionDays: 90,
  growthWindowDays: 365,
  memberDay: { dayOfMonth: 8, pointsMultiplierPercent: 200 },
  tasks: {
    COMPLETE_PROFILE: { points: 50, growth: 20 },
    FIRST_ORDER: { points: 100, growth: 50 },
    SIGN_IN: { points: 5, growth: 1 },
    BROWSE: { points: 2, growth: 1 },
    SHARE: { points: 5, growth: 2 },
    REVIEW: { points: 10, growth: 5 },
  },
  signInStreakBonus: { days: 7, points: 20 },
  timeZone: 'Asia/Shanghai',
};

export const LOYALTY_SETTINGS_KEY = 'loyalty';

export const loyaltyProgramOf = (settings: Settings) => settings.get<LoyaltyProgram>(LOYALTY_SETTINGS_KEY, DEFAULT_LOYALTY_PROGRAM);

/** Validates a whole program; every problem is reported in one BAD_USER_INPUT. */
export function parseProgram<T>(schema: z.ZodType<T>, value: unknown): T {
  const parsed = schema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw badInput(`Invalid settings: ${issues.join('; ')}`, parsed.error.issues[0]?.path.join('.'));
  }
  return parsed.data;
}

/** The calendar date (YYYY-MM-DD) of an instant in the program's time zone (the kit's, every paid event asks). */
export { localDate };

/** Whether an instant falls on the configured member day. */
export async function isMemberDay(settings: Settings, at: Date): Promise<boolean> {
  const p = await loyaltyProgramOf(settings);
  return p.memberDay !== null && Number(localDate(at, p.timeZone).slice(8, 10)) === p.memberDay.dayOfMonth;
}
