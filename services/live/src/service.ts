import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  byIdLoader,
  claimOnce,
  findByIds,
  forbidden,
  httpUrl,
  isHost,
  isObjectId,
  isStaff,
  ledgerHead,
  notFound,
  outboxRecord,
  paginate,
  requireObjectId,
  requireRole,
  text,
  wholeNumber,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { HighlightDoc, LiveRoomDoc, LiveRoomStatus, Models, RoomTransitionDoc } from './model';
import type { ReminderService } from './reminders/service';
import type { SalesService } from './sales/service';
import type { SeriesService } from './series/service';

export interface LiveDeps {
  models: Models;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  now?: () => Date;
  /** Told when a room has just gone live (by this call): the at-start reminders go out then. */
  onStarted?: (room: LiveRoomDoc, at: Date) => void;
}

export const LIMITS = {
  title: 60,
  description: 1_000,
  hostName: 30,
  products: 50,
  productId: 64,
  /** How far ahead a room may be scheduled. */
  horizonDays: 365,
  replayUrl: 500,
  highlights: 50,
  highlightTitle: 40,
  /** A highlight's offset into the replay, in seconds (at most a day). */
  highlightOffset: 86_400,
} as const;

export interface RoomFields {
  title: string;
  description?: string | null;
  hostName: string;
  productIds?: readonly string[] | null;
}
export interface ScheduleLiveRoomInput extends RoomFields {
  scheduledAt: Date;
  /** The host (主播) account that may operate the room besides staff. */
  hostAccountId?: string | null;
}
export interface LiveReplayInput {
  url: string;
  highlights?: readonly { offsetSeconds: number; title: string; productId?: string | null }[] | null;
}

/** A room's title, description, host and products, bounded (BAD_USER_INPUT naming the field); shared with the series. */
export function roomFields(
  input: RoomFields,
): Required<{ [K in keyof RoomFields]: NonNullable<RoomFields[K]> }> & { productIds: string[] } {
  const title = text(input.title, 'title', LIMITS.title);
  const description = text(input.description, 'description', LIMITS.description, { min: 0 });
  const hostName = text(input.hostName, 'hostName', LIMITS.hostName);
  const productIds = [...new Set((input.productIds ?? []).map((id) => id.trim()))];
  if (productIds.length > LIMITS.products) throw badInput(`At most ${LIMITS.products} products`, 'productIds');
  if (productIds.some((id) => id.length < 1 || id.length > LIMITS.productId)) throw badInput('Invalid product id', 'productIds');
  return { title, description, hostName, productIds };
}

/** A new room document with its `live.room.scheduled` event: the room and the event are one insert. */
export function newRoomDoc(
  _id: Types.ObjectId,
  fields: ReturnType<typeof roomFields>,
  scheduledAt: Date,
  at: Date,
  seriesId: string | null = null,
  hostAccountId: string | null = null,
): LiveRoomDoc {
  return {
    _id,
    ...fields,
    hostAccountId,
    status: 'SCHEDULED',
    statusSeq: 0,
    scheduledAt,
    startedAt: null,
    endedAt: null,
    replayUrl: null,
    highlights: [],
    seriesId,
    createdAt: at,
    outbox: outboxRecord('live.room.scheduled', { roomId: _id.toHexString(), scheduledAt: scheduledAt.toISOString() }, randomUUID(), at),
  };
}

const conflict = (msg: string) => new AppError('CONFLICT', msg);

/** Who may operate some room: the roles `requireRoomOperator` admits before it looks at the room. */
export const ROOM_OPERATOR_ROLES = ['STAFF', 'HOST'] as const;

/** Whether the viewer may operate the room: staff, or the host account assigned to it. */
export const isRoomOperator = (viewer: Viewer | null, room: Pick<LiveRoomDoc, 'hostAccountId'>): boolean =>
  isStaff(viewer) || (isHost(viewer) && Boolean(room.hostAccountId) && room.hostAccountId === viewer!.id);

/**
 * The rule of every room operation (start, end, and the room's pins, offers and lotteries): STAFF,
 * or a HOST for the rooms assigned to them (`hostAccountId`). Anyone else is FORBIDDEN
 * (UNAUTHENTICATED when signed out). Call `requireRole(viewer, ROOM_OPERATOR_ROLES)` before
 * reading the room, so that a customer is refused without a read.
 */
export function requireRoomOperator(viewer: Viewer | null, room: Pick<LiveRoomDoc, 'hostAccountId'>): Viewer {
  const v = requireRole(viewer, ROOM_OPERATOR_ROLES);
  if (!isRoomOperator(v, room)) throw forbidden('Only staff or the host of this room');
  return v;
}

export function createLiveService(deps: LiveDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  async function roomOrThrow(id: string): Promise<LiveRoomDoc> {
    const room = isObjectId(id) ? await models.LiveRoom.findById(id).lean<LiveRoomDoc>() : null;
    if (!room) throw notFound('Live room');
    return room;
  }

  /**
   * Brings the room's listed fields up to its ledger head, rebuilt from the entries (by id: a room
   * has a handful), and returns the room as the head says. Idempotent, so the loser of a race and a
   * retry after a crash write the same projection; a later seq is never overwritten by an earlier one.
   */
  async function project(room: LiveRoomDoc, head: RoomTransitionDoc | null): Promise<LiveRoomDoc> {
    if (!head) return room;
    const roomId = room._id.toHexString();
    const ids = Array.from({ length: head.seq }, (_, i) => `${roomId}:${i + 1}`);
    const entries = (await findByIds<RoomTransitionDoc>(models.RoomTransition, ids)).sort((a, b) => a.seq - b.seq);
    const set: Partial<LiveRoomDoc> = { status: head.status, statusSeq: head.seq };
    for (const e of entries) {
      if (e.status === 'LIVE') set.startedAt = e.at;
      if (e.status === 'ENDED') set.endedAt = e.at;
      if (e.status === 'REPLAY') Object.assign(set, { replayUrl: e.replayUrl, highlights: e.highlights });
    }
    if ((room.statusSeq ?? 0) < head.seq) {
      await models.LiveRoom.updateOne(
        { _id: room._id, $or: [{ statusSeq: { $lt: head.seq } }, { statusSeq: { $exists: false } }] },
        { $set: set },
      );
    }
    return { ...room, ...set };
  }

  /**
   * Appends one lifecycle step. `step(status, head)` returns the entry's body, or null to refuse
   * (decided against the real head, after any lost race). Returns the entry appended (or null) and
   * the room as its ledger head says, projected.
   */
  async function transition(
    room: LiveRoomDoc,
    step: (status: LiveRoomStatus, head: RoomTransitionDoc | null) => Omit<RoomTransitionDoc, '_id' | 'accountId' | 'seq'> | null,
  ): Promise<{ entry: RoomTransitionDoc | null; status: LiveRoomStatus; room: LiveRoomDoc }> {
    const roomId = room._id.toHexString();
    let refusedBy: RoomTransitionDoc | null = null;
    const entry = await appendToLedger(models.RoomTransition, roomId, (head) => {
      refusedBy = head;
      return step(head?.status ?? 'SCHEDULED', head);
    });
    if (entry) deps.kick();
    const head: RoomTransitionDoc | null = entry ?? refusedBy;
    return { entry, status: head?.status ?? 'SCHEDULED', room: await project(room, head) };
  }

  return {
    listLiveRooms(_viewer: Viewer | null, args: PageArgs & { status?: LiveRoomStatus | null }) {
      return paginate(models.LiveRoom, args.status ? { status: args.status } : {}, args);
    },

    /** The room and its `live.room.scheduled` event become durable in one insert. */
    async scheduleLiveRoom(viewer: Viewer | null, input: ScheduleLiveRoomInput): Promise<LiveRoomDoc> {
      requireRole(viewer, 'STAFF');
      const fields = roomFields(input);
      const at = now();
      const scheduledAt = input.scheduledAt;
      if (!(scheduledAt instanceof Date) || Number.isNaN(scheduledAt.getTime())) throw badInput('Invalid time', 'scheduledAt');
      if (scheduledAt <= at) throw badInput('A live room must be scheduled in the future', 'scheduledAt');
      if (scheduledAt.getTime() - at.getTime() > LIMITS.horizonDays * 24 * 3600_000) {
        throw badInput(`A live room can be scheduled at most ${LIMITS.horizonDays} days ahead`, 'scheduledAt');
      }
      const hostAccountId = input.hostAccountId == null ? null : requireObjectId(input.hostAccountId, 'hostAccountId').toLowerCase();
      const doc = newRoomDoc(new Types.ObjectId(), fields, scheduledAt, at, null, hostAccountId);
      await models.LiveRoom.create(doc);
      deps.kick();
      return doc;
    },

    /** A room created by a series occurrence: its id is the claim, so each occurrence is created once. */
    async createRoomOnce(doc: LiveRoomDoc): Promise<boolean> {
      const created = await claimOnce(models.LiveRoom, doc as unknown as Record<string, unknown>);
      if (created) deps.kick();
      return created;
    },

    /**
     * SCHEDULED → LIVE, once: the LIVE entry is the room ledger's next seq, so of two concurrent
     * calls one appends it (and its `live.room.started` event) and the other finds the room LIVE
     * and returns it unchanged. An ENDED room (or its replay) is CONFLICT.
     */
    async startLiveRoom(viewer: Viewer | null, id: string): Promise<LiveRoomDoc> {
      requireRole(viewer, ROOM_OPERATOR_ROLES);
      const room = await roomOrThrow(id);
      const operator = requireRoomOperator(viewer, room);
      const at = now();
      const {
        entry,
        status,
        room: fresh,
      } = await transition(room, (from) =>
        from === 'SCHEDULED'
          ? {
              status: 'LIVE',
              from,
              at,
              by: operator.id,
              outbox: outboxRecord(
                'live.room.started',
                { roomId: id, scheduledAt: room.scheduledAt.toISOString(), startedAt: at.toISOString() },
                randomUUID(),
                at,
              ),
            }
          : null,
      );
      if (!entry && status !== 'LIVE') throw conflict(`The room is ${status}: it cannot start again`);
      if (entry) deps.onStarted?.(fresh, at);
      return fresh;
    },

    /** LIVE → ENDED, once; ending a room that never started is CONFLICT, ending it again returns it. */
    async endLiveRoom(viewer: Viewer | null, id: string): Promise<LiveRoomDoc> {
      requireRole(viewer, ROOM_OPERATOR_ROLES);
      const room = await roomOrThrow(id);
      const operator = requireRoomOperator(viewer, room);
      const at = now();
      const {
        entry,
        status,
        room: fresh,
      } = await transition(room, (from, head) =>
        from === 'LIVE'
          ? {
              status: 'ENDED',
              from,
              at,
              by: operator.id,
              outbox: outboxRecord(
                'live.room.ended',
                { roomId: id, startedAt: head!.at.toISOString(), endedAt: at.toISOString() },
                randomUUID(),
                at,
              ),
            }
          : null,
      );
      if (!entry && status !== 'ENDED' && status !== 'REPLAY') throw conflict(`The room is ${status}: only a LIVE room can end`);
      return fresh;
    },

    /** ENDED → REPLAY with the replay's URL and highlights; publishing again replaces them (a new entry). */
    async publishLiveReplay(viewer: Viewer | null, id: string, input: LiveReplayInput): Promise<LiveRoomDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const replayUrl = httpUrl(input.url, 'url', LIMITS.replayUrl);
      const raw = input.highlights ?? [];
      if (raw.length > LIMITS.highlights) throw badInput(`At most ${LIMITS.highlights} highlights`, 'highlights');
      const highlights: HighlightDoc[] = raw.map((h) => ({
        offsetSeconds: wholeNumber(h.offsetSeconds, 'highlights.offsetSeconds', 0, LIMITS.highlightOffset),
        title: text(h.title, 'highlights.title', LIMITS.highlightTitle),
        productId: h.productId == null ? null : text(h.productId, 'highlights.productId', LIMITS.productId),
      }));
      highlights.sort((a, b) => a.offsetSeconds - b.offsetSeconds);
      const room = await roomOrThrow(id);
      const at = now();
      const {
        entry,
        status,
        room: fresh,
      } = await transition(room, (from) =>
        from === 'ENDED' || from === 'REPLAY' ? { status: 'REPLAY', from, at, by: staff.id, replayUrl, highlights } : null,
      );
      if (!entry) throw conflict(`The room is ${status}: a replay follows the end of the room`);
      return fresh;
    },

    /** The room's status as its ledger says (the head), for decisions. */
    async statusOf(roomId: string): Promise<LiveRoomStatus> {
      return (await ledgerHead(models.RoomTransition, roomId))?.status ?? 'SCHEDULED';
    },

    loaders() {
      return {
        liveRoom: byIdLoader(models.LiveRoom),
      };
    },
  };
}

export type LiveService = ReturnType<typeof createLiveService>;

export interface Context extends BaseContext {
  service: LiveService;
  series: SeriesService;
  seriesLoaders: ReturnType<SeriesService['loaders']>;
  reminders: ReminderService;
  sales: SalesService;
  loaders: ReturnType<LiveService['loaders']>;
}
