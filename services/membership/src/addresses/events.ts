import type { Bus } from '@flywheel/service-kit';
import type { EventHandlers } from '../modules';
import type { AddressService } from './service';

/** Checkout asks for the address an order ships to; membership answers for the member's own only. */
export function replyToCheckouts(bus: Bus, addresses: AddressService): void {
  bus.reply('membership.address.snapshot', (req) => addresses.snapshot(req.memberId, req.addressId));
}

/** An erased member's addresses go (idempotent: a redelivery deletes nothing more). */
export function addressHandlers(addresses: AddressService): EventHandlers {
  return {
    'membership.member.erased': async (env) => {
      await addresses.erase(env.data.memberId);
    },
  };
}
