import { Schema, type Connection } from 'mongoose';

export type ParticipationKind = 'COMMENTED' | 'LIKED' | 'BOUGHT';
export type LotteryEligibility = ParticipationKind | 'ANY';

/**
 * That a member took part in a room in one way (`_id` = `${roomId}:${memberId}:${kind}`): the
 * unique id makes recording it again a no-op. A lottery's eligible list is read from these.
 */
export interface ParticipationDoc {
  _id: string;
  roomId: string;
  memberId: string;
  kind: ParticipationKind;
  at: Date;
}

/**
 * A lottery (抽奖) of a room. The seed is drawn at creation and kept secret until the draw; only
 * its SHA-256 (`commitment`) is shown before. Immutable but for the projection fields below.
 */
export interface LotteryDoc {
  _id: string;
  roomId: string;
  /** The membership coupon template each winner is granted, and its name when the lottery was made. */
  prizeTemplateId: string;
  prizeName: string;
  winnerCount: number;
  eligibility: LotteryEligibility;
  /** 32 random bytes, hex; revealed once drawn. */
  seed: string;
  /** SHA-256 of the seed's bytes, hex: published from creation. */
  commitment: string;
  createdBy: string;
  createdAt: Date;
  /** Projection of the draw (`live_lottery_draws`); decisions read the draw, never this. */
  drawnAt?: Date | null;
}

/**
 * The draw of a lottery (`_id` = the lottery id): inserted once with its whole result, so a second
 * draw is refused by the unique id. `grantsPending` is a projection for the sweep (prizes still to
 * grant), cleared when every winner's grant is settled.
 */
export interface LotteryDrawDoc {
  _id: string;
  roomId: string;
  /** The eligible members at the draw, sorted (the input of `lotteryWinners`). */
  eligible: string[];
  /** SHA-256 hex of the eligible ids joined by "\n". */
  eligibleHash: string;
  winners: string[];
  by: string;
  at: Date;
  grantsPending: boolean;
}

/**
 * A winner's prize, settled once (`_id` = `${lotteryId}:${memberId}`): the coupon granted, or the
 * membership refusal that makes retrying pointless (the template stopped or ran out).
 */
export interface LotteryGrantDoc {
  _id: string;
  lotteryId: string;
  memberId: string;
  couponId: string | null;
  refused: string | null;
  at: Date;
}

export function createLotteryModels(db: Connection) {
  const participationSchema = new Schema<ParticipationDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      memberId: { type: String, required: true },
      kind: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  participationSchema.index({ roomId: 1, kind: 1 });

  const lotterySchema = new Schema<LotteryDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      prizeTemplateId: { type: String, required: true },
      prizeName: { type: String, required: true },
      winnerCount: { type: Number, required: true },
      eligibility: { type: String, required: true },
      seed: { type: String, required: true },
      commitment: { type: String, required: true },
      createdBy: { type: String, required: true },
      createdAt: { type: Date, required: true },
      drawnAt: { type: Date, default: null },
    },
    { versionKey: false },
  );
  lotterySchema.index({ roomId: 1, createdAt: -1 });

  const drawSchema = new Schema<LotteryDrawDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      eligible: { type: [String], default: [] },
      eligibleHash: { type: String, required: true },
      winners: { type: [String], default: [] },
      by: { type: String, required: true },
      at: { type: Date, required: true },
      grantsPending: { type: Boolean, required: true },
    },
    { versionKey: false },
  );
  drawSchema.index({ grantsPending: 1 });

  const grantSchema = new Schema<LotteryGrantDoc>(
    {
      _id: String,
      lotteryId: { type: String, required: true },
      memberId: { type: String, required: true },
      couponId: { type: String, default: null },
      refused: { type: String, default: null },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );

  return {
    Participation: db.model<ParticipationDoc>('LiveParticipation', participationSchema, 'live_participations'),
    Lottery: db.model<LotteryDoc>('LiveLottery', lotterySchema, 'live_lotteries'),
    LotteryDraw: db.model<LotteryDrawDoc>('LiveLotteryDraw', drawSchema, 'live_lottery_draws'),
    LotteryGrant: db.model<LotteryGrantDoc>('LiveLotteryGrant', grantSchema, 'live_lottery_grants'),
  };
}
export type LotteryModels = ReturnType<typeof createLotteryModels>;
