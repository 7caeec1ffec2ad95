import { randomUUID } from 'node:crypto';
import { AppError, claimOnce, isObjectId, notFound, outboxRecord, requireRole, type Logger, type Viewer } from '@flywheel/service-kit';
import type { LiveRoomDoc, Models } from '../model';
import type { LiveService } from '../service';
import type { ReminderModels, ReminderStage } from './model';

/** The stages before the start, latest first, with how long before the scheduled time each is due. */
const BEFORE: readonly { stage: ReminderStage; ms: number }[] = [
  { stage: 'M5', ms: 5 * 60_000 },
  { stage: 'M30', ms: 30 * 60_000 },
  { stage: 'H1', ms: 60 * 60_000 },
];
const ORDER: readonly ReminderStage[] = ['H1', 'M30', 'M5', 'START'];
/** A room that went live longer ago than this is no longer reminded (its START stage is over). */
const START_WINDOW_MS = 6 * 3600_000;

/**
 * The stage due for a room at `at`: START once the room is LIVE (whenever it started — early
 * starts skip the stages not yet sent); before that the latest of H1 / M30 / M5 whose time has
 * come (a sweep that comes late sends the latest stage only). None for an ended room.
 */
export function dueStage(room: Pick<LiveRoomDoc, 'scheduledAt'>, status: string, at: Date): ReminderStage | null {
  if (status === 'LIVE') return 'START';
  if (status !== 'SCHEDULED') return null;
  const left = room.scheduledAt.getTime() - at.getTime();
  return BEFORE.find((b) => left <= b.ms)?.stage ?? null;
}

export function createReminderService(deps: {
  models: ReminderModels;
  core: Models;
  rooms: LiveService;
  kick: () => void;
  now: () => Date;
  logger: Logger;
}) {
  const { models, core, rooms } = deps;

  async function roomOrThrow(roomId: string): Promise<LiveRoomDoc> {
    const room = isObjectId(roomId) ? await core.LiveRoom.findById(roomId).lean<LiveRoomDoc>() : null;
    if (!room) throw notFound('Live room');
    return room;
  }

  /**
   * Sends `stage` of a room to every subscriber who has not had it: the stage claim first (so no
   * earlier stage goes out after it), then one insert per member, keyed room+stage+member and
   * carrying the `notifications.live.reminder` event (the NOTIFICATIONS stream). Any replica may run it, as often as it
   * likes, and resume after a crash: the per-member inserts decide who is sent what; the `done`
   * marker spares later sweeps the work. Returns the notifications this call created.
   */
  async function fanOut(room: LiveRoomDoc, stage: ReminderStage, at: Date): Promise<number> {
    const roomId = room._id.toHexString();
    if (await models.ReminderClaim.exists({ _id: `${roomId}:${stage}:done` })) return 0;
    // A later stage under way (a stale replica's view, an early start): this one is skipped.
    for (const later of ORDER.slice(ORDER.indexOf(stage) + 1)) {
      if (await models.ReminderClaim.exists({ _id: `${roomId}:${later}` })) return 0;
    }
    await claimOnce(models.ReminderClaim, { _id: `${roomId}:${stage}`, at });
    const subs = await models.ReminderSubscription.find({ roomId }).lean();
    let sent = 0;
    for (const s of subs) {
      const _id = `${roomId}:${stage}:${s.memberId}`;
      const created = await claimOnce(models.ReminderNotification, {
        _id,
        roomId,
        memberId: s.memberId,
        stage,
        at,
        outbox: outboxRecord(
          'notifications.live.reminder',
          { memberId: s.memberId, roomId, stage, title: room.title, startsAt: room.scheduledAt.toISOString(), sentAt: at.toISOString() },
          randomUUID(),
          at,
        ),
      });
      if (created) sent++;
    }
    if (sent) deps.kick();
    await claimOnce(models.ReminderClaim, { _id: `${roomId}:${stage}:done`, at });
    return sent;
  }

  async function remindRoom(room: LiveRoomDoc, at: Date): Promise<number> {
    const stage = dueStage(room, await rooms.statusOf(room._id.toHexString()), at);
    return stage ? fanOut(room, stage, at) : 0;
  }

  return {
    /** A member subscribes to a room's reminders (again is a no-op); only before the room starts. */
    async subscribe(viewer: Viewer | null, roomId: string): Promise<LiveRoomDoc> {
      const member = requireRole(viewer, 'CUSTOMER');
      const room = await roomOrThrow(roomId);
      const status = await rooms.statusOf(roomId);
      if (status !== 'SCHEDULED') throw new AppError('CONFLICT', `The room is ${status}: reminders are for rooms not yet started`);
      await claimOnce(models.ReminderSubscription, { _id: `${roomId}:${member.id}`, roomId, memberId: member.id, at: deps.now() });
      return room;
    },

    /** Stops the member's reminders of the room (stages not yet sent skip them); true if they were subscribed. */
    async unsubscribe(viewer: Viewer | null, roomId: string): Promise<boolean> {
      const member = requireRole(viewer, 'CUSTOMER');
      await roomOrThrow(roomId);
      const res = await models.ReminderSubscription.deleteOne({ _id: `${roomId}:${member.id}` });
      return res.deletedCount > 0;
    },

    /** Whether the viewer (a member) has subscribed to the room's reminders; null for anyone else. */
    async isSubscribed(viewer: Viewer | null, roomId: string): Promise<boolean | null> {
      if (!viewer?.roles.includes('CUSTOMER')) return null;
      return Boolean(await models.ReminderSubscription.exists({ _id: `${roomId}:${viewer.id}` }));
    },

    remindRoom,

    /** A room has just gone live: its START stage now (the sweep would catch it too). */
    roomStarted(room: LiveRoomDoc, at: Date): void {
      fanOut(room, 'START', at).catch((err: unknown) =>
        deps.logger.warn({ err, roomId: room._id.toHexString() }, 'start reminders failed'),
      );
    },

    /** Every room with a stage due at `at`: the next hour's scheduled rooms and the rooms live now. */
    async sweep(at: Date): Promise<Record<string, number>> {
      const due = await core.LiveRoom.find({
        $or: [
          { status: 'SCHEDULED', scheduledAt: { $lte: new Date(at.getTime() + 3600_000), $gt: new Date(at.getTime() - 86_400_000) } },
          { status: 'LIVE', startedAt: { $gte: new Date(at.getTime() - START_WINDOW_MS) } },
        ],
      }).lean<LiveRoomDoc[]>();
      let sent = 0;
      for (const room of due) sent += await remindRoom(room, at);
      return { rooms: due.length, notifications: sent };
    },
  };
}
export type ReminderService = ReturnType<typeof createReminderService>;
