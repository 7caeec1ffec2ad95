import { createHash } from 'node:crypto';
import { Schema, Types, type Connection } from 'mongoose';
import {
  AppError,
  badInput,
  claimOnce,
  isTimeZone,
  localClock,
  notFound,
  text,
  wholeNumber,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { Models } from '../model';
import type { PostService } from '../posts/service';
import type { GroupsService } from './service';

/** Asia/Shanghai unless the rhythm names another zone. */
export const DEFAULT_RHYTHM_TIME_ZONE = 'Asia/Shanghai';
export const RHYTHM_LIMITS = { title: 50, body: 900 };

/** A recurring group post (社群节奏): written once, never updated; stopping it is a separate claim. */
export interface RhythmDoc {
  _id: string;
  groupId: string;
  title: string;
  body: string;
  kind: 'DAILY' | 'WEEKLY';
  /** WEEKLY only: 1 (Monday) to 7 (Sunday). */
  weekday: number | null;
  /** Local "HH:MM". */
  time: string;
  timeZone: string;
  /** Who scheduled it: its posts are published as theirs. */
  by: string;
  createdAt: Date;
}

/** `_id = rhythmId`: the rhythm stopped (one stop, whoever is first). */
export interface RhythmStopDoc {
  _id: string;
  by: string;
  at: Date;
}

/** `_id = ${rhythmId}:${localDate}`: the occurrence claim, so each occurrence is posted once. */
export interface RhythmRunDoc {
  _id: string;
  rhythmId: string;
  postId: string;
  at: Date;
}

/** What the resolvers show: the rhythm with whether it was stopped. */
export type RhythmView = RhythmDoc & { stoppedAt: Date | null };

export interface ScheduleRhythmInput {
  title: string;
  body: string;
  kind: string;
  weekday?: number | null;
  time: string;
  timeZone?: string | null;
}

export function createRhythmModels(db: Connection) {
  const rhythm = new Schema<RhythmDoc>(
    {
      _id: String,
      groupId: String,
      title: String,
      body: String,
      kind: String,
      weekday: Number,
      time: String,
      timeZone: String,
      by: String,
      createdAt: Date,
    },
    { versionKey: false },
  );
  rhythm.index({ groupId: 1, createdAt: 1 });
  const stop = new Schema<RhythmStopDoc>({ _id: String, by: String, at: Date }, { versionKey: false });
  const run = new Schema<RhythmRunDoc>({ _id: String, rhythmId: String, postId: String, at: Date }, { versionKey: false });
  return {
    Rhythm: db.model<RhythmDoc>('GroupRhythm', rhythm, 'group_rhythms'),
    RhythmStop: db.model<RhythmStopDoc>('GroupRhythmStop', stop, 'group_rhythm_stops'),
    RhythmRun: db.model<RhythmRunDoc>('GroupRhythmRun', run, 'group_rhythm_runs'),
  };
}
export type RhythmModels = ReturnType<typeof createRhythmModels>;

/** The local date of the rhythm's occurrence due at `at`, or null (not its day, not its time yet, or before it was scheduled). */
export function dueOccurrence(r: Pick<RhythmDoc, 'kind' | 'weekday' | 'time' | 'timeZone' | 'createdAt'>, at: Date): string | null {
  const local = localClock(at, r.timeZone);
  if (r.kind === 'WEEKLY' && local.weekday !== r.weekday) return null;
  if (local.time < r.time) return null;
  const created = localClock(r.createdAt, r.timeZone);
  if (`${local.date}T${r.time}` < `${created.date}T${created.time}`) return null;
  return local.date;
}

const validZone = isTimeZone;

/** The post id of an occurrence, derived from its claim (an ObjectId-shaped hex string). */
const occurrencePostId = (claim: string) => createHash('sha256').update(`rhythm\0${claim}`).digest('hex').slice(0, 24);

/**
 * Group rhythms: staff or the group's operator schedule a DAILY or WEEKLY post; the sweep claims
 * each due occurrence (`${rhythmId}:${localDate}`) and only the winner publishes it through posts.
 */
export function createGroupRhythms(deps: {
  models: RhythmModels;
  core: Models;
  groups: GroupsService;
  posts: PostService;
  now: () => Date;
  logger: Logger;
}) {
  const { models, now } = deps;

  async function view(r: RhythmDoc): Promise<RhythmView> {
    const stop = await models.RhythmStop.findById(r._id).lean();
    return { ...r, stoppedAt: stop?.at ?? null };
  }

  return {
    async schedule(viewer: Viewer | null, groupId: string, input: ScheduleRhythmInput): Promise<RhythmView> {
      const v = await deps.groups.requireOperator(viewer, groupId);
      if (!(await deps.core.Group.exists({ _id: groupId }))) throw notFound('Group');
      const title = text(input.title, 'title', RHYTHM_LIMITS.title);
      const body = text(input.body, 'body', RHYTHM_LIMITS.body);
      if (input.kind !== 'DAILY' && input.kind !== 'WEEKLY') throw badInput('kind must be DAILY or WEEKLY', 'kind');
      let weekday: number | null = null;
      if (input.kind === 'WEEKLY') weekday = wholeNumber(input.weekday, 'weekday', 1, 7);
      else if (input.weekday != null) throw badInput('weekday is for WEEKLY rhythms only', 'weekday');
      const m = /^([01]\d|2[0-3]):([0-5]\d)$/.exec(input.time);
      if (!m) throw badInput('time must be HH:MM', 'time');
      const timeZone = input.timeZone ?? DEFAULT_RHYTHM_TIME_ZONE;
      if (!validZone(timeZone)) throw badInput('Unknown time zone', 'timeZone');
      const doc: RhythmDoc = {
        _id: new Types.ObjectId().toHexString(),
        groupId,
        title,
        body,
        kind: input.kind,
        weekday,
        time: input.time,
        timeZone,
        by: v.id,
        createdAt: now(),
      };
      await models.Rhythm.create(doc);
      return { ...doc, stoppedAt: null };
    },

    /** Stopping twice is CONFLICT (reason STOPPED). */
    async stop(viewer: Viewer | null, id: string): Promise<RhythmView> {
      const r = await models.Rhythm.findById(id).lean<RhythmDoc>();
      if (!r) throw notFound('Rhythm');
      const v = await deps.groups.requireOperator(viewer, r.groupId);
      if (!(await claimOnce(models.RhythmStop, { _id: id, by: v.id, at: now() })))
        throw new AppError('CONFLICT', 'This rhythm is already stopped', { reason: 'STOPPED' });
      return view(r);
    },

    async list(groupId: string): Promise<RhythmView[]> {
      const rows = await models.Rhythm.find({ groupId }).sort({ createdAt: 1 }).lean<RhythmDoc[]>();
      return Promise.all(rows.map(view));
    },

    /** Publishes each due occurrence once: the claim first, then the post (its id derived from the claim). */
    async sweep(at: Date): Promise<Record<string, number>> {
      let posted = 0;
      const stopped = new Set((await models.RhythmStop.find({}, { _id: 1 }).lean()).map((s) => s._id));
      for (const r of await models.Rhythm.find({}).lean<RhythmDoc[]>()) {
        if (stopped.has(r._id)) continue;
        const date = dueOccurrence(r, at);
        if (!date) continue;
        const claim = `${r._id}:${date}`;
        const postId = occurrencePostId(claim);
        if (!(await claimOnce(models.RhythmRun, { _id: claim, rhythmId: r._id, postId, at }))) continue;
        try {
          await deps.posts.publishForGroup({ id: postId, memberId: r.by, groupId: r.groupId, body: `${r.title}\n${r.body}` });
          posted++;
        } catch (err) {
          deps.logger.warn({ err, rhythmId: r._id, date }, 'group rhythm post failed');
        }
      }
      return { rhythmPosts: posted };
    },
  };
}
export type GroupRhythms = ReturnType<typeof createGroupRhythms>;
