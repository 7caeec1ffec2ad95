import type { EventEnvelope } from '@flywheel/events';
import type { MerchandisingService } from './service';

/**
 * Live's room events → the upcoming-live teasers. Each is a no-op on a repeat by itself: it is
 * appended to the room's ledger at most once per op (`<roomId>|scheduled|<scheduledAt>`,
 * `<roomId>|started`, `<roomId>|ended`), whatever the event id.
 */
export function merchandisingHandlers(merch: MerchandisingService) {
  return {
    'live.room.scheduled': (env: EventEnvelope<'live.room.scheduled'>) => merch.roomScheduled(env.data, new Date(env.occurredAt)),
    'live.room.started': (env: EventEnvelope<'live.room.started'>) => merch.roomStarted(env.data, new Date(env.occurredAt)),
    'live.room.ended': (env: EventEnvelope<'live.room.ended'>) => merch.roomEnded(env.data, new Date(env.occurredAt)),
  };
}
