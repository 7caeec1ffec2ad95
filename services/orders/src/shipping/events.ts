import type { EventHandlers } from '@flywheel/service-kit';
import type { Shipping } from './service';

export type { EventHandlers };

/** An erased member's address snapshots leave their orders (idempotent: a repeat finds none left). */
export function shippingHandlers(shipping: Shipping): EventHandlers {
  return {
    'membership.member.erased': async (env) => {
      await shipping.erase(env.data.memberId);
    },
  };
}
