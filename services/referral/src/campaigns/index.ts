import type { InviteBindingDoc } from '../model';
import type { ModuleDeps, ReferralModule } from '../modules';
import { createCampaignModels } from './model';
import { campaignResolvers } from './resolvers';
import { createCampaignService, type CampaignService } from './service';

export type { CampaignService } from './service';

/** The program's zone: the invite caps' days and months. */
export const CAMPAIGN_TIME_ZONE = 'Asia/Shanghai';

/**
 * Invite campaigns (邀请有礼 / 分享领券): staff's versioned campaign; on the invitee's first paid order
 * a reward pair decided once (GRANTED through the outbox, HELD by a fraud rule for review, REFUSED
 * by a cap); reversed when that order is fully refunded within the after-sales window. Phone hashes
 * from registrations feed the SAME_PHONE rule; the funnel's later stages hang on the shares' types.
 */
export function createCampaignsModule(deps: ModuleDeps & { timeZone?: string }): ReferralModule & { campaigns: CampaignService } {
  const models = createCampaignModels(deps.db);
  const campaigns = createCampaignService({
    models,
    // The core's bindings (compiled by the core's `createModels`): who invited whom, and when.
    bindings: deps.db.model<InviteBindingDoc>('InviteBinding'),
    bus: deps.bus,
    kick: deps.kick,
    now: deps.now,
    logger: deps.logger,
    timeZone: deps.timeZone ?? CAMPAIGN_TIME_ZONE,
  });
  return {
    name: 'campaigns',
    campaigns,
    resolvers: campaignResolvers(campaigns),
    outboxSources: [models.Grant],
    on: {
      'membership.member.registered': (env) => campaigns.memberRegistered(env.data),
      'orders.order.paid': async (env) => {
        await campaigns.orderPaid(env.id, env.data);
      },
      'orders.order.refunded': async (env) => {
        await campaigns.orderRefunded(env.data);
      },
    },
  };
}
