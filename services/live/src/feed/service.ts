import type { NatsConnection, Subscription } from 'nats';
import {
  FEED_PRESENCE_INTERVAL_MS,
  FEED_PRESENCE_SUBJECT,
  feedSubject,
  parseFeedId,
  type FeedKind,
  type FeedPresence,
} from '@flywheel/events';
import { isObjectId, type Logger, type Viewer } from '@flywheel/service-kit';
import type { LiveRoomDoc, Models } from '../model';
import type { CommentDoc } from '../comments/model';
import type { PinDoc } from '../pins/model';
import type { LiveOfferDoc } from '../offers/model';
import type { LotteryView } from '../lottery/service';

/** A feed event as `Query.liveFeedEvent` returns it: the union member's name and its value. */
export type FeedValue =
  | ({ __typename: 'LiveComment' } & CommentDoc)
  | { __typename: 'LiveCommentRemoved'; commentId: string }
  | ({ __typename: 'LivePinChange' } & PinDoc)
  | { __typename: 'LiveLikes'; total: number }
  | { __typename: 'LiveViewers'; count: number }
  | { __typename: 'LiveRoomChange'; room: LiveRoomDoc }
  | ({ __typename: 'LiveOffer' } & LiveOfferDoc)
  | ({ __typename: 'LiveLottery' } & LotteryView);

/** Reads the event `<kind>:<ref>` of a room; null when it names nothing in that room. */
export type FeedSource = (roomId: string, ref: string, viewer: Viewer | null) => Promise<FeedValue | null>;

/**
 * The room feed's live side. Modules `announce` a feed event after the write it reports (core NATS,
 * at most once: a viewer who misses one — a crash between the write and the announcement, a
 * reconnect — reads the room's state by query); the gateway reads each announced event back
 * through `Query.liveFeedEvent`, answered here by the module that registered the event's kind.
 * Announcements go out as they are made, so one room's feed is in the order its writes finished.
 */
export function createFeedService(deps: { nc: NatsConnection; logger: Logger; now: () => Date }) {
  const sources = new Map<FeedKind, FeedSource>();
  // What every gateway replica said last, to answer "watching now" (LiveRoom.watching).
  const presence = new Map<string, { at: number; rooms: Record<string, number> }>();
  let presenceSub: Subscription | null = null;

  return {
    /** Tells every gateway replica about feed event `id` of room `roomId`. Never throws. */
    announce(roomId: string, id: string): void {
      try {
        deps.nc.publish(feedSubject(roomId), JSON.stringify({ id }));
      } catch (err) {
        deps.logger.warn({ err, roomId, id }, 'feed announcement not sent');
      }
    },

    register(kind: FeedKind, source: FeedSource): void {
      if (sources.has(kind)) throw new Error(`feed kind ${kind} registered twice`);
      sources.set(kind, source);
    },

    async event(viewer: Viewer | null, roomId: string, id: string): Promise<FeedValue | null> {
      const parsed = parseFeedId(id);
      if (!parsed || !isObjectId(roomId)) return null;
      if (parsed.kind === 'likes' || parsed.kind === 'viewers') {
        const n = /^\d{1,9}$/.test(parsed.ref) ? Number(parsed.ref) : null;
        if (n === null) return null;
        return parsed.kind === 'likes' ? { __typename: 'LiveLikes', total: n } : { __typename: 'LiveViewers', count: n };
      }
      const source = sources.get(parsed.kind);
      return source ? source(roomId, parsed.ref, viewer) : null;
    },

    /** Viewers watching the room now, summed over every gateway replica that reported lately. */
    watching(roomId: string): number {
      const fresh = deps.now().getTime() - 3 * FEED_PRESENCE_INTERVAL_MS;
      let n = 0;
      for (const [gateway, p] of presence) {
        if (p.at < fresh) presence.delete(gateway);
        else n += p.rooms[roomId] ?? 0;
      }
      return n;
    },

    /** Listens to the gateways' presence reports (every replica keeps its own copy; nothing is stored). */
    start(): void {
      presenceSub = deps.nc.subscribe(FEED_PRESENCE_SUBJECT, {
        callback: (err, msg) => {
          if (err) return;
          try {
            const p = JSON.parse(msg.string()) as FeedPresence;
            if (typeof p.gateway === 'string' && p.rooms && typeof p.rooms === 'object') {
              presence.set(p.gateway, { at: deps.now().getTime(), rooms: p.rooms });
            }
          } catch {
            // not a presence report: ignored
          }
        },
      });
    },
    stop(): void {
      presenceSub?.unsubscribe();
      presenceSub = null;
    },
  };
}

export type FeedService = ReturnType<typeof createFeedService>;

/** Reads a room for its feed with the status its ledger head gives (the listed status may lag a moment). */
export async function roomAsOf(models: Models, roomId: string, status: LiveRoomDoc['status']): Promise<LiveRoomDoc | null> {
  const room = await models.LiveRoom.findById(roomId).lean<LiveRoomDoc>();
  return room ? { ...room, status } : null;
}
