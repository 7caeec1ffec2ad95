import type { Connection } from 'mongoose';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { CommunityModule } from '../modules';
import { createChallengeModels } from './model';
import { challengeResolvers } from './resolvers';
import { createChallengeService, type ChallengeService } from './service';

/**
 * Check-in challenges (打卡挑战): joins and daily check-ins as unique claims, progress as a ledger per
 * member and challenge, the completion claim carrying `community.checkin.completed`, the coupon
 * reward through `membership.coupon.grant` (the sweep retries one membership did not answer). The
 * check-in days are the loyalty program's local days (`membership.program.describe`).
 */
export function createChallengesModule(deps: {
  db: Connection;
  bus: Bus;
  logger: Logger;
  kick: () => void;
  now: () => Date;
}): CommunityModule & { challenges: ChallengeService } {
  const models = createChallengeModels(deps.db);
  const challenges = createChallengeService({ ...deps, models });
  return {
    name: 'challenges',
    challenges,
    resolvers: challengeResolvers(challenges),
    outboxSources: [models.Completion],
    sweep: (at) => challenges.sweep(at),
  };
}
