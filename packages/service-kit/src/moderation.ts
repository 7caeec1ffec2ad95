import { Schema, type Connection, type Model } from 'mongoose';
import { requireRole } from './auth';
import { appendToLedger, ledgerHead, ledgerIndexes, type LedgerEntry } from './claims';
import { AppError, badInput } from './errors';
import type { Viewer } from './tokens';
import { text, wholeNumber } from './validate';

/**
 * A banned-words filter (敏感词): matching ignores case, full-width forms, spaces, punctuation and
 * zero-width characters between the letters, so "微 信", "ＷＥＩＸＩＮ" and "we.ixin" match "微信" and
 * "weixin". One filter per word list; build it again when the list changes.
 */
export interface WordFilter {
  /** The first banned word the text contains, or null. */
  find(text: string): string | null;
  readonly size: number;
}

// Letters and digits of any script survive; everything else (spaces, punctuation, symbols,
// zero-width joiners, emoji) is dropped before matching.
const normalize = (s: string) =>
  s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');

export function createWordFilter(words: readonly string[]): WordFilter {
  const list = [...new Set(words.map((w) => ({ word: w, key: normalize(w) })).filter((w) => w.key.length > 0))];
  return {
    size: list.length,
    find(text: string) {
      const key = normalize(text);
      for (const w of list) if (key.includes(w.key)) return w.word;
      return null;
    },
  };
}

/** One version of a staff-edited banned-words list, appended to its ledger (accountId `banned-words`): the head is the list. */
export interface BannedWordsEntry extends LedgerEntry {
  words: string[];
  at: Date;
  by: string;
}

/** The ledger collection of a service's banned-words list. */
export function bannedWordsModel(db: Connection, modelName: string, collection: string): Model<BannedWordsEntry> {
  const schema = new Schema<BannedWordsEntry>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      words: { type: [String], default: [] },
      at: { type: Date, required: true },
      by: { type: String, required: true },
    },
    { collection, versionKey: false },
  );
  for (const ix of ledgerIndexes) schema.index(ix);
  return db.model<BannedWordsEntry>(modelName, schema);
}

const BANNED = 'banned-words';

/**
 * A staff-edited banned-words list (敏感词) as a versioned ledger, and the filter written text is
 * checked against. Staff read it with its version and save a whole new list with the version they
 * edited (`expectedVersion`): a save over a newer one is CONFLICT. Each replica trusts its copy of
 * the filter for `ttlMs`, so a saved list applies everywhere within that time.
 */
export function createBannedWords(
  model: Model<BannedWordsEntry>,
  opts: { now: () => Date; maxWords: number; maxWordLength: number; ttlMs?: number },
) {
  const ttl = opts.ttlMs ?? 5_000;
  let copy: { filter: WordFilter; until: number } | null = null;
  return {
    async filter(): Promise<WordFilter> {
      const t = opts.now().getTime();
      if (!copy || copy.until <= t) {
        const head = await ledgerHead(model, BANNED);
        copy = { filter: createWordFilter(head?.words ?? []), until: t + ttl };
      }
      return copy.filter;
    },

    /** Staff only. */
    async list(viewer: Viewer | null): Promise<{ words: string[]; version: number }> {
      requireRole(viewer, 'STAFF');
      const head = await ledgerHead(model, BANNED);
      return { words: head?.words ?? [], version: head?.seq ?? 0 };
    },

    /** Staff only: the whole new list (deduplicated, each word bounded). */
    async save(viewer: Viewer | null, raw: readonly string[], expectedVersion: number): Promise<{ words: string[]; version: number }> {
      const staff = requireRole(viewer, 'STAFF');
      if (raw.length > opts.maxWords) throw badInput(`At most ${opts.maxWords} words`, 'words');
      const list = [...new Set(raw.map((w) => text(w, 'words', opts.maxWordLength)))];
      const expected = wholeNumber(expectedVersion, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER);
      let stale = false;
      const entry = await appendToLedger(model, BANNED, (head) => {
        stale = (head?.seq ?? 0) !== expected;
        return stale ? null : { words: list, at: opts.now(), by: staff.id };
      });
      if (!entry || stale) throw new AppError('CONFLICT', 'The banned-words list changed since you read it; reload and save again');
      copy = null;
      return { words: entry.words, version: entry.seq };
    },
  };
}
export type BannedWords = ReturnType<typeof createBannedWords>;
