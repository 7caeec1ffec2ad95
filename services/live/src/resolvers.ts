import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    liveRooms: (_, args, { viewer, service }) => service.listLiveRooms(viewer, args),
    liveRoom: (_, { id }, { loaders }) => loaders.liveRoom.load(id),
  },
  Mutation: {
    scheduleLiveRoom: (_, { input }, { viewer, service }) => service.scheduleLiveRoom(viewer, input),
  },
  LiveRoom: {
    __resolveReference: (ref, { loaders }) => loaders.liveRoom.load(ref.id),
    id: (r) => r._id.toHexString(),
    products: (r) => r.productIds.map((id) => ({ id })),
  },
};
