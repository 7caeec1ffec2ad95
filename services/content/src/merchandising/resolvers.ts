import type { Resolvers } from '../__generated__/resolvers';
import type { MerchandisingService } from './service';

export function merchandisingResolvers(merch: MerchandisingService): Resolvers {
  return {
    Query: {
      navigation: (_, { menu }) => merch.menu(menu),
      homeBanners: (_, { allAudiences }, { viewer }) => merch.homeBanners(viewer, allAudiences),
      homeBannerSet: (_, __, { viewer }) => merch.bannerSet(viewer),
      activities: (_, { status }) => merch.activities(status),
      activity: (_, { id }) => merch.activity(id),
      upcomingLiveRooms: (_, { first }) => merch.upcomingLiveRooms(first),
    },
    Mutation: {
      saveMenu: (_, { input }, { viewer }) => merch.saveMenu(viewer, input),
      saveHomeBanners: (_, { input }, { viewer }) => merch.saveBanners(viewer, input),
      createActivity: (_, { input }, { viewer }) => merch.createActivity(viewer, input),
      updateActivity: (_, { input }, { viewer }) => merch.updateActivity(viewer, input.activityId, input.expectedVersion, input.activity),
    },
    Activity: {
      __resolveReference: (ref) => merch.activity(ref.id),
      id: (a) => a._id,
    },
  };
}
