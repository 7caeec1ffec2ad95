import type { Resolvers } from '../__generated__/resolvers';

const pad = (n: number) => String(n).padStart(2, '0');

export const seriesResolvers: Resolvers = {
  Query: {
    liveSeries: (_, { id }, { seriesLoaders }) => seriesLoaders.liveSeries.load(id),
    liveSeriesList: (_, args, { series }) => series.listLiveSeries(args),
  },
  Mutation: {
    createLiveSeries: (_, { input }, { viewer, series }) => series.createLiveSeries(viewer, input),
    stopLiveSeries: (_, { id }, { viewer, series }) => series.stopLiveSeries(viewer, id),
  },
  LiveSeries: {
    id: (s) => s._id.toHexString(),
    time: (s) => `${pad(Math.floor(s.minuteOfDay / 60))}:${pad(s.minuteOfDay % 60)}`,
    upcomingRooms: (s, _, { series }) => series.upcomingRooms(s),
  },
  LiveRoom: {
    series: (r, _, { seriesLoaders }) => (r.seriesId ? seriesLoaders.liveSeries.load(r.seriesId) : null),
  },
};
