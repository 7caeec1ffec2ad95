import { badInput } from './errors';

// One cursor encoding for every list paged by a ledger's sequence number (newest first): the
// cursor is the base64url of the last seen `seq`. Opaque to clients; the same in every service.

export const encodeSeqCursor = (seq: number) => Buffer.from(String(seq)).toString('base64url');

/** The `seq` a cursor carries; null for no cursor; BAD_USER_INPUT for anything else. */
export function decodeSeqCursor(cursor: string | null | undefined, field = 'after'): number | null {
  if (cursor == null || cursor === '') return null;
  const seq = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
  if (!Number.isSafeInteger(seq) || seq < 1) throw badInput('invalid cursor', field);
  return seq;
}

/** A page size from `first`: `fallback` when absent, else 1..`max`, or BAD_USER_INPUT. */
export function pageSize(first: number | null | undefined, max: number, fallback = 20): number {
  const n = first ?? fallback;
  if (!Number.isInteger(n) || n < 1 || n > max) throw badInput(`first must be 1..${max}`, 'first');
  return n;
}

export interface SeqPage<T> {
  edges: { node: T; cursor: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

/**
 * A page from entries read newest first with one extra (`limit(first + 1)`): the extra one only
 * says there is a next page.
 */
export function seqPage<E extends { seq: number }, T>(entries: E[], first: number, view: (e: E) => T): SeqPage<T> {
  const shown = entries.slice(0, first);
  const last = shown.at(-1);
  return {
    edges: shown.map((e) => ({ node: view(e), cursor: encodeSeqCursor(e.seq) })),
    pageInfo: { hasNextPage: entries.length > first, endCursor: last ? encodeSeqCursor(last.seq) : null },
  };
}

// Lists ordered by time (newest first) rather than by a ledger's seq: the cursor is the last
// seen (time, id) pair, so entries written in the same millisecond are neither skipped nor
// repeated. Opaque to clients, like the seq cursor.

export interface TimeCursor {
  at: Date;
  id: string;
}

export const encodeTimeCursor = (at: Date, id: string) => Buffer.from(`${at.getTime()}:${id}`).toString('base64url');

/** The (time, id) a cursor carries; null for no cursor; BAD_USER_INPUT for anything else. */
export function decodeTimeCursor(cursor: string | null | undefined, field = 'after'): TimeCursor | null {
  if (cursor == null || cursor === '') return null;
  const raw = Buffer.from(cursor, 'base64url').toString('utf8');
  const colon = raw.indexOf(':');
  const ms = Number(raw.slice(0, colon));
  const id = raw.slice(colon + 1);
  if (colon < 1 || !Number.isSafeInteger(ms) || ms < 0 || !id) throw badInput('invalid cursor', field);
  return { at: new Date(ms), id };
}

/** The filter for entries after a time cursor in (at desc, _id desc) order. */
export const afterTimeCursor = (c: TimeCursor | null) => (c ? { $or: [{ at: { $lt: c.at } }, { at: c.at, _id: { $lt: c.id } }] } : {});

/** Like `seqPage`, for entries read newest first by (at desc, _id desc) with one extra. */
export function timePage<E extends { _id: string; at: Date }, T>(entries: E[], first: number, view: (e: E) => T): SeqPage<T> {
  const shown = entries.slice(0, first);
  const last = shown.at(-1);
  return {
    edges: shown.map((e) => ({ node: view(e), cursor: encodeTimeCursor(e.at, e._id) })),
    pageInfo: { hasNextPage: entries.length > first, endCursor: last ? encodeTimeCursor(last.at, last._id) : null },
  };
}
