import { Types } from 'mongoose';
import {
  badInput,
  byIdLoader,
  findByIds,
  isObjectId,
  notFound,
  paginate,
  requireRole,
  sha256,
  text,
  wholeNumber,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { LiveRoomDoc, Models } from '../model';
import { newRoomDoc, roomFields, type LiveService, type RoomFields } from '../service';
import type { LiveSeriesDoc, SeriesModels } from './model';

export const SERIES_LIMITS = {
  /** How many weeks of rooms a series keeps created ahead. */
  weeksAhead: { min: 1, max: 12, default: 4 },
} as const;

/** Time zones a series may be set in, with their offset from UTC in minutes (no daylight saving in these). */
export const SERIES_TIME_ZONES: Record<string, number> = { 'Asia/Shanghai': 480 };

const WEEK_MS = 7 * 86_400_000;

export interface CreateLiveSeriesInput extends RoomFields {
  weekday: number;
  /** "HH:MM", 24-hour, local to `timeZone`. */
  time: string;
  timeZone?: string | null;
  weeksAhead?: number | null;
}

/** The occurrences of a weekly rule strictly after `after` and at most `weeks` weeks after it, in UTC. */
export function occurrences(rule: Pick<LiveSeriesDoc, 'weekday' | 'minuteOfDay' | 'timeZone'>, after: Date, weeks: number): Date[] {
  const offsetMs = (SERIES_TIME_ZONES[rule.timeZone] ?? 0) * 60_000;
  // Local wall-clock time as if it were UTC, so getUTC* read the local calendar.
  const local = new Date(after.getTime() + offsetMs);
  const isoWeekday = ((local.getUTCDay() + 6) % 7) + 1;
  const midnight = Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate());
  let first = midnight + ((rule.weekday - isoWeekday + 7) % 7) * 86_400_000 + rule.minuteOfDay * 60_000 - offsetMs;
  if (first <= after.getTime()) first += WEEK_MS;
  const out: Date[] = [];
  for (let t = first; t <= after.getTime() + weeks * WEEK_MS; t += WEEK_MS) out.push(new Date(t));
  return out;
}

/**
 * The room id of a series' occurrence: the same on every replica, so the room insert is the claim.
 * An ObjectId whose time part is the occurrence's (lists ordered by id keep a series' rooms in
 * date order) and whose rest is a hash of the series and the time.
 */
export function occurrenceRoomId(seriesId: string, at: Date): Types.ObjectId {
  const seconds = Math.floor(at.getTime() / 1000)
    .toString(16)
    .padStart(8, '0');
  return new Types.ObjectId(seconds + sha256(`live-series\0${seriesId}\0${at.toISOString()}`).slice(0, 16));
}

export function createSeriesService(deps: { models: SeriesModels; rooms: LiveService; roomModel: Models['LiveRoom']; now: () => Date }) {
  const { models, rooms, now } = deps;

  /** Creates the series' rooms of the next `weeksAhead` weeks that do not exist yet; returns how many this call created. */
  async function fill(series: LiveSeriesDoc, at: Date): Promise<number> {
    if (!series.active) return 0;
    const seriesId = series._id.toHexString();
    const fields = { title: series.title, description: series.description, hostName: series.hostName, productIds: series.productIds };
    let created = 0;
    for (const when of occurrences(series, at, series.weeksAhead)) {
      if (await rooms.createRoomOnce(newRoomDoc(occurrenceRoomId(seriesId, when), fields, when, at, seriesId))) created++;
    }
    return created;
  }

  return {
    async createLiveSeries(viewer: Viewer | null, input: CreateLiveSeriesInput): Promise<LiveSeriesDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const fields = roomFields(input);
      const weekday = wholeNumber(input.weekday, 'weekday', 1, 7);
      const time = text(input.time, 'time', 5);
      const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(time);
      if (!m) throw badInput('time must be HH:MM (00:00 to 23:59)', 'time');
      const timeZone = input.timeZone ?? 'Asia/Shanghai';
      if (!(timeZone in SERIES_TIME_ZONES))
        throw badInput(`timeZone must be one of ${Object.keys(SERIES_TIME_ZONES).join(', ')}`, 'timeZone');
      const { min, max } = SERIES_LIMITS.weeksAhead;
      const weeksAhead = wholeNumber(input.weeksAhead ?? SERIES_LIMITS.weeksAhead.default, 'weeksAhead', min, max);
      const at = now();
      const doc: LiveSeriesDoc = {
        _id: new Types.ObjectId(),
        ...fields,
        weekday,
        minuteOfDay: Number(m[1]) * 60 + Number(m[2]),
        timeZone,
        weeksAhead,
        active: true,
        createdAt: at,
        createdBy: staff.id,
      };
      await models.LiveSeries.create(doc);
      await fill(doc, at);
      return doc;
    },

    /** Stops creating rooms (rooms already created stay scheduled). A single staff write, not a race that matters. */
    async stopLiveSeries(viewer: Viewer | null, id: string): Promise<LiveSeriesDoc> {
      requireRole(viewer, 'STAFF');
      const series = isObjectId(id) ? await models.LiveSeries.findById(id).lean<LiveSeriesDoc>() : null;
      if (!series) throw notFound('Live series');
      await models.LiveSeries.updateOne({ _id: series._id }, { $set: { active: false } });
      return { ...series, active: false };
    },

    listLiveSeries(args: PageArgs) {
      return paginate(models.LiveSeries, {}, args);
    },

    /** The series' rooms from now on, read by their derived ids (no scan). */
    async upcomingRooms(series: LiveSeriesDoc): Promise<LiveRoomDoc[]> {
      const seriesId = series._id.toHexString();
      const ids = occurrences(series, now(), series.weeksAhead).map((t) => occurrenceRoomId(seriesId, t).toHexString());
      const found = await findByIds<LiveRoomDoc>(deps.roomModel, ids);
      return found.sort((a, b) => a.scheduledAt.getTime() - b.scheduledAt.getTime());
    },

    /** Every active series' rooms of the coming weeks, each created once whatever the number of replicas. */
    async sweep(at: Date): Promise<Record<string, number>> {
      const active = await models.LiveSeries.find({ active: true }).lean<LiveSeriesDoc[]>();
      let created = 0;
      for (const s of active) created += await fill(s, at);
      return { series: active.length, roomsCreated: created };
    },

    loaders() {
      return { liveSeries: byIdLoader(models.LiveSeries) };
    },
  };
}
export type SeriesService = ReturnType<typeof createSeriesService>;
