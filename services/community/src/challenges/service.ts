import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import {
  AppError,
  BusRequestError,
  appendToLedger,
  badInput,
  claimOnce,
  fromBusError,
  isObjectId,
  ledgerHead,
  notFound,
  outboxRecord,
  paginate,
  replaceById,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  requireViewer,
  text,
  wholeNumber,
  type Bus,
  type Logger,
  type PageArgs,
  type Viewer,
  localDate,
} from '@flywheel/service-kit';
import type { ChallengeDoc, ChallengeModels, CompletionDoc, ProgressEntryDoc, RewardDoc, StandingDoc } from './model';

export const CHALLENGE_LIMITS = {
  title: 60,
  minDays: 1,
  maxDays: 60,
  /** The leaderboard's page at most. */
  leaderboard: 100,
  /** A pending reward is retried by the sweep once it is this old (a live request may still be at it). */
  sweepAfterMs: 30_000,
  sweepBatch: 100,
} as const;

const DAY_MS = 86_400_000;
/** Membership's refusals of a grant: final for the key (template stopped or out, the member's limit). */
const FINAL_REFUSALS = new Set<string>(['BAD_USER_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'OUT_OF_STOCK']);
const conflict = (msg: string, reason: string) => new AppError('CONFLICT', msg, { reason });

/** The calendar day before a YYYY-MM-DD day (calendar arithmetic, the same in every zone). */
export function previousDay(day: string): string {
  return new Date(Date.parse(`${day}T00:00:00Z`) - DAY_MS).toISOString().slice(0, 10);
}

const ISO_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,3})?)?(Z|[+-]\d{2}:\d{2})$/;

/** An ISO-8601 instant with a zone (BAD_USER_INPUT otherwise). */
export function isoTime(raw: string | Date, field: string): Date {
  const at = raw instanceof Date ? raw : ISO_TIME.test(raw) ? new Date(raw) : null;
  if (!at || Number.isNaN(at.getTime())) throw badInput(`${field} must be an ISO-8601 time with a zone`, field);
  return at;
}

/** The next streak and totals after checking in on `day` (pure: the ledger entry's body). */
export function nextProgress(head: Pick<ProgressEntryDoc, 'day' | 'days' | 'streak' | 'longest'> | null, day: string) {
  const streak = head && head.day === previousDay(day) ? head.streak + 1 : 1;
  return { day, days: (head?.days ?? 0) + 1, streak, longest: Math.max(head?.longest ?? 0, streak) };
}

export interface CreateChallengeInput {
  title: string;
  /** ISO-8601. */
  startsAt: string | Date;
  endsAt: string | Date;
  requiredDays: number;
  rewardTemplateId: string;
}

/** A member's progress in a challenge as the API shows it. */
export interface ChallengeProgress {
  challengeId: string;
  memberId: string;
  joined: boolean;
  days: number;
  /** Consecutive days up to today or yesterday (0 once a day was missed). */
  currentStreak: number;
  longestStreak: number;
  lastCheckInDay: string | null;
  completedAt: Date | null;
  reward: CompletionDoc['reward'] | null;
  couponId: string | null;
}

/** A row of the leaderboard. */
export interface ChallengeRank {
  rank: number;
  standing: StandingDoc;
}

export function createChallengeService(deps: { models: ChallengeModels; bus: Bus; logger: Logger; kick: () => void; now: () => Date }) {
  const { models, bus, logger, kick, now } = deps;
  const accountOf = (challengeId: string, memberId: string) => `${challengeId}:${memberId}`;

  async function challengeOrThrow(id: string): Promise<ChallengeDoc> {
    const found = isObjectId(id) ? await models.Challenge.findById(id).lean<ChallengeDoc>() : null;
    if (!found) throw notFound('Challenge');
    return found;
  }

  /** The reward for a completion, once: granted under the completion's key, or refused for good. */
  async function grantReward(c: CompletionDoc, challenge: Pick<ChallengeDoc, 'rewardTemplateId' | 'title'>): Promise<RewardDoc | null> {
    const done = await models.Reward.findById(c._id).lean<RewardDoc>();
    if (done) return done;
    let reward: RewardDoc;
    try {
      const { couponId } = await bus.request('membership.coupon.grant', {
        key: `community:challenge:${c.challengeId}:${c.memberId}`,
        memberId: c.memberId,
        templateId: challenge.rewardTemplateId,
        reason: `Check-in challenge ${challenge.title}`.slice(0, 200),
      });
      reward = { _id: c._id, challengeId: c.challengeId, memberId: c.memberId, at: now(), kind: 'GRANTED', couponId };
    } catch (err) {
      if (!(err instanceof BusRequestError) || !FINAL_REFUSALS.has(err.code)) {
        logger.warn({ err, completionId: c._id }, 'challenge reward not granted yet; the sweep retries');
        return null;
      }
      reward = {
        _id: c._id,
        challengeId: c.challengeId,
        memberId: c.memberId,
        at: now(),
        kind: 'REFUSED',
        code: err.code,
        message: err.message,
      };
    }
    await claimOnce(models.Reward, reward);
    const final = (await models.Reward.findById(c._id).lean<RewardDoc>()) ?? reward;
    await models.Completion.updateOne({ _id: c._id }, { $set: { reward: final.kind } });
    return final;
  }

  /** Completes the member once they reached the required days: the claim (with its event), then the reward. */
  async function complete(challenge: ChallengeDoc, head: ProgressEntryDoc): Promise<CompletionDoc> {
    const id = accountOf(challenge._id, head.memberId);
    const at = head.at;
    const doc: CompletionDoc = {
      _id: id,
      challengeId: challenge._id,
      memberId: head.memberId,
      days: challenge.requiredDays,
      completedAt: at,
      reward: 'PENDING',
      outbox: outboxRecord(
        'community.checkin.completed',
        { challengeId: challenge._id, memberId: head.memberId, days: challenge.requiredDays, completedAt: at.toISOString() },
        randomUUID(),
        at,
      ),
    };
    if (await claimOnce(models.Completion, doc)) {
      kick();
      // Only the claim's winner asks now; a completion left PENDING (no answer, a crash) is the sweep's.
      await grantReward(doc, challenge);
      return doc;
    }
    return (await models.Completion.findById(id).lean<CompletionDoc>()) ?? doc;
  }

  /**
   * Counts `day` on the member's progress ledger (refused when the head already counts it or a
   * later day: a repeat after a crash is a no-op), then the standing and, at N days, the completion.
   */
  async function record(challenge: ChallengeDoc, memberId: string, day: string, at: Date): Promise<void> {
    const account = accountOf(challenge._id, memberId);
    const entry = await appendToLedger(models.Progress, account, (head) =>
      head && head.day >= day ? null : { challengeId: challenge._id, memberId, ...nextProgress(head, day), at },
    );
    const head = entry ?? (await ledgerHead(models.Progress, account));
    if (!head) return;
    const completion = head.days >= challenge.requiredDays ? await complete(challenge, head) : null;
    if (entry || completion)
      await replaceById(models.Standing, {
        _id: account,
        challengeId: challenge._id,
        memberId,
        days: head.days,
        streak: head.streak,
        longest: head.longest,
        seq: head.seq,
        lastAt: head.at,
        completedAt: completion?.completedAt ?? null,
      });
  }

  async function progress(challengeId: string, memberId: string): Promise<ChallengeProgress> {
    const account = accountOf(challengeId, memberId);
    const [challenge, joined, head, completion, reward] = await Promise.all([
      challengeOrThrow(challengeId),
      models.ChallengeJoin.exists({ _id: account }),
      ledgerHead(models.Progress, account),
      models.Completion.findById(account).lean<CompletionDoc>(),
      models.Reward.findById(account).lean<RewardDoc>(),
    ]);
    const today = localDate(now(), challenge.timeZone);
    const current = head && (head.day === today || head.day === previousDay(today)) ? head.streak : 0;
    return {
      challengeId,
      memberId,
      joined: Boolean(joined),
      days: head?.days ?? 0,
      currentStreak: current,
      longestStreak: head?.longest ?? 0,
      lastCheckInDay: head?.day ?? null,
      completedAt: completion?.completedAt ?? null,
      reward: completion?.reward ?? null,
      couponId: reward?.kind === 'GRANTED' ? reward.couponId : null,
    };
  }

  return {
    get: (id: string) => (isObjectId(id) ? models.Challenge.findById(id).lean<ChallengeDoc>() : Promise.resolve(null)),

    list: (args: PageArgs) => paginate(models.Challenge, {}, args),

    /** Staff only. The reward template must exist and still be issued (asked of membership). */
    async createChallenge(viewer: Viewer | null, input: CreateChallengeInput): Promise<ChallengeDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const title = text(input.title, 'title', CHALLENGE_LIMITS.title);
      const requiredDays = wholeNumber(input.requiredDays, 'requiredDays', CHALLENGE_LIMITS.minDays, CHALLENGE_LIMITS.maxDays);
      const startsAt = isoTime(input.startsAt, 'startsAt');
      const endsAt = isoTime(input.endsAt, 'endsAt');
      if (endsAt <= startsAt) throw badInput('endsAt must be after startsAt', 'endsAt');
      if (endsAt <= now()) throw badInput('endsAt must be in the future', 'endsAt');
      const templateId = requireObjectId(input.rewardTemplateId, 'rewardTemplateId');
      // Check-in days are the loyalty program's calendar days: its zone, asked of membership, is
      // kept on the challenge (a later change of the program's zone does not move running days).
      const [t, { timeZone }] = await Promise.all([
        bus.request('membership.coupon.template', { templateId }),
        bus.request('membership.program.describe', {}),
      ]).catch(fromBusError);
      if (!t.active) throw badInput('This coupon template is no longer issued', 'rewardTemplateId');
      // Local days the window touches: at least the required days, or nobody could complete it.
      const windowDays =
        Math.round((Date.parse(localDate(new Date(endsAt.getTime() - 1), timeZone)) - Date.parse(localDate(startsAt, timeZone))) / DAY_MS) +
        1;
      if (windowDays < requiredDays) throw badInput(`The window holds only ${windowDays} check-in days`, 'requiredDays');
      const doc: ChallengeDoc = {
        _id: new Types.ObjectId().toHexString(),
        title,
        startsAt,
        endsAt,
        requiredDays,
        rewardTemplateId: templateId,
        timeZone,
        createdBy: staff.id,
        createdAt: now(),
      };
      await models.Challenge.create(doc);
      return doc;
    },

    /** A member joins (a repeat is a no-op); once the window has ended, CONFLICT. */
    async join(viewer: Viewer | null, challengeId: string): Promise<ChallengeProgress> {
      const member = requireRole(viewer, 'CUSTOMER');
      const challenge = await challengeOrThrow(challengeId);
      if (now() >= challenge.endsAt) throw conflict('This challenge has ended', 'ENDED');
      const joinedAt = now();
      await claimOnce(models.ChallengeJoin, {
        _id: accountOf(challenge._id, member.id),
        challengeId: challenge._id,
        memberId: member.id,
        joinedAt,
      });
      return progress(challenge._id, member.id);
    },

    /**
     * Checks the member in for today (the challenge's zone): not joined FORBIDDEN; outside the
     * window, or a second time the same day, CONFLICT. The check-in id is the claim.
     */
    async checkIn(viewer: Viewer | null, challengeId: string): Promise<ChallengeProgress> {
      const member = requireRole(viewer, 'CUSTOMER');
      const challenge = await challengeOrThrow(challengeId);
      if (!(await models.ChallengeJoin.exists({ _id: accountOf(challenge._id, member.id) })))
        throw new AppError('FORBIDDEN', 'Join the challenge before checking in', { reason: 'NOT_JOINED' });
      const at = now();
      if (at < challenge.startsAt) throw conflict('This challenge has not started', 'NOT_STARTED');
      if (at >= challenge.endsAt) throw conflict('This challenge has ended', 'ENDED');
      const day = localDate(at, challenge.timeZone);
      const won = await claimOnce(models.CheckIn, {
        _id: `${challenge._id}:${member.id}:${day}`,
        challengeId: challenge._id,
        memberId: member.id,
        day,
        at,
      });
      // The loser records too: a no-op unless the winner crashed between its claim and its entry.
      await record(challenge, member.id, day, at);
      if (!won) throw conflict('Already checked in today', 'ALREADY_CHECKED_IN');
      return progress(challenge._id, member.id);
    },

    /** The member themselves and staff. */
    progress(viewer: Viewer | null, challengeId: string, memberId: string | null | undefined): Promise<ChallengeProgress> {
      const who = memberId ?? requireViewer(viewer).id;
      requireSelfOrStaff(viewer, who);
      return progress(challengeId, who);
    },

    /**
     * Top members by days, then earliest completion (then who reached their count first): one
     * indexed read of the standings (one row per member, written from each progress head).
     */
    async leaderboard(viewer: Viewer | null, challengeId: string, first: number | null | undefined): Promise<ChallengeRank[]> {
      requireViewer(viewer);
      const n = wholeNumber(first ?? 20, 'first', 1, CHALLENGE_LIMITS.leaderboard);
      const challenge = await challengeOrThrow(challengeId);
      const rows = await models.Standing.find({ challengeId: challenge._id })
        .sort({ days: -1, completedAt: 1, lastAt: 1, _id: 1 })
        .limit(n)
        .lean<StandingDoc[]>();
      return rows.map((standing, i) => ({ rank: i + 1, standing }));
    },

    /** Retries rewards membership did not answer for, with the same key (it grants one coupon at most). */
    async sweep(at: Date): Promise<Record<string, number>> {
      const pending = await models.Completion.find({
        reward: 'PENDING',
        completedAt: { $lte: new Date(at.getTime() - CHALLENGE_LIMITS.sweepAfterMs) },
      })
        .sort({ completedAt: 1 })
        .limit(CHALLENGE_LIMITS.sweepBatch)
        .lean<CompletionDoc[]>();
      let granted = 0;
      let refused = 0;
      for (const c of pending) {
        const challenge = await models.Challenge.findById(c.challengeId).lean<ChallengeDoc>();
        if (!challenge) continue;
        const r = await grantReward(c, challenge);
        if (r?.kind === 'GRANTED') granted++;
        else if (r?.kind === 'REFUSED') refused++;
      }
      return { pendingRewards: pending.length, granted, refused };
    },
  };
}
export type ChallengeService = ReturnType<typeof createChallengeService>;
