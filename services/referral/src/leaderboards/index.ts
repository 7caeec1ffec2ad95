import type { FirstOrderDoc } from '../campaigns/model';
import type { OrderDecisionDoc } from '../distribution/model';
import type { GroupBuyDoc, GroupBuyOutcomeDoc } from '../groupbuy/model';
import type { ModuleDeps, ReferralModule } from '../modules';
import { leaderboardResolvers } from './resolvers';
import { createLeaderboardService, type BoardSources, type LeaderboardService } from './service';

/** Asia/Shanghai, the program's zone: the weeks and months of the boards. */
export const LEADERBOARD_TIME_ZONE = 'Asia/Shanghai';

/**
 * Leaderboards (排行榜): invites converted, group buys completed and distribution sales per week or
 * month, counted from the records the campaigns, groupbuy and distribution modules decide once
 * (their models, compiled by those modules, are read here and never written).
 */
export function createLeaderboardsModule(deps: ModuleDeps): ReferralModule & { boards: LeaderboardService } {
  const sources: BoardSources = {
    firstOrders: deps.db.model<FirstOrderDoc>('InviteFirstOrder'),
    groupOutcomes: deps.db.model<GroupBuyOutcomeDoc>('GroupBuyOutcome'),
    groups: deps.db.model<GroupBuyDoc>('GroupBuy'),
    orderDecisions: deps.db.model<OrderDecisionDoc>('OrderDecision'),
  };
  const boards = createLeaderboardService({ sources, now: deps.now, timeZone: LEADERBOARD_TIME_ZONE });
  return { name: 'leaderboards', boards, resolvers: leaderboardResolvers(boards) };
}
