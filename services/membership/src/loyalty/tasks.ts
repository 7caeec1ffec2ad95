import { AppError, badInput, claimOnce, findByIds, requireRole, type Viewer } from '@flywheel/service-kit';
import { localDate, ONCE_TASKS, type LoyaltyProgram, type TaskName } from '../program';
import type { EventData } from '@flywheel/events';
import { DAY_MS, type LotAccounts, type LoyaltyContext } from './accounts';
import type { LoyaltyClaimDoc } from './model';
import type { Tiers } from './tiers';

/**
 * Tasks rewarded only against evidence another service published, one reward per piece: REVIEW
 * needs a published showcase (晒单/评价, `community.post.published` with kind SHOWCASE; a plain
 * POST is no review); SHARE needs a share the member made (`referral.share.created`).
 */
const EVIDENCE_TASKS: readonly TaskName[] = ['REVIEW', 'SHARE'];

const noEvidence = (task: TaskName) =>
  new AppError(
    'CONFLICT',
    task === 'SHARE'
      ? 'Share something (分享) first: each share earns one share reward'
      : 'Publish a new showcase (晒单) first: each one earns one review reward',
    { reason: 'NO_EVIDENCE' },
  );

/** Rewards claimed once per period: daily sign-in and its streak, tasks, and birthday gifts. */
export function createTaskRewards(ctx: LoyaltyContext, accounts: LotAccounts, tiers: Tiers) {
  const { models, now, program } = ctx;
  const { creditPoints } = accounts;
  const { creditGrowth, tierOf } = tiers;

  function taskPeriod(task: TaskName, at: Date, p: LoyaltyProgram) {
    return ONCE_TASKS.includes(task) ? 'once' : localDate(at, p.timeZone);
  }

  async function rewardTask(memberId: string, claimId: string, points: number, growth: number, reason: string) {
    if (points > 0) await creditPoints(memberId, claimId, points, 'GRANT', reason);
    if (growth > 0) await creditGrowth(memberId, claimId, growth, reason);
  }

  /** The birthday gift (tier's points and coupon), once per member and year, on the birthday itself. */
  async function grantBirthday(memberId: string, at: Date): Promise<boolean> {
    const p = await program();
    const m = await ctx.core.Member.findById(memberId).lean();
    const today = localDate(at, p.timeZone);
    if (!m?.birthday || m.birthday !== today.slice(5)) return false;
    const id = `birthday:${memberId}:${today.slice(0, 4)}`;
    const tier = await tierOf(memberId);
    const gift = p.tiers[tier];
    const claim = { _id: id, memberId, at, points: gift.birthdayPoints };
    const first = await claimOnce(models.LoyaltyClaim, claim);
    const stored = first ? claim : await models.LoyaltyClaim.findById(id).lean();
    if (stored?.points) await creditPoints(memberId, id, stored.points, 'GRANT', `Birthday ${today.slice(0, 4)}`);
    if (gift.birthdayCouponTemplateId) {
      await ctx.coupons.grant({ key: id, memberId, templateId: gift.birthdayCouponTemplateId, reason: 'Birthday gift' });
    }
    return first;
  }

  /** The member's pieces of evidence for `task` that no reward used yet, oldest first. */
  async function unusedEvidence(memberId: string, task: TaskName): Promise<string[]> {
    const pieces = await models.TaskEvidence.find({ memberId, task }, { _id: 1 }).sort({ at: 1, _id: 1 }).lean();
    if (!pieces.length) return [];
    const uses = await findByIds<{ _id: string }>(
      models.LoyaltyClaim,
      pieces.map((e) => `use:${e._id}`),
      { _id: 1 },
    );
    const used = new Set(uses.map((u) => u._id));
    return pieces.map((e) => e._id).filter((id) => !used.has(`use:${id}`));
  }

  /** Claims the evidence for the task claim `claimId`: true when it is (now, or already) that claim's. */
  async function useEvidence(memberId: string, evidenceId: string, claimId: string, at: Date): Promise<boolean> {
    if (await claimOnce(models.LoyaltyClaim, { _id: `use:${evidenceId}`, memberId, at, claimId })) return true;
    const use = await models.LoyaltyClaim.findById(`use:${evidenceId}`).lean();
    return use?.claimId === claimId;
  }

  /**
   * One attempt at a task's period claim. For an evidence task the period claim names its evidence
   * and the evidence's use is a second claim; a period claim whose evidence another period's claim
   * took at the same moment is void, never rewarded, and released ('retry').
   */
  async function attemptTask(memberId: string, task: TaskName, p: LoyaltyProgram, at: Date) {
    const period = taskPeriod(task, at, p);
    const id = `task:${memberId}:${task}:${period}`;
    const reward = p.tasks[task];
    const claim: LoyaltyClaimDoc = { _id: id, memberId, at, points: reward.points, growth: reward.growth };
    const needsEvidence = EVIDENCE_TASKS.includes(task);
    if (needsEvidence && !(await models.LoyaltyClaim.exists({ _id: id }))) {
      // Refused before anything is written when there is nothing to reward.
      const [evidenceId] = await unusedEvidence(memberId, task);
      if (!evidenceId) throw noEvidence(task);
      claim.evidenceId = evidenceId;
    }
    const release = async (c: LoyaltyClaimDoc) => {
      await models.LoyaltyClaim.deleteOne({ _id: c._id, evidenceId: c.evidenceId });
      return 'retry' as const;
    };
    if (!(await claimOnce(models.LoyaltyClaim, { ...claim }))) {
      const stored = await models.LoyaltyClaim.findById(id).lean();
      if (stored?.evidenceId && !(await useEvidence(memberId, stored.evidenceId, id, stored.at))) return release(stored);
      // Finish a claim whose reward a crash interrupted, then refuse the second claim.
      if (stored) await rewardTask(memberId, id, stored.points ?? 0, stored.growth ?? 0, `Task ${task}`);
      throw new AppError('CONFLICT', ONCE_TASKS.includes(task) ? 'This task was already rewarded' : 'This task was already rewarded today');
    }
    if (claim.evidenceId && !(await useEvidence(memberId, claim.evidenceId, id, at))) return release(claim);
    await rewardTask(memberId, id, reward.points, reward.growth, `Task ${task}`);
    return { task, points: reward.points, growth: reward.growth, period };
  }

  /** One piece of evidence (`<task>:<ref>`), recorded once whatever the number of deliveries. */
  const recordEvidence = (
    task: TaskName,
    ref: string,
    what: { postId: string } | { shareId: string },
    memberId: string,
    eventId: string,
    at: string,
  ) => claimOnce(models.TaskEvidence, { _id: `${task}:${ref}`, memberId, task, ...what, eventId, at: new Date(at) });

  return {
    grantBirthday,

    /**
     * Records a published showcase as REVIEW evidence, once per post (a redelivered event, or a
     * second event about the same post, adds nothing). A plain POST is not a review.
     */
    async postPublished(eventId: string, post: EventData<'community.post.published'>): Promise<boolean> {
      if (post.kind !== 'SHOWCASE') return false;
      return recordEvidence('REVIEW', post.postId, { postId: post.postId }, post.memberId, eventId, post.publishedAt);
    },

    /**
     * `community.post.removed`: a showcase removed by moderation before a REVIEW reward used it is
     * no evidence any more. Its use is claimed for the removal (`use:REVIEW:<postId>`, the same
     * claim a reward takes), so a reward racing the removal gets it or the removal does, never both.
     * Evidence already used stays rewarded. Claimed whether or not the published event was handled
     * yet (subjects are not ordered): evidence recorded later is then already used.
     */
    async postRemoved(post: EventData<'community.post.removed'>): Promise<boolean> {
      const evidenceId = `REVIEW:${post.postId}`;
      return claimOnce(models.LoyaltyClaim, {
        _id: `use:${evidenceId}`,
        memberId: post.memberId,
        at: now(),
        claimId: `removed:${post.postId}`,
      });
    },

    /** Records a member's share (`referral.share.created`) as SHARE evidence, once per share. */
    async shareCreated(eventId: string, share: EventData<'referral.share.created'>): Promise<boolean> {
      return recordEvidence('SHARE', share.shareId, { shareId: share.shareId }, share.memberId, eventId, share.sharedAt);
    },

    /** Daily sign-in (签到): once per day; consecutive days make a streak with a bonus every n days. */
    async signIn(viewer: Viewer | null) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const p = await program();
      const at = now();
      const day = localDate(at, p.timeZone);
      const yesterday = localDate(new Date(at.getTime() - DAY_MS), p.timeZone);
      const id = `signin:${memberId}:${day}`;
      const prev = await models.LoyaltyClaim.findById(`signin:${memberId}:${yesterday}`).lean();
      const streak = (prev?.streak ?? 0) + 1;
      const reward = p.tasks.SIGN_IN;
      const bonus = streak % p.signInStreakBonus.days === 0 ? p.signInStreakBonus.points : 0;
      const claim = { _id: id, memberId, at, streak, points: reward.points + bonus, growth: reward.growth };
      const first = await claimOnce(models.LoyaltyClaim, claim);
      const stored = first ? claim : ((await models.LoyaltyClaim.findById(id).lean()) ?? claim);
      // Applied after the claim, under the claim's id as op: a crash in between is finished by the next call.
      await rewardTask(memberId, id, stored.points ?? 0, stored.growth ?? 0, `Sign-in day ${stored.streak}`);
      return { alreadySignedIn: !first, streak: stored.streak ?? 1, points: stored.points ?? 0, day };
    },

    /** Claims a task's reward once per period; the task must be done (profile complete, a paid order, a new showcase). */
    async claimTask(viewer: Viewer | null, task: TaskName) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      if (task === 'SIGN_IN') throw badInput('Sign in with signIn', 'task');
      const p = await program();
      const at = now();
      if (task === 'COMPLETE_PROFILE') {
        const m = await ctx.core.Member.findById(memberId).lean();
        if (!m?.birthday) throw new AppError('CONFLICT', 'Complete your profile (birthday) first');
      }
      if (task === 'FIRST_ORDER') {
        const paid = await models.LoyaltyOrder.exists({ memberId });
        if (!paid) throw new AppError('CONFLICT', 'Place and pay a first order first');
      }
      // Only a race with another period's claim for the same evidence asks for another attempt.
      for (let attempt = 0; attempt < 3; attempt++) {
        const res = await attemptTask(memberId, task, p, at);
        if (res !== 'retry') return res;
      }
      throw noEvidence(task);
    },

    /** Which tasks the member can still claim in their current period. */
    async tasksOf(memberId: string) {
      const p = await program();
      const at = now();
      const tasks = Object.keys(p.tasks) as TaskName[];
      const claimIdOf = (task: TaskName) => {
        const period = taskPeriod(task, at, p);
        return task === 'SIGN_IN' ? `signin:${memberId}:${period}` : `task:${memberId}:${task}:${period}`;
      };
      const claimed = new Set((await findByIds<{ _id: string }>(models.LoyaltyClaim, tasks.map(claimIdOf), { _id: 1 })).map((c) => c._id));
      return tasks.map((task) => ({
        task,
        points: p.tasks[task].points,
        growth: p.tasks[task].growth,
        daily: !ONCE_TASKS.includes(task),
        claimed: claimed.has(claimIdOf(task)),
      }));
    },
  };
}
