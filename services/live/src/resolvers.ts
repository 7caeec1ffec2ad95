import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import { isRoomOperator } from './service';

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    liveRooms: (_, args, { viewer, service }) => service.listLiveRooms(viewer, args),
    liveRoom: (_, { id }, { loaders }) => loaders.liveRoom.load(id),
  },
  Mutation: {
    scheduleLiveRoom: (_, { input }, { viewer, service }) => service.scheduleLiveRoom(viewer, input),
    startLiveRoom: (_, { id }, { viewer, service }) => service.startLiveRoom(viewer, id),
    endLiveRoom: (_, { id }, { viewer, service }) => service.endLiveRoom(viewer, id),
    publishLiveReplay: (_, { input }, { viewer, service }) => service.publishLiveReplay(viewer, input.roomId, input),
  },
  LiveRoom: {
    __resolveReference: (ref, { loaders }) => loaders.liveRoom.load(ref.id),
    id: (r) => r._id.toHexString(),
    hostAccountId: (r, _, { viewer }) => (isRoomOperator(viewer, r) ? (r.hostAccountId ?? null) : null),
    products: (r) => r.productIds.map((id) => ({ id })),
    startedAt: (r) => r.startedAt ?? null,
    endedAt: (r) => r.endedAt ?? null,
    replayUrl: (r) => r.replayUrl ?? null,
    highlights: (r) =>
      (r.highlights ?? []).map((h) => ({
        offsetSeconds: h.offsetSeconds,
        title: h.title,
        product: h.productId ? { id: h.productId } : null,
      })),
  },
};
