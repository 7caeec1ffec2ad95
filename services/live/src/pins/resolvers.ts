import type { Resolvers } from '../__generated__/resolvers';
import type { PinDoc } from './model';
import type { PinService } from './service';

/** A change as the API shows it; `null` (nothing ever pinned and nothing to unpin) reads as an empty pin now. */
const change = (entry: PinDoc | null, roomId: string, at: Date): PinDoc =>
  entry ?? { _id: `${roomId}:0`, accountId: roomId, seq: 0, productId: null, at, by: '' };

export function pinResolvers(pins: PinService, now: () => Date): Resolvers {
  return {
    Mutation: {
      pinLiveProduct: async (_, { roomId, productId }, { viewer }) => change(await pins.pin(viewer, roomId, productId), roomId, now()),
      unpinLiveProduct: async (_, { roomId }, { viewer }) => change(await pins.unpin(viewer, roomId), roomId, now()),
    },
    LiveRoom: {
      pinned: (r) => pins.current(r._id.toHexString()),
    },
    LivePin: {
      product: (p) => ({ id: p.productId! }),
      pinnedAt: (p) => p.at,
    },
    LivePinChange: {
      pin: (p) => (p.productId ? p : null),
      at: (p) => p.at,
    },
  };
}
