import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Shipping } from './service';

export type EventHandlers = { [S in EventSubject]?: (env: EventEnvelope<S>) => Promise<void> };

/** An erased member's address snapshots leave their orders (idempotent: a repeat finds none left). */
export function shippingHandlers(shipping: Shipping): EventHandlers {
  return {
    'membership.member.erased': async (env) => {
      await shipping.erase(env.data.memberId);
    },
  };
}
