import type { ModuleDeps, ReferralModule } from '../modules';
import { createShareModels } from './model';
import { shareResolvers } from './resolvers';
import { createShareService, type ShareService } from './service';

export { SHARE_LIMITS, type ShareService } from './service';

/** Asia/Shanghai, the program's zone: a member's share day. */
export const DEFAULT_SHARE_TIME_ZONE = 'Asia/Shanghai';

/**
 * Shares (分享): the share record carrying `referral.share.created` (membership rewards the SHARE
 * task against it), the daily quota as slot claims, visitors' clicks as claims per share. Issue 15's
 * share-for-coupon, group buy, bargain and distribution grow next to it as modules of their own.
 */
export function createSharesModule(deps: ModuleDeps & { timeZone?: string }): ReferralModule & { shares: ShareService } {
  const models = createShareModels(deps.db);
  const shares = createShareService({
    models,
    issueInviteCode: (memberId) => deps.invites.issueInviteCode(memberId),
    kick: deps.kick,
    now: deps.now,
    timeZone: deps.timeZone ?? DEFAULT_SHARE_TIME_ZONE,
  });
  return {
    name: 'shares',
    shares,
    resolvers: shareResolvers(shares),
    outboxSources: [models.Share],
  };
}
