import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';

/** A check-in challenge (打卡挑战) staff created. Immutable. */
export interface ChallengeDoc {
  _id: string;
  title: string;
  startsAt: Date;
  endsAt: Date;
  /** Check-in days that complete the challenge (1–60). */
  requiredDays: number;
  /** The membership coupon template granted on completion. */
  rewardTemplateId: string;
  /** The IANA zone whose calendar days are the check-in days, fixed when the challenge is created. */
  timeZone: string;
  createdBy: string;
  createdAt: Date;
}

/** A member joined a challenge: `_id = challengeId:memberId` is the claim. */
export interface ChallengeJoinDoc {
  _id: string;
  challengeId: string;
  memberId: string;
  joinedAt: Date;
}

/** One check-in: `_id = challengeId:memberId:yyyy-mm-dd` is the claim (once per local day). */
export interface CheckInDoc {
  _id: string;
  challengeId: string;
  memberId: string;
  day: string;
  at: Date;
}

/**
 * A member's progress in a challenge, an append-only ledger per `challengeId:memberId` (one entry
 * per counted day, carrying the running totals): the head is the member's current progress.
 */
export interface ProgressEntryDoc extends LedgerEntry {
  challengeId: string;
  memberId: string;
  /** The local day this entry counted. */
  day: string;
  /** Days checked in so far. */
  days: number;
  /** Consecutive days ending with `day`. */
  streak: number;
  longest: number;
  at: Date;
}

/**
 * The member completed the challenge: `_id = challengeId:memberId` is the completion claim, and the
 * insert carries `community.checkin.completed` in its outbox. `reward` is a projection of the grant
 * (PENDING until the reward record exists) for the sweep; the reward record decides.
 */
export type CompletionDoc = {
  _id: string;
  challengeId: string;
  memberId: string;
  days: number;
  completedAt: Date;
  reward: 'PENDING' | 'GRANTED' | 'REFUSED';
  outbox?: OutboxRecord;
};

/** The reward's outcome for a completion (`_id` = the completion id): the coupon, or membership's final refusal. */
export type RewardDoc = { _id: string; challengeId: string; memberId: string; at: Date } & (
  { kind: 'GRANTED'; couponId: string } | { kind: 'REFUSED'; code: string; message: string }
);

/**
 * The leaderboard's read model: one row per member and challenge, rewritten from each new progress
 * head (a projection, last writer wins; rebuilt from the ledger, never deciding anything).
 */
export interface StandingDoc {
  _id: string;
  challengeId: string;
  memberId: string;
  days: number;
  streak: number;
  longest: number;
  /** The progress entry this row was written from. */
  seq: number;
  /** When the member reached their current day count (the tie-break among members not completed). */
  lastAt: Date;
  completedAt: Date | null;
}

export function createChallengeModels(db: Connection) {
  const challenge = new Schema<ChallengeDoc>(
    {
      _id: String,
      title: { type: String, required: true },
      startsAt: { type: Date, required: true },
      endsAt: { type: Date, required: true },
      requiredDays: { type: Number, required: true },
      rewardTemplateId: { type: String, required: true },
      timeZone: { type: String, required: true },
      createdBy: { type: String, required: true },
      createdAt: { type: Date, required: true },
    },
    { versionKey: false },
  );

  const join = new Schema<ChallengeJoinDoc>(
    { _id: String, challengeId: { type: String, required: true }, memberId: { type: String, required: true }, joinedAt: Date },
    { versionKey: false },
  );

  const checkIn = new Schema<CheckInDoc>(
    { _id: String, challengeId: String, memberId: String, day: String, at: Date },
    { versionKey: false },
  );

  const progress = new Schema<ProgressEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      challengeId: String,
      memberId: String,
      day: String,
      days: Number,
      streak: Number,
      longest: Number,
      at: Date,
    },
    { versionKey: false },
  );
  for (const ix of ledgerIndexes) progress.index(ix, { unique: true });

  const completion = new Schema<CompletionDoc>(
    {
      _id: String,
      challengeId: String,
      memberId: String,
      days: Number,
      completedAt: Date,
      reward: { type: String, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  completion.index({ reward: 1, completedAt: 1 });

  const reward = new Schema(
    { _id: String, challengeId: String, memberId: String, at: Date, kind: String, couponId: String, code: String, message: String },
    { versionKey: false },
  );

  const standing = new Schema<StandingDoc>(
    {
      _id: String,
      challengeId: { type: String, required: true },
      memberId: String,
      days: Number,
      streak: Number,
      longest: Number,
      seq: Number,
      lastAt: Date,
      completedAt: { type: Date, default: null },
    },
    { versionKey: false },
  );
  standing.index({ challengeId: 1, days: -1, completedAt: 1, lastAt: 1 });

  return {
    Challenge: db.model<ChallengeDoc>('Challenge', challenge, 'challenges'),
    ChallengeJoin: db.model<ChallengeJoinDoc>('ChallengeJoin', join, 'challenge_joins'),
    CheckIn: db.model<CheckInDoc>('CheckIn', checkIn, 'challenge_checkins'),
    Progress: db.model<ProgressEntryDoc>('ChallengeProgress', progress, 'challenge_progress'),
    Completion: db.model<CompletionDoc>('ChallengeCompletion', completion, 'challenge_completions'),
    Reward: db.model<RewardDoc>('ChallengeReward', reward, 'challenge_rewards'),
    Standing: db.model<StandingDoc>('ChallengeStanding', standing, 'challenge_standings'),
  };
}
export type ChallengeModels = ReturnType<typeof createChallengeModels>;
