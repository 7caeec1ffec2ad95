import type { Resolvers } from '../__generated__/resolvers';

export const reminderResolvers: Resolvers = {
  Mutation: {
    subscribeLiveRoomReminder: (_, { roomId }, { viewer, reminders }) => reminders.subscribe(viewer, roomId),
    unsubscribeLiveRoomReminder: async (_, { roomId }, { viewer, reminders, loaders }) => {
      await reminders.unsubscribe(viewer, roomId);
      return (await loaders.liveRoom.load(roomId))!;
    },
  },
  LiveRoom: {
    reminderSubscribed: (r, _, { viewer, reminders }) => reminders.isSubscribed(viewer, r._id.toHexString()),
  },
};
