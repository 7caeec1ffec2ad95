import type { Model } from 'mongoose';

// docs/concurrency.md ("Why"): the one primitive atomic on both FerretDB and MongoDB is an insert into a unique
// index. Everything that must happen at most once is claimed this way before it is applied.

export function isDuplicateKey(err: unknown): boolean {
  const e = err as { code?: number; errorResponse?: { code?: number }; writeErrors?: { code?: number }[] } | null;
  return e?.code === 11000 || e?.errorResponse?.code === 11000 || Boolean(e?.writeErrors?.some((w) => w.code === 11000));
}

/**
 * Writes the whole document with this `_id`, inserting it if absent: for read models and
 * settings (last writer wins), never for anything that must happen once. An upsert is not atomic
 * on FerretDB, so two first writes may both try the insert: the loser's becomes a replace.
 */
export async function replaceById<T>(model: Model<T>, doc: T & { _id: unknown }): Promise<void> {
  const filter = { _id: doc._id } as never;
  try {
    await model.replaceOne(filter, doc as never, { upsert: true });
  } catch (err) {
    if (!isDuplicateKey(err)) throw err;
    await model.replaceOne(filter, doc as never);
  }
}

export interface InsertOptions {
  /**
   * Insert the document exactly as built, through the driver: no mongoose casting, defaults or
   * validation (undefined fields are left out), about 0.6 ms of CPU less per insert. Raw inserts
   * into one collection are group-committed: while one `insertMany` is in flight the next ones
   * wait and go together in the following one (never delayed otherwise), each with its own
   * outcome — a duplicate key fails that document alone. For hot paths whose documents are built
   * complete and typed in code; under load, one write instead of many (one SQLite transaction on
   * FerretDB, whose writes to a database are serialised).
   */
  raw?: boolean;
}

interface PendingInsert {
  doc: object;
  done: (err?: unknown) => void;
}
/** Per collection: raw inserts waiting for the next group, and whether one is being written. */
const insertGroups = new WeakMap<object, { waiting: PendingInsert[]; writing: boolean }>();
const MAX_GROUP = 256;

async function writeGroups(collection: Model<unknown>['collection'], group: { waiting: PendingInsert[]; writing: boolean }) {
  group.writing = true;
  try {
    while (group.waiting.length) {
      const batch = group.waiting.splice(0, MAX_GROUP);
      try {
        await collection.insertMany(
          batch.map((b) => b.doc as never),
          { ordered: false, ignoreUndefined: true },
        );
        for (const b of batch) b.done();
      } catch (err) {
        const failed = (err as { writeErrors?: { index: number; code?: number; errmsg?: string }[] }).writeErrors;
        if (!Array.isArray(failed)) {
          for (const b of batch) b.done(err);
          continue;
        }
        const byIndex = new Map(failed.map((w) => [w.index, w]));
        batch.forEach((b, i) => {
          const w = byIndex.get(i);
          b.done(w ? Object.assign(new Error(w.errmsg ?? 'write error'), { code: w.code }) : undefined);
        });
      }
    }
  } finally {
    group.writing = false;
  }
}

function groupInsert(collection: Model<unknown>['collection'], doc: object): Promise<void> {
  let group = insertGroups.get(collection);
  if (!group) insertGroups.set(collection, (group = { waiting: [], writing: false }));
  const g = group;
  return new Promise<void>((resolve, reject) => {
    g.waiting.push({ doc, done: (err) => (err === undefined ? resolve() : reject(err)) });
    if (!g.writing) void writeGroups(collection, g);
  });
}

/** Inserts one document, through mongoose or (`raw`) the driver. */
export async function insertDoc<T>(model: Model<T>, doc: object, opts: InsertOptions = {}): Promise<void> {
  if (opts.raw) await groupInsert(model.collection, doc);
  else await model.create(doc);
}

/** Inserts `doc`; true if this caller won the claim, false if it was already taken. */
export async function claimOnce<T>(model: Model<T>, doc: Partial<T> & Record<string, unknown>, opts: InsertOptions = {}): Promise<boolean> {
  try {
    await insertDoc(model, doc, opts);
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

/** Per model: the newest entry this process saw of each account (entries are immutable). */
const headHints = new WeakMap<object, Map<string, LedgerEntry>>();
const MAX_HINTS = 100_000;

function hintsOf(model: object): Map<string, LedgerEntry> {
  let hints = headHints.get(model);
  if (!hints) headHints.set(model, (hints = new Map()));
  return hints;
}
/**
 * Records an entry this process just inserted as its account's newest known head, so the next
 * `ledgerHead` costs one look-up (of seq + 1) instead of a gallop past it. For appends made
 * without `appendToLedger` (which notes its own).
 */
export function noteLedgerHead(model: object, entry: LedgerEntry): void {
  const hints = hintsOf(model);
  const known = hints.get(entry.accountId);
  if (known && known.seq >= entry.seq) return;
  if (hints.size > MAX_HINTS) hints.clear();
  hints.set(entry.accountId, entry);
}

/**
 * The newest entry of an account this process wrote or read, if any: a head to try as
 * `appendToLedger`'s `knownHead` (its insert at seq + 1 proves it current; a stale one only costs
 * the duplicate and a read). Never a source of truth on its own: other replicas append too.
 */
export function knownLedgerHead<E extends LedgerEntry>(model: Model<E>, accountId: string): E | undefined {
  return headHints.get(model)?.get(accountId) as E | undefined;
}

/** Drops what this process remembers of an account's head (for an account whose entries were deleted). */
export function forgetLedgerHead(model: object, accountId: string): void {
  headHints.get(model)?.delete(accountId);
}

/**
 * The newest entry of an account, found only by `_id` look-ups (`accountId:seq`): the primary
 * key is the one filter every MongoDB-wire backend answers without scanning, while FerretDB v1's
 * SQLite handler scans the whole collection for `{ accountId }` sorted by seq (measured: 178 ms
 * per head read at 5,000 entries against 1.7 ms by `_id`). Entries run contiguously from seq 1 by
 * construction and never change once written, so the newest entry this process saw is a valid
 * lower bound: the head is found by galloping from it, then a binary search — one look-up (the
 * absent seq + 1) when nothing was appended elsewhere since.
 */
export async function ledgerHead<E extends LedgerEntry>(model: Model<E>, accountId: string): Promise<E | null> {
  // The driver's own look-up: what `findById(…).lean()` returns for a string `_id`, without
  // mongoose's query machinery (about half the CPU of the read).
  const get = (seq: number) => model.collection.findOne({ _id: `${accountId}:${seq}` } as never) as unknown as Promise<E | null>;
  const hint = hintsOf(model).get(accountId) as E | undefined;
  let lo = hint?.seq ?? 0;
  let loDoc: E | null = hint ?? null;
  let hi = 0;
  for (let step = 1; ; step *= 2) {
    const doc = await get(lo + step);
    if (!doc) {
      hi = lo + step;
      break;
    }
    lo += step;
    loDoc = doc;
  }
  while (hi - lo > 1) {
    const mid = Math.floor((lo + hi) / 2);
    const doc = await get(mid);
    if (doc) {
      lo = mid;
      loDoc = doc;
    } else hi = mid;
  }
  if (loDoc) noteLedgerHead(model, loDoc);
  return loDoc;
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
  opts: { maxAttempts?: number; knownHead?: E } & InsertOptions = {},
): Promise<E | null> {
  const maxAttempts = opts.maxAttempts ?? 50;
  /** The entry at `seq`, or null when that seq (or a unique field of the body) is taken. */
  const insertAt = async (seq: number, body: Omit<E, '_id' | 'accountId' | 'seq'>): Promise<E | null> => {
    const entry = { ...body, _id: `${accountId}:${seq}`, accountId, seq } as unknown as E;
    try {
      await insertDoc(model, entry, opts);
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return null;
    }
    noteLedgerHead(model, entry);
    return entry;
  };
  // A head the caller just wrote (a hot account behind its gate) saves the head read: the insert
  // of seq + 1 itself proves it is still the head. Anything else — a duplicate, or a refusal
  // (which must be decided against the real head) — falls back to reading it.
  if (opts.knownHead) {
    const known = opts.knownHead;
    let body: Omit<E, '_id' | 'accountId' | 'seq'> | null = null;
    try {
      body = next(known);
    } catch {
      body = null;
    }
    if (body !== null) {
      const entry = await insertAt(known.seq + 1, body);
      if (entry) return entry;
    }
  }
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const head = await ledgerHead(model, accountId);
    const body = next(head);
    if (body === null) return null;
    const entry = await insertAt((head?.seq ?? 0) + 1, body);
    if (entry) return entry;
    // Lost the race: spread retries a little so a hot account does not livelock.
    await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
  }
  throw new LedgerContentionError(accountId, maxAttempts);
}

/** A ledger entry that records one operation, under a unique index on `op`. */
export interface OpLedgerEntry extends LedgerEntry {
  op: string;
}

/**
 * Appends the entry of operation `op` to an account's ledger, at most once per op, with `_id`
 * reads only (a filter on `op` would scan on FerretDB). A duplicate key is either a lost race for
 * the seq (the entry at that seq holds another op: retry on the new head) or the op already
 * applied (that seq is free, so the unique `op` index refused it, or it holds this op: nothing to
 * do). Returns the entry written now, or null when the op was already there. `knownHead` (e.g.
 * `knownLedgerHead`) is tried first, unread: its insert at seq + 1 proves it current, and a stale
 * one is a duplicate like any lost race.
 */
export async function appendOnce<E extends OpLedgerEntry>(
  model: Model<E>,
  accountId: string,
  op: string,
  build: (head: E | null) => Omit<E, '_id' | 'accountId' | 'seq' | 'op'>,
  opts: { maxAttempts?: number; knownHead?: E } & InsertOptions = {},
): Promise<E | null> {
  const maxAttempts = opts.maxAttempts ?? 50;
  for (let attempt = 1; attempt <= maxAttempts; attempt++) {
    const head = attempt === 1 && opts.knownHead ? opts.knownHead : await ledgerHead(model, accountId);
    const seq = (head?.seq ?? 0) + 1;
    const entry = { ...build(head), _id: `${accountId}:${seq}`, accountId, seq, op } as unknown as E;
    try {
      await insertDoc(model, entry, opts);
      noteLedgerHead(model, entry);
      return entry;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const there = (await model.findById(entry._id).lean()) as E | null;
      if (!there || there.op === op) return null;
      await new Promise((r) => setTimeout(r, Math.random() * Math.min(50, attempt * 5)));
    }
  }
  throw new LedgerContentionError(accountId, maxAttempts);
}

/** Ledger entries need a unique (accountId, seq); `_id` already is, this index serves head reads. */
export const ledgerIndexes = [{ accountId: 1, seq: -1 }] as const;
