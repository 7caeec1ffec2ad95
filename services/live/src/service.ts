import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import {
  badInput,
  byIdLoader,
  outboxRecord,
  paginate,
  requireRole,
  text,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { LiveRoomDoc, LiveRoomStatus, Models } from './model';

export interface LiveDeps {
  models: Models;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  now?: () => Date;
}

export const LIMITS = {
  title: 60,
  description: 1_000,
  hostName: 30,
  products: 50,
  productId: 64,
  /** How far ahead a room may be scheduled. */
  horizonDays: 365,
} as const;

export interface ScheduleLiveRoomInput {
  title: string;
  description?: string | null;
  hostName: string;
  scheduledAt: Date;
  productIds?: readonly string[] | null;
}

export function createLiveService(deps: LiveDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  return {
    listLiveRooms(_viewer: Viewer | null, args: PageArgs & { status?: LiveRoomStatus | null }) {
      return paginate(models.LiveRoom, args.status ? { status: args.status } : {}, args);
    },

    /** The room and its `live.room.scheduled` event become durable in one insert. */
    async scheduleLiveRoom(viewer: Viewer | null, input: ScheduleLiveRoomInput): Promise<LiveRoomDoc> {
      requireRole(viewer, 'STAFF');
      const title = text(input.title, 'title', LIMITS.title);
      const description = text(input.description, 'description', LIMITS.description, { min: 0 });
      const hostName = text(input.hostName, 'hostName', LIMITS.hostName);
      const at = now();
      const scheduledAt = input.scheduledAt;
      if (!(scheduledAt instanceof Date) || Number.isNaN(scheduledAt.getTime())) throw badInput('Invalid time', 'scheduledAt');
      if (scheduledAt <= at) throw badInput('A live room must be scheduled in the future', 'scheduledAt');
      if (scheduledAt.getTime() - at.getTime() > LIMITS.horizonDays * 24 * 3600_000) {
        throw badInput(`A live room can be scheduled at most ${LIMITS.horizonDays} days ahead`, 'scheduledAt');
      }
      const productIds = [...new Set((input.productIds ?? []).map((id) => id.trim()))];
      if (productIds.length > LIMITS.products) throw badInput(`At most ${LIMITS.products} products`, 'productIds');
      if (productIds.some((id) => id.length < 1 || id.length > LIMITS.productId)) throw badInput('Invalid product id', 'productIds');

      const _id = new Types.ObjectId();
      const doc: LiveRoomDoc = {
        _id,
        title,
        description,
        hostName,
        status: 'SCHEDULED',
        scheduledAt,
        productIds,
        createdAt: at,
        outbox: outboxRecord(
          'live.room.scheduled',
          { roomId: _id.toHexString(), scheduledAt: scheduledAt.toISOString() },
          randomUUID(),
          at,
        ),
      };
      await models.LiveRoom.create(doc);
      deps.kick();
      return doc;
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
  loaders: ReturnType<LiveService['loaders']>;
}
