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
