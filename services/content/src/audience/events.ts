import type { EventEnvelope } from '@flywheel/events';
import type { AudienceService } from './service';

/**
 * Membership's tier and segment changes → the member's audience. Each is a no-op on a repeat by
 * itself: it is appended only when newer (by `changedAt`) than what the member's ledger head holds,
 * whatever the event id, so a redelivery or an older event arriving late changes nothing.
 */
export function audienceHandlers(audience: AudienceService) {
  return {
    'membership.tier.changed': (env: EventEnvelope<'membership.tier.changed'>) => audience.tierChanged(env.data),
    'membership.segment.changed': (env: EventEnvelope<'membership.segment.changed'>) => audience.segmentChanged(env.data),
  };
}
