import type { Connection } from 'mongoose';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { createSeriesModels } from './model';
import { seriesResolvers } from './resolvers';
import { createSeriesService, type SeriesService } from './service';

export function createSeriesModule(deps: {
  db: Connection;
  models: Models;
  rooms: LiveService;
  now: () => Date;
}): LiveModule & { series: SeriesService } {
  const models = createSeriesModels(deps.db);
  const series = createSeriesService({ models, rooms: deps.rooms, roomModel: deps.models.LiveRoom, now: deps.now });
  return { name: 'series', series, resolvers: seriesResolvers, sweep: (at) => series.sweep(at) };
}
