import { AppError, appendToLedger, badInput, isObjectId, ledgerHead, notFound, requireRole, type Viewer } from '@flywheel/service-kit';
import { feedId } from '@flywheel/events';
import type { LiveRoomDoc, Models } from '../model';
import { requireRoomOperator, ROOM_OPERATOR_ROLES, type LiveService } from '../service';
import type { PinModels, PinDoc } from './model';

/**
 * The host pins one of the room's products at a time; viewers see it at once on the feed (with the
 * product's catalog price and stock, resolved by the gateway). Pinning the product already pinned
 * changes nothing; unpinning an empty pin likewise.
 */
export function createPinService(deps: {
  models: PinModels;
  core: Models;
  rooms: LiveService;
  now: () => Date;
  announce: (roomId: string, id: string) => void;
}) {
  const { models, now } = deps;

  async function liveRoom(viewer: Viewer | null, roomId: string): Promise<LiveRoomDoc> {
    requireRole(viewer, ROOM_OPERATOR_ROLES);
    const room = isObjectId(roomId) ? await deps.core.LiveRoom.findById(roomId).lean<LiveRoomDoc>() : null;
    if (!room) throw notFound('Live room');
    requireRoomOperator(viewer, room);
    const status = await deps.rooms.statusOf(roomId);
    if (status !== 'LIVE') throw new AppError('CONFLICT', `The room is ${status}: products are pinned while it is LIVE`);
    return room;
  }

  async function set(viewer: Viewer | null, roomId: string, productId: string | null): Promise<PinDoc | null> {
    const room = await liveRoom(viewer, roomId);
    const operator = viewer!;
    if (productId !== null && !room.productIds.includes(productId)) {
      throw badInput('Pin one of the products shown in the room', 'productId');
    }
    let unchanged: PinDoc | null = null;
    const entry = await appendToLedger(models.Pin, roomId, (head) => {
      if ((head?.productId ?? null) === productId) {
        unchanged = head;
        return null;
      }
      unchanged = null;
      return { productId, at: now(), by: operator.id };
    });
    if (entry) deps.announce(roomId, feedId('pin', entry.seq));
    return entry ?? unchanged;
  }

  return {
    pin: (viewer: Viewer | null, roomId: string, productId: string) => set(viewer, roomId, productId),
    unpin: (viewer: Viewer | null, roomId: string) => set(viewer, roomId, null),
    /** What is pinned now (null: nothing). */
    async current(roomId: string): Promise<PinDoc | null> {
      const head = await ledgerHead(models.Pin, roomId);
      return head?.productId ? head : null;
    },
    /** Feed source `pin:<seq>`: that change of the room's pin. */
    async feedEvent(roomId: string, seq: string) {
      if (!/^\d{1,9}$/.test(seq)) return null;
      const entry = await models.Pin.findById(`${roomId}:${seq}`).lean<PinDoc>();
      return entry ? ({ __typename: 'LivePinChange', ...entry } as const) : null;
    },
  };
}

export type PinService = ReturnType<typeof createPinService>;
