import type { Resolvers } from '../__generated__/resolvers';
import type { LotteryService } from './service';

export function lotteryResolvers(lottery: LotteryService): Resolvers {
  return {
    Query: {
      liveLottery: (_, { id }) => lottery.lottery(id),
    },
    Mutation: {
      createLiveLottery: async (_, { input }, { viewer }) => ({ lottery: await lottery.createLottery(viewer, input), draw: null }),
      drawLiveLottery: (_, { id }, { viewer }) => lottery.drawLottery(viewer, id),
    },
    LiveRoom: {
      lotteries: (r) => lottery.roomLotteries(r._id.toHexString()),
    },
    LiveLottery: {
      id: (v) => v.lottery._id,
      room: async (v, _, { loaders }) => (await loaders.liveRoom.load(v.lottery.roomId))!,
      status: (v) => (v.draw ? 'DRAWN' : 'OPEN'),
      eligibility: (v) => v.lottery.eligibility,
      winnerCount: (v) => v.lottery.winnerCount,
      prizeTemplateId: (v) => v.lottery.prizeTemplateId,
      prizeName: (v) => v.lottery.prizeName,
      commitment: (v) => v.lottery.commitment,
      // The seed stays secret until the draw exists: revealing it earlier would reveal the winners.
      seed: (v) => (v.draw ? v.lottery.seed : null),
      eligibleCount: (v) => v.draw?.eligible.length ?? null,
      eligibleHash: (v) => v.draw?.eligibleHash ?? null,
      eligibleMemberIds: (v) => v.draw?.eligible ?? null,
      winners: async (v) => {
        if (!v.draw) return [];
        const prizes = await lottery.prizes(v.lottery._id);
        return v.draw.winners.map((memberId) => ({ memberId, couponId: prizes.get(memberId)?.couponId ?? null }));
      },
      createdAt: (v) => v.lottery.createdAt,
      drawnAt: (v) => v.draw?.at ?? null,
    },
  };
}
