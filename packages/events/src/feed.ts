// Live rooms' real-time feed: core NATS subjects (not JetStream — nothing is stored), shared by
// live, which announces, and every gateway replica, which fans announcements out to its WebSocket
// viewers. A feed message names an event by id; the gateway reads the event itself through the
// supergraph (`Query.liveFeedEvent`), so fields of other subgraphs resolve in the same query plan.

/** `feed.live.<roomId>`: `{ "id": "<kind>:<ref>" }`, one per feed event of the room. */
export const FEED_SUBJECT_PREFIX = 'feed.live';
export const feedSubject = (roomId: string) => `${FEED_SUBJECT_PREFIX}.${roomId}`;

/**
 * `feed.presence`: every gateway replica says, every FEED_PRESENCE_INTERVAL_MS, how many viewers
 * it holds per room; a replica's word expires after three intervals (it died).
 */
export const FEED_PRESENCE_SUBJECT = 'feed.presence';
export const FEED_PRESENCE_INTERVAL_MS = 2_000;

export interface FeedAnnouncement {
  id: string;
}
export interface FeedPresence {
  gateway: string;
  /** Viewers (open subscriptions) per room on that replica. */
  rooms: Record<string, number>;
}

/**
 * Feed event ids, `<kind>:<ref>`. Kinds whose whole value is in the id (likes and viewer counts)
 * cost live no read; the others name a stored record.
 */
export const FEED_KINDS = ['comment', 'removed', 'pin', 'likes', 'viewers', 'room', 'offer', 'lottery'] as const;
export type FeedKind = (typeof FEED_KINDS)[number];
export const feedId = (kind: FeedKind, ref: string | number) => `${kind}:${ref}`;
export function parseFeedId(id: string): { kind: FeedKind; ref: string } | null {
  const at = id.indexOf(':');
  if (at < 1 || at === id.length - 1 || id.length > 200) return null;
  const kind = id.slice(0, at) as FeedKind;
  return (FEED_KINDS as readonly string[]).includes(kind) ? { kind, ref: id.slice(at + 1) } : null;
}
