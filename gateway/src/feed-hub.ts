import { randomUUID } from 'node:crypto';
import type { FormattedExecutionResult } from 'graphql';
import type { NatsConnection, Subscription } from 'nats';
import {
  FEED_PRESENCE_INTERVAL_MS,
  FEED_PRESENCE_SUBJECT,
  feedId,
  feedSubject,
  parseFeedId,
  type FeedAnnouncement,
  type FeedPresence,
} from '@flywheel/events';
import type { Logger } from '@flywheel/service-kit';

/** What one subscriber asked for: the query that reads an event (`$<eventVariable>` is the event id) and its variables. */
export interface FeedQuery {
  /** Subscribers with the same key share one execution per event (same document and variables). */
  key: string;
  query: string;
  variables: Record<string, unknown>;
  /** Where the result is, under `data`; a null there means the event has nothing for them. */
  responseKey: string;
}

export interface FeedSubscriber {
  query: FeedQuery;
  /** The result as JSON, serialised once for every subscriber of the group. */
  push(resultJson: string): void;
}

interface Room {
  subscribers: Set<FeedSubscriber>;
  nats: Subscription;
  /** Deliveries of this room, in announcement order. */
  tail: Promise<void>;
  likes: number;
  viewers: number;
}

/** The variable the event id is passed in. */
export const EVENT_VARIABLE = 'flywheelFeedEvent';

/**
 * A gateway replica's side of the live rooms' feeds. One NATS subscription per room with viewers
 * here (`feed.live.<roomId>`, core NATS); each announced event is read once per distinct query
 * among the room's subscribers — through the gateway's own executor, so the query plan reaches
 * every subgraph the selection needs — and the result pushed to each of them, one room's events in
 * the order they were announced. Viewer counts: every replica reports its subscribers per room on
 * `feed.presence`; each sums the reports of the last three intervals and tells its viewers when
 * the sum changes. Likes only go up: an older total arriving late is dropped.
 */
export function createFeedHub(deps: {
  nc: NatsConnection;
  logger: Logger;
  execute(query: string, variables: Record<string, unknown>): Promise<FormattedExecutionResult>;
  now?: () => number;
}) {
  const now = deps.now ?? Date.now;
  const gatewayId = randomUUID();
  const rooms = new Map<string, Room>();
  const reports = new Map<string, { at: number; rooms: Record<string, number> }>();
  let delivered = 0;

  function deliver(roomId: string, id: string, room: Room): void {
    const groups = new Map<string, FeedSubscriber[]>();
    for (const s of room.subscribers) {
      const g = groups.get(s.query.key);
      if (g) g.push(s);
      else groups.set(s.query.key, [s]);
    }
    // Every group's read starts now; deliveries wait for the room's previous event.
    const reads = [...groups.values()].map(async (group) => {
      const q = group[0]!.query;
      try {
        return { group, result: await deps.execute(q.query, { ...q.variables, [EVENT_VARIABLE]: id }) };
      } catch (err) {
        deps.logger.warn({ err, roomId, id }, 'feed event read failed');
        return { group, result: null };
      }
    });
    room.tail = room.tail.then(async () => {
      for (const { group, result } of await Promise.all(reads)) {
        if (!result) continue;
        const key = group[0]!.query.responseKey;
        if (!result.errors && (result.data?.[key] ?? null) === null) continue; // nothing for them
        const json = JSON.stringify(result);
        for (const s of group) {
          if (!room.subscribers.has(s)) continue;
          s.push(json);
          delivered += 1;
        }
      }
    });
  }

  function announce(roomId: string, id: string): void {
    const room = rooms.get(roomId);
    const parsed = parseFeedId(id);
    if (!room || !parsed) return;
    if (parsed.kind === 'likes') {
      const total = Number(parsed.ref);
      if (!(total > room.likes)) return;
      room.likes = total;
    }
    deliver(roomId, id, room);
  }

  function localCounts(): Record<string, number> {
    return Object.fromEntries([...rooms].map(([id, r]) => [id, r.subscribers.size]));
  }

  /** Sums every fresh report (this replica's own counts are always fresh) and tells rooms whose count changed. */
  function recount(): void {
    const fresh = now() - 3 * FEED_PRESENCE_INTERVAL_MS;
    for (const [g, r] of reports) if (g === gatewayId || r.at < fresh) reports.delete(g);
    for (const [roomId, room] of rooms) {
      let n = room.subscribers.size;
      for (const r of reports.values()) n += r.rooms[roomId] ?? 0;
      if (n !== room.viewers) {
        room.viewers = n;
        deliver(roomId, feedId('viewers', n), room);
      }
    }
  }

  const presence = deps.nc.subscribe(FEED_PRESENCE_SUBJECT, {
    callback: (err, msg) => {
      if (err) return;
      try {
        const p = JSON.parse(msg.string()) as FeedPresence;
        if (typeof p.gateway === 'string' && p.gateway !== gatewayId && p.rooms && typeof p.rooms === 'object') {
          reports.set(p.gateway, { at: now(), rooms: p.rooms });
        }
      } catch {
        // not a presence report
      }
    },
  });
  const report = () => {
    try {
      deps.nc.publish(FEED_PRESENCE_SUBJECT, JSON.stringify({ gateway: gatewayId, rooms: localCounts() } satisfies FeedPresence));
    } catch (err) {
      deps.logger.warn({ err }, 'feed presence not sent');
    }
    recount();
  };
  const timer = setInterval(report, FEED_PRESENCE_INTERVAL_MS).unref();

  return {
    /** Adds a subscriber to a room's feed; returns its removal. */
    subscribe(roomId: string, subscriber: FeedSubscriber): () => void {
      let room = rooms.get(roomId);
      if (!room) {
        const created: Room = {
          subscribers: new Set(),
          tail: Promise.resolve(),
          likes: 0,
          viewers: 0,
          nats: deps.nc.subscribe(feedSubject(roomId), {
            callback: (err, msg) => {
              if (err) return;
              try {
                const a = JSON.parse(msg.string()) as FeedAnnouncement;
                if (typeof a.id === 'string') announce(roomId, a.id);
              } catch {
                // not an announcement
              }
            },
          }),
        };
        rooms.set(roomId, created);
        room = created;
      }
      room.subscribers.add(subscriber);
      return () => {
        const r = rooms.get(roomId);
        if (!r) return;
        r.subscribers.delete(subscriber);
        if (r.subscribers.size === 0) {
          r.nats.unsubscribe();
          rooms.delete(roomId);
        }
      };
    },

    /** Subscribers per room here, and results pushed since start (for the bench and tests). */
    stats() {
      return { rooms: localCounts(), delivered };
    },

    /** Says now rather than at the next interval what this replica holds (tests; a new subscriber). */
    report,

    async close(): Promise<void> {
      clearInterval(timer);
      presence.unsubscribe();
      for (const r of rooms.values()) r.nats.unsubscribe();
      await Promise.all([...rooms.values()].map((r) => r.tail));
      rooms.clear();
    },
  };
}

export type FeedHub = ReturnType<typeof createFeedHub>;
