import { AppError, badInput, isSelf, isSelfOrStaff, requireRole } from '@flywheel/service-kit';
import type { Resolvers, UpdateLoyaltyProgramInput } from '../__generated__/resolvers';
import { TIERS, type LoyaltyProgram, type TierName, type TierRule } from '../program';
import type { LoyaltyService } from './service';

const benefitsOf = (r: TierRule) => ({
  discountPermille: r.discountPermille,
  pointsMultiplierPercent: r.pointsMultiplierPercent,
  freeShipping: r.freeShipping,
  birthdayPoints: r.birthdayPoints,
  birthdayCouponTemplateId: r.birthdayCouponTemplateId,
});

/** The GraphQL input as a patch of the stored program (validated as a whole by the service). */
function programPatch(input: UpdateLoyaltyProgramInput, current: LoyaltyProgram): Record<string, unknown> {
  const patch: Record<string, unknown> = {};
  for (const k of [
    'pointsPerYuan',
    'growthPerYuan',
    'pointsPerYuanRedeemed',
    'pointsMaxSharePercent',
    'pointsLifetimeDays',
    'expiringSoonDays',
    'tierRetentionDays',
    'growthWindowDays',
    'timeZone',
  ] as const) {
    if (input[k] !== undefined && input[k] !== null) patch[k] = input[k];
  }
  if (input.tiers) {
    const tiers = {} as Record<TierName, TierRule>;
    for (const t of input.tiers)
      tiers[t.tier] = { threshold: t.threshold, ...t.benefits, birthdayCouponTemplateId: t.benefits.birthdayCouponTemplateId ?? null };
    const missing = TIERS.filter((t) => !tiers[t]);
    if (missing.length || input.tiers.length !== TIERS.length)
      throw badInput(`Give each of the four tiers once (missing: ${missing.join(', ') || 'none'})`, 'tiers');
    patch.tiers = tiers;
  }
  if (input.noMemberDay && input.memberDay) throw badInput('Either memberDay or noMemberDay', 'memberDay');
  if (input.noMemberDay) patch.memberDay = null;
  if (input.memberDay) patch.memberDay = input.memberDay;
  if (input.tasks) {
    const tasks = { ...current.tasks };
    for (const t of input.tasks) tasks[t.task] = { points: t.points, growth: t.growth };
    patch.tasks = tasks;
  }
  if (input.signInStreakDays != null || input.signInStreakBonusPoints != null) {
    patch.signInStreakBonus = {
      days: input.signInStreakDays ?? current.signInStreakBonus.days,
      points: input.signInStreakBonusPoints ?? current.signInStreakBonus.points,
    };
  }
  return patch;
}

export function loyaltyResolvers(loyalty: LoyaltyService): Resolvers {
  return {
    Query: {
      loyaltyProgram: () => loyalty.program(),
    },
    Mutation: {
      signIn: async (_, __, { viewer, loaders }) => {
        const res = await loyalty.signIn(viewer);
        const member = await loaders.member.load(viewer!.id);
        if (!member) throw new AppError('NOT_FOUND', 'Member not found');
        return { ...res, member };
      },
      claimTaskReward: async (_, { input }, { viewer, loaders }) => {
        const res = await loyalty.claimTask(viewer, input.task);
        const member = await loaders.member.load(viewer!.id);
        if (!member) throw new AppError('NOT_FOUND', 'Member not found');
        return { ...res, member };
      },
      grantPoints: async (_, { input }, { viewer }) => {
        const staff = requireRole(viewer, 'STAFF');
        const key = input.idempotencyKey.trim();
        if (key.length < 1 || key.length > 128) throw badInput('idempotencyKey must be 1 to 128 characters', 'idempotencyKey');
        const reason = input.reason.trim();
        if (reason.length < 1 || reason.length > 200) throw badInput('reason must be 1 to 200 characters', 'reason');
        const entry = await loyalty.grantPoints(input.memberId, `staff:${staff.id}:${key}`, input.points, `${reason} (staff)`);
        if (!entry) throw new Error('grant produced no entry');
        return entry;
      },
      updateLoyaltyProgram: async (_, { input }, { viewer }) => {
        requireRole(viewer, 'STAFF');
        return loyalty.updateProgram(viewer, programPatch(input, await loyalty.program()));
      },
    },
    Member: {
      tier: (m) => loyalty.tierOf(m._id.toHexString()),
      points: (m, _, { viewer }) => (isSelfOrStaff(viewer, m._id.toHexString()) ? loyalty.pointsView(m._id.toHexString()) : null),
      tierStatus: (m, _, { viewer }) => (isSelfOrStaff(viewer, m._id.toHexString()) ? loyalty.tierView(m._id.toHexString()) : null),
      tasks: (m, _, { viewer }) => (isSelf(viewer, m._id.toHexString()) ? loyalty.tasksOf(m._id.toHexString()) : null),
    },
    MemberPoints: {
      history: (p, { first, after }) => loyalty.history(p.memberId, first ?? 20, after),
    },
    PointsEntry: {
      id: (e) => e._id,
      orderId: (e) => e.orderId ?? null,
      shortfall: (e) => e.shortfall ?? null,
    },
    MemberTierStatus: {
      benefits: (s) => benefitsOf(s.program.tiers[s.tier]),
      nextTier: (s) => TIERS[TIERS.indexOf(s.tier) + 1] ?? null,
      growthToNext: (s) => {
        const next = TIERS[TIERS.indexOf(s.tier) + 1];
        return next ? Math.max(0, s.program.tiers[next].threshold - s.growth) : null;
      },
    },
    LoyaltyProgram: {
      tiers: (p) => TIERS.map((tier) => ({ tier, threshold: p.tiers[tier].threshold, benefits: benefitsOf(p.tiers[tier]) })),
      tasks: (p) => Object.entries(p.tasks).map(([task, r]) => ({ task: task as never, ...r })),
      signInStreakDays: (p) => p.signInStreakBonus.days,
      signInStreakBonusPoints: (p) => p.signInStreakBonus.points,
    },
  };
}
