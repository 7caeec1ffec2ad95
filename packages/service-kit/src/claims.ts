import type { Model } from 'mongoose';

// DESIGN.md §3: the one primitive atomic on both FerretDB and MongoDB is an insert into a unique
// index. Everything that must happen at most once is claimed this way before it is applied.

export function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: number; errorResponse?: { code?: number }; writeErrors?: { code?: number }[] } | null;
  return e?.code === 11000 || e?.errorResponse?.code === 11000 || Boolean(e?.writeErrors?.some((w) => w.code === 11000));
}

/** Inserts `doc`; true if this caller won the claim, false if it was already taken. */
export async function claimOnce<T>(model: Model<T>, doc: Partial<T> & Record<string, unknown>): Promise<boolean> {
  try {
    await model.create(doc);
    return true;
  } catch (err) {
    if (isDuplicateKey(err)) return false;
    throw err;
  }
}

export interface LedgerEntry {
  _id: string;
  accountId: string;
  seq: number;
}

export class LedgerContentionError extends Error {
  constructor(accountId: string, attempts: number) {
    super(`ledger ${accountId}: gave up after ${attempts} attempts under contention`);
  }
}

/**
 * Appends the next entry to an account's append-only ledger: read the head, build entry seq+1,
 * insert it under the unique id `${accountId}:${seq}`; a duplicate means someone else appended
 * first, so re-read and retry. `next` returns null to refuse (e.g. it would go negative): the
 * refusal is decided against the real head, so concurrent appenders can never overdraw.
 */
export async function appendToLedger<E extends LedgerEntry>(
  model: Model<E>,
  accountId: string,
  next: (head: E | null) => Omit<E, '_id' | 'accountId' | 'seq'> | null,
  opts: { maxAttempts?: number } = {},
): Promise<E | null> {
  const maxAttempts = opts.maxAttempts ?? 50;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const head = (await model.findOne({ accountId }).sort({ seq: -1 }).lean()) as E | null;
    const body = next(head);
    if (body === null) return null;
    const seq = (head?.seq ?? 0) + 1;
    const entry = { ...body, _id: `${accountId}:${seq}`, accountId, seq } as unknown as E;
    try {
      await model.create(entry);
      return entry;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      // Lost the race: spread retries a little so a hot account does not livelock.
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
    }
  }
  throw new LedgerContentionError(accountId, maxAttempts);
}

/** Ledger entries need a unique (accountId, seq); `_id` already is, this index serves head reads. */
export const ledgerIndexes = [{ accountId: 1, seq: -1 }] as const;
