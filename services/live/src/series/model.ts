import { Schema, Types, type Connection } from 'mongoose';

/**
 * A recurring live series (固定档期, "every Wednesday 20:00"): a weekly rule in a time zone. The
 * sweeper creates its rooms `weeksAhead` weeks ahead; each occurrence's room id is derived from the
 * series and the occurrence's time, so the room insert itself is the claim (two replicas create it once).
 */
export interface LiveSeriesDoc {
  _id: Types.ObjectId;
  title: string;
  description: string;
  hostName: string;
  productIds: string[];
  /** ISO weekday: 1 = Monday … 7 = Sunday, in `timeZone`. */
  weekday: number;
  /** Minutes after local midnight (20:00 = 1200). */
  minuteOfDay: number;
  timeZone: string;
  weeksAhead: number;
  /** A stopped series creates no more rooms (the rooms it created stay). */
  active: boolean;
  createdAt: Date;
  createdBy: string;
}

export function createSeriesModels(db: Connection) {
  const seriesSchema = new Schema<LiveSeriesDoc>(
    {
      title: { type: String, required: true },
      description: { type: String, default: '' },
      hostName: { type: String, required: true },
      productIds: { type: [String], default: [] },
      weekday: { type: Number, required: true },
      minuteOfDay: { type: Number, required: true },
      timeZone: { type: String, required: true },
      weeksAhead: { type: Number, required: true },
      active: { type: Boolean, required: true },
      createdAt: { type: Date, required: true },
      createdBy: { type: String, required: true },
    },
    { versionKey: false },
  );
  seriesSchema.index({ active: 1 });
  return { LiveSeries: db.model<LiveSeriesDoc>('LiveSeries', seriesSchema, 'live_series') };
}
export type SeriesModels = ReturnType<typeof createSeriesModels>;
