import { createHash, createHmac, randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData } from '@flywheel/events';
import {
  AppError,
  badInput,
  claimOnce,
  isObjectId,
  notFound,
  wholeNumber,
  type Bus,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { LiveService } from '../service';
import { couponTemplate, grantCoupon, requireOperator, requireRoom } from '../offers/service';
import type { Models } from '../model';
import type { LotteryDoc, LotteryDrawDoc, LotteryEligibility, LotteryModels, ParticipationKind } from './model';

export const LOTTERY_LIMITS = {
  /** Winners a lottery may have. */
  winners: 100,
  /** Draws whose prizes the sweep retries per pass. */
  sweepBatch: 50,
} as const;

const KINDS: Record<LotteryEligibility, ParticipationKind[]> = {
  COMMENTED: ['COMMENTED'],
  LIKED: ['LIKED'],
  BOUGHT: ['BOUGHT'],
  ANY: ['COMMENTED', 'LIKED', 'BOUGHT'],
};

const sha256Hex = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

/** The commitment published before the draw: SHA-256 of the seed's 32 bytes, hex. */
export const lotteryCommitment = (seedHex: string) => sha256Hex(Buffer.from(seedHex, 'hex'));

/** The eligible list's fingerprint: SHA-256 hex of the ids (sorted, unique) joined by "\n" (UTF-8). */
export const eligibleListHash = (ids: readonly string[]) => sha256Hex(sortedUnique(ids).join('\n'));

/** Ids sorted by UTF-16 code units (JavaScript's default sort; member ids are ASCII), duplicates dropped. */
function sortedUnique(ids: readonly string[]): string[] {
  return [...new Set(ids)].sort();
}

/**
 * The winners of a lottery, recomputable by anyone from the revealed seed and the eligible list:
 *
 * 1. the list is sorted (UTF-16 code units) and de-duplicated; `k = min(count, list length)`;
 * 2. with a counter `c` from 0: `h = HMAC-SHA256(key = the seed's 32 bytes, message = c as 4
 *    bytes big-endian)`, `c += 1`; `x` = the first 4 bytes of `h` as an unsigned big-endian integer;
 * 3. with `m` ids left, `x` is used only if `x < floor(2^32 / m) * m` (rejection sampling: no
 *    modulo bias); then the id at index `x mod m` wins and leaves the list; otherwise draw again;
 * 4. repeat until `k` winners, listed in draw order.
 */
export function lotteryWinners(seedHex: string, eligibleIds: readonly string[], count: number): string[] {
  if (!/^[0-9a-f]{64}$/i.test(seedHex)) throw new Error('the seed is 32 bytes of hex');
  const key = Buffer.from(seedHex, 'hex');
  const left = sortedUnique(eligibleIds);
  const k = Math.max(0, Math.min(Math.floor(count), left.length));
  const winners: string[] = [];
  const message = Buffer.alloc(4);
  for (let counter = 0; winners.length < k; counter++) {
    if (counter > 0xffffffff) throw new Error('counter exhausted');
    message.writeUInt32BE(counter, 0);
    const x = createHmac('sha256', key).update(message).digest().readUInt32BE(0);
    const m = left.length;
    if (x >= Math.floor(2 ** 32 / m) * m) continue;
    winners.push(left.splice(x % m, 1)[0]!);
  }
  return winners;
}

export interface CreateLotteryInput {
  roomId: string;
  prizeTemplateId: string;
  winnerCount: number;
  eligibility: LotteryEligibility;
}

/** What a lottery shows: its document and, once drawn, the draw and prizes settled so far. */
export interface LotteryView {
  lottery: LotteryDoc;
  draw: LotteryDrawDoc | null;
}

const conflict = (msg: string) => new AppError('CONFLICT', msg);

export function createLotteryService(deps: {
  models: LotteryModels;
  core: Models;
  rooms: LiveService;
  bus: Bus;
  now: () => Date;
  logger: Logger;
  announce: (roomId: string, feedId: string) => void;
}) {
  const { models, rooms, bus, now, logger } = deps;

  async function lotteryOrThrow(id: string): Promise<LotteryDoc> {
    const lottery = await models.Lottery.findById(id).lean<LotteryDoc>();
    if (!lottery) throw notFound('Lottery');
    return lottery;
  }

  /** The eligible members of a room now: distinct ids with a participation of the kinds, sorted. */
  async function eligibleNow(roomId: string, eligibility: LotteryEligibility): Promise<string[]> {
    const docs = await models.Participation.find({ roomId, kind: { $in: KINDS[eligibility] } }, { memberId: 1 }).lean();
    return sortedUnique(docs.map((d) => d.memberId));
  }

  /**
   * Grants each winner's prize once (`live:lottery:<id>:<memberId>` at membership, and the grant
   * record here). A winner whose grant failed for a passing reason (membership down) stays
   * unsettled for the sweep; a refusal (template stopped or run out) is settled as refused.
   * Returns whether every winner is settled.
   */
  async function grantPrizes(lottery: LotteryDoc, draw: LotteryDrawDoc): Promise<boolean> {
    let settled = true;
    for (const memberId of draw.winners) {
      const _id = `${lottery._id}:${memberId}`;
      if (await models.LotteryGrant.exists({ _id })) continue;
      const result = await grantCoupon(bus, {
        key: `live:lottery:${lottery._id}:${memberId}`,
        memberId,
        templateId: lottery.prizeTemplateId,
        reason: `Live lottery ${lottery._id}`,
      });
      if (result.kind === 'RETRY') {
        // Membership is not answering: the rest would wait out the same timeout; the sweep retries.
        logger.warn({ lotteryId: lottery._id, memberId, err: result.error }, 'lottery prize not granted yet; the sweep retries');
        settled = false;
        break;
      }
      await claimOnce(models.LotteryGrant, {
        _id,
        lotteryId: lottery._id,
        memberId,
        couponId: result.kind === 'GRANTED' ? result.couponId : null,
        refused: result.kind === 'REFUSED' ? result.code : null,
        at: now(),
      });
    }
    if (settled && draw.grantsPending) await models.LotteryDraw.updateOne({ _id: draw._id }, { $set: { grantsPending: false } });
    return settled;
  }

  return {
    /**
     * Records that a member took part in a room (commented, liked, bought): idempotent, the
     * unique `${roomId}:${memberId}:${kind}` makes a repeat a no-op.
     */
    async recordParticipation(roomId: string, memberId: string, kind: ParticipationKind): Promise<void> {
      if (!roomId || !memberId || !KINDS[kind]) throw new Error(`invalid participation ${roomId}/${memberId}/${kind}`);
      await claimOnce(models.Participation, { _id: `${roomId}:${memberId}:${kind}`, roomId, memberId, kind, at: now() });
    },

    /** A paid order from a live room makes its member a buyer there (BOUGHT); other sources are ignored. */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      if (data.source.kind !== 'LIVE' || !isObjectId(data.source.roomId)) return;
      await claimOnce(models.Participation, {
        _id: `${data.source.roomId}:${data.memberId}:BOUGHT`,
        roomId: data.source.roomId,
        memberId: data.memberId,
        kind: 'BOUGHT',
        at: new Date(data.paidAt),
      });
    },

    /**
     * An operator creates a lottery for a LIVE room: the prize template is checked at membership
     * (unknown NOT_FOUND, no longer issued BAD_USER_INPUT), then 32 random bytes are drawn as the
     * seed and only their SHA-256 is shown until the draw.
     */
    async createLottery(viewer: Viewer | null, input: CreateLotteryInput): Promise<LotteryDoc> {
      const operator = requireOperator(viewer);
      const winnerCount = wholeNumber(input.winnerCount, 'winnerCount', 1, LOTTERY_LIMITS.winners);
      if (!KINDS[input.eligibility]) throw badInput('Unknown eligibility', 'eligibility');
      if (!isObjectId(input.prizeTemplateId)) throw notFound('Coupon template');
      const room = await requireRoom(deps.core, input.roomId, viewer);
      const status = await rooms.statusOf(input.roomId);
      if (status !== 'LIVE') throw conflict(`The room is ${status}: a lottery is created while it is LIVE`);
      const template = await couponTemplate(bus, input.prizeTemplateId);
      const seed = randomBytes(32).toString('hex');
      const doc: LotteryDoc = {
        _id: new Types.ObjectId().toHexString(),
        roomId: room,
        prizeTemplateId: template.templateId,
        prizeName: template.name,
        winnerCount,
        eligibility: input.eligibility,
        seed,
        commitment: lotteryCommitment(seed),
        createdBy: operator.id,
        createdAt: now(),
        drawnAt: null,
      };
      await models.Lottery.create(doc);
      deps.announce(doc.roomId, `lottery:${doc._id}`);
      return doc;
    },

    /**
     * Draws once: the eligible list is read and frozen, the winners derived from the seed
     * (`lotteryWinners`), and the draw inserted under the lottery's id — a second draw (or the
     * loser of two at once) is CONFLICT. Nobody eligible is CONFLICT and draws nothing. Prizes are
     * granted after; the sweep retries any membership could not take then.
     */
    async drawLottery(viewer: Viewer | null, id: string): Promise<LotteryView> {
      const operator = requireOperator(viewer);
      const lottery = await lotteryOrThrow(id);
      await requireRoom(deps.core, lottery.roomId, viewer);
      if (await models.LotteryDraw.exists({ _id: id })) throw conflict('This lottery was already drawn');
      const eligible = await eligibleNow(lottery.roomId, lottery.eligibility);
      if (eligible.length === 0) throw conflict('Nobody is eligible yet: nothing was drawn');
      const draw: LotteryDrawDoc = {
        _id: id,
        roomId: lottery.roomId,
        eligible,
        eligibleHash: eligibleListHash(eligible),
        winners: lotteryWinners(lottery.seed, eligible, lottery.winnerCount),
        by: operator.id,
        at: now(),
        grantsPending: true,
      };
      if (!(await claimOnce(models.LotteryDraw, draw as unknown as Record<string, unknown>))) {
        throw conflict('This lottery was already drawn');
      }
      await models.Lottery.updateOne({ _id: id }, { $set: { drawnAt: draw.at } });
      deps.announce(lottery.roomId, `lottery:${id}`);
      await grantPrizes(lottery, draw);
      return { lottery: { ...lottery, drawnAt: draw.at }, draw };
    },

    async lottery(id: string): Promise<LotteryView | null> {
      const lottery = await models.Lottery.findById(id).lean<LotteryDoc>();
      if (!lottery) return null;
      return { lottery, draw: await models.LotteryDraw.findById(id).lean<LotteryDrawDoc>() };
    },

    /** A room's lotteries, newest first. */
    async roomLotteries(roomId: string): Promise<LotteryView[]> {
      const lotteries = await models.Lottery.find({ roomId }).sort({ createdAt: -1 }).limit(100).lean<LotteryDoc[]>();
      const draws = await models.LotteryDraw.find({ _id: { $in: lotteries.map((l) => l._id) } }).lean<LotteryDrawDoc[]>();
      const byId = new Map(draws.map((d) => [d._id, d]));
      return lotteries.map((lottery) => ({ lottery, draw: byId.get(lottery._id) ?? null }));
    },

    /** Winners' prizes as settled so far: the coupon id, or null (refused, or not granted yet). */
    async prizes(lotteryId: string): Promise<Map<string, { couponId: string | null; refused: string | null }>> {
      const grants = await models.LotteryGrant.find({ lotteryId }).lean();
      return new Map(grants.map((g) => [g.memberId, { couponId: g.couponId, refused: g.refused }]));
    },

    /** Retries the prizes of draws membership could not grant at the time. */
    async sweep(): Promise<Record<string, number>> {
      const pending = await models.LotteryDraw.find({ grantsPending: true }).limit(LOTTERY_LIMITS.sweepBatch).lean<LotteryDrawDoc[]>();
      let settled = 0;
      for (const draw of pending) {
        const lottery = await models.Lottery.findById(draw._id).lean<LotteryDoc>();
        if (lottery && (await grantPrizes(lottery, draw))) settled++;
      }
      return { lotteryGrantsSettled: settled };
    },
  };
}
export type LotteryService = ReturnType<typeof createLotteryService>;
