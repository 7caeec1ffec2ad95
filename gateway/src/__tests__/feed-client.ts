// A graphql-ws client for the gateway's live-room feed, shared by the feed tests.
import { createClient, type Client } from 'graphql-ws';
import WebSocket from 'ws';
import { eventually } from '@flywheel/testing';
import type { RunningGateway } from '../main';

const wsUrl = (g: RunningGateway) => g.url.replace(/^http/, 'ws');

/** Every event type with the fields the tests look at, the pinned product's catalog fields among them. */
export const FEED = `subscription Feed($roomId: ID!) {
  liveRoomFeed(roomId: $roomId) {
    __typename
    ... on LiveComment { id body author { id nickname } }
    ... on LiveCommentRemoved { commentId }
    ... on LivePinChange { pin { product { id name price { amount currency } inStock } } }
    ... on LiveLikes { total }
    ... on LiveViewers { count }
    ... on LiveRoomChange { room { id status } }
  }
}`;

export type FeedEvent = { __typename: string } & Record<string, any>;
export interface Viewer {
  events: FeedEvent[];
  errors: unknown[];
  done: Promise<void>;
}

const clients: Client[] = [];
/** A graphql-ws client of a gateway replica, signed in with `token` when given. */
export function feedClient(g: RunningGateway, token?: string): Client {
  const c = createClient({
    url: wsUrl(g),
    webSocketImpl: WebSocket,
    connectionParams: token ? { authorization: `Bearer ${token}` } : {},
    retryAttempts: 0,
    lazy: true,
  });
  clients.push(c);
  return c;
}
/** Subscribes to a room's feed (FEED unless `query`), collecting events and errors until it ends. */
export function watch(c: Client, roomId: string, query = FEED): Viewer {
  const v: Viewer = { events: [], errors: [], done: Promise.resolve() };
  v.done = new Promise((resolve) => {
    c.subscribe<{ liveRoomFeed: FeedEvent }>(
      { query, variables: { roomId } },
      {
        next: (r) => (r.errors ? v.errors.push(...r.errors) : v.events.push(r.data!.liveRoomFeed)),
        error: (e) => {
          // A closed connection reports a CloseEvent: keep its code and reason.
          const close = e as { code?: number; reason?: string };
          v.errors.push(typeof close.code === 'number' ? { close: close.code, reason: close.reason } : e);
          resolve();
        },
        complete: () => resolve(),
      },
    );
  });
  return v;
}
/** The first event `pred` accepts, waiting up to 10 s; fails naming `what` and what was seen. */
export const seen = (v: Viewer, pred: (e: FeedEvent) => boolean, what: string) =>
  eventually(async () => v.events.find(pred) ?? null, 10_000).catch(() => {
    throw new Error(`viewer never saw ${what}; saw ${JSON.stringify(v.events)} errors ${JSON.stringify(v.errors)}`);
  });

/** Closes every client made by `feedClient`. */
export async function closeFeedClients(): Promise<void> {
  for (const c of clients.splice(0)) await c.dispose();
}
