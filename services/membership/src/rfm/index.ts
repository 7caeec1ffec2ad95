import type { MembershipModule, ModuleDeps } from '../modules';
import { createRfmResolvers } from './resolvers';
import { createRfmService, type RfmService } from './service';

export type { RfmService } from './service';

/**
 * RFM segmentation (用户分层): order events move each member's metrics ledger, every change of
 * segment is a history entry that carries `membership.segment.changed`, and the sweep re-places
 * members as recency decays.
 */
export function createRfmModule(deps: ModuleDeps): MembershipModule & { rfm: RfmService } {
  const rfm = createRfmService(deps);
  return {
    name: 'rfm',
    rfm,
    resolvers: createRfmResolvers(rfm),
    on: {
      'orders.order.paid': rfm.onPaid,
      'orders.order.refunded': rfm.onRefunded,
      'membership.member.registered': rfm.onRegistered,
    },
    outboxSources: [rfm.models.RfmSegmentEntry],
    sweep: rfm.sweep,
  };
}
