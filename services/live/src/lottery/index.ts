import type { Connection } from 'mongoose';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { lotteryHandlers } from './events';
import { createLotteryModels, type ParticipationKind } from './model';
import { lotteryResolvers } from './resolvers';
import { createLotteryService, type LotteryService } from './service';

export type { ParticipationKind };
export { lotteryWinners, lotteryCommitment, eligibleListHash } from './service';

/**
 * Verifiable live lotteries (commit to a seed, draw once, reveal) and the room participation they
 * draw from. `recordParticipation` is for the modules that see members take part (comments,
 * likes); purchases come from `orders.order.paid` here.
 */
export function createLotteryModule(deps: {
  db: Connection;
  bus: Bus;
  logger: Logger;
  models: Models;
  rooms: LiveService;
  now: () => Date;
  /** Tells the room's live feed about a lottery (`lottery:<lotteryId>`) after it was created or drawn. */
  announce: (roomId: string, feedId: string) => void;
}): LiveModule & {
  lottery: LotteryService;
  recordParticipation: (roomId: string, memberId: string, kind: ParticipationKind) => Promise<void>;
} {
  const models = createLotteryModels(deps.db);
  const lottery = createLotteryService({ ...deps, models, core: deps.models });
  return {
    name: 'lottery',
    lottery,
    recordParticipation: (roomId, memberId, kind) => lottery.recordParticipation(roomId, memberId, kind),
    resolvers: lotteryResolvers(lottery),
    on: lotteryHandlers(lottery),
    sweep: () => lottery.sweep(),
  };
}
