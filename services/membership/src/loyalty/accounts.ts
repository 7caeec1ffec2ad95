import {
  appendToLedger,
  knownLedgerHead,
  LedgerContentionError,
  ledgerHead,
  replaceById,
  type KeyQueue,
  type Logger,
} from '@flywheel/service-kit';
import type { CouponService } from '../coupons';
import type { Models } from '../model';
import type { LoyaltyProgram } from '../program';
import type { Settings } from '../settings';
import { addLots, available, expiryOf, total, type Lot } from './lots';
import type { LotEntryDoc, LotKind, LoyaltyModels } from './model';

export interface LoyaltyDeps {
  models: LoyaltyModels;
  core: Models;
  settings: Settings;
  coupons: CouponService;
  kick: () => void;
  now: () => Date;
  logger: Pick<Logger, 'warn' | 'error'>;
}

/** What the loyalty service's parts share: its dependencies, one key queue and the program. */
export interface LoyaltyContext extends LoyaltyDeps {
  queue: KeyQueue['run'];
  program: () => Promise<LoyaltyProgram>;
}

export const pointsAccount = (memberId: string) => `p:${memberId}`;
export const growthAccount = (memberId: string) => `g:${memberId}`;
export const DAY_MS = 86_400_000;

export type EntryBody = Omit<LotEntryDoc, '_id' | 'accountId' | 'seq' | 'op'>;

/** The writer of the lot accounts (points `p:` and growth `g:`): appends once per op, and the sweeper's worklist. */
export function createLotAccounts(ctx: LoyaltyContext) {
  const { models, now, queue, program } = ctx;

  /** The entry that already holds `op` (a scan on FerretDB: only on the replay path). */
  async function doneOp(op: string): Promise<LotEntryDoc | null> {
    return models.LotEntry.findOne({ op }).lean<LotEntryDoc>();
  }

  /**
   * Appends to one lot account, at most once per `op`, queued per account inside this process.
   * `build` sees the head's lots and returns null to do nothing, or throws to refuse; the decision
   * is made against the real head (a racing replica's insert makes ours a duplicate and we retry).
   */
  async function append(
    accountId: string,
    operation: string,
    build: (lots: Lot[], head: LotEntryDoc | null) => EntryBody | null,
    opts: { mayBeReplay?: boolean } = {},
  ): Promise<{ entry: LotEntryDoc; fresh: boolean } | null> {
    // One operation (an order's earn) moves several accounts (points and growth): unique per account.
    const op = `${accountId}:${operation}`;
    return queue(accountId, async () => {
      for (let round = 1; ; round++) {
        try {
          let refusal: unknown = null;
          let atHead: LotEntryDoc | null = null;
          const entry = await appendToLedger(
            models.LotEntry,
            accountId,
            (head) => {
              // Decided afresh on each head tried (a known head first, then the real one).
              refusal = null;
              atHead = null;
              if (head?.op === op) {
                atHead = head;
                return null;
              }
              try {
                const body = build(head?.lots ?? [], head);
                return body && { ...body, op };
              } catch (err) {
                refusal = err;
                return null;
              }
            },
            // The head this replica wrote last: the insert of seq + 1 proves it current, so an
            // account appended to only here (its events are handled one at a time) is never read.
            { maxAttempts: 12, knownHead: knownLedgerHead(models.LotEntry, accountId), raw: true },
          );
          if (refusal) {
            // A replay of an op that is already in the ledger (below the head) is not refused.
            // Finding it is a scan on FerretDB, so a caller that knows its op is new (it won the
            // claim the op hangs on) skips it: refusals are the common case when a balance runs out.
            if (opts.mayBeReplay === false) throw refusal;
            const done = await doneOp(op);
            if (done) return { entry: done, fresh: false };
            throw refusal;
          }
          if (atHead) return { entry: atHead, fresh: false };
          if (!entry) return null;
          await noteExpiry(accountId, entry.lots);
          return { entry, fresh: true };
        } catch (err) {
          // Our op is already in the ledger below the head (a crash after the append, or another
          // replica): every insert of ours is a duplicate on the unique op until we find it.
          if (!(err instanceof LedgerContentionError)) throw err;
          const done = await doneOp(op);
          if (done) return { entry: done, fresh: false };
          if (round >= 3) throw err;
        }
      }
    });
  }

  /** The sweeper's worklist: accounts holding lots and when the first one expires. */
  const noted = new Map<string, number | null>();
  async function noteExpiry(accountId: string, lots: Lot[]) {
    const next = lots[0]?.expiresAt ?? null;
    // Most appends (an earn adds the latest lot) leave the first expiry as it was: skip the write.
    const key = next ? next.getTime() : null;
    if (noted.has(accountId) && noted.get(accountId) === key) return;
    await replaceById(models.LoyaltyAccount, { _id: accountId, nextExpiry: next, updatedAt: now() });
    if (noted.size > 100_000) noted.clear();
    noted.set(accountId, key);
  }

  const headOf = (accountId: string) => ledgerHead(models.LotEntry, accountId);

  function credit(kind: LotKind, n: number, expiresAt: Date, reason: string, extra: Partial<EntryBody> = {}) {
    return (lots: Lot[]): EntryBody | null => {
      if (n <= 0) return null;
      const next = addLots(lots, [{ expiresAt, n }]);
      return { kind, delta: n, balance: total(next), lots: next, at: now(), reason, ...extra };
    };
  }

  // Nothing to credit appends nothing (`credit` builds no entry): no need to look at the account.
  async function creditPoints(memberId: string, op: string, n: number, kind: LotKind, reason: string, extra: Partial<EntryBody> = {}) {
    if (n <= 0) return null;
    const p = await program();
    return append(pointsAccount(memberId), op, credit(kind, n, expiryOf(now(), p.pointsLifetimeDays), reason, extra));
  }

  /** Growth only: the caller evaluates the tier (see `evaluateTier` for why the order matters). */
  async function appendGrowth(memberId: string, op: string, n: number, reason: string, extra: Partial<EntryBody> = {}) {
    if (n <= 0) return null;
    const p = await program();
    return append(growthAccount(memberId), op, credit('EARN', n, expiryOf(now(), p.growthWindowDays), reason, extra));
  }

  async function pointsOf(memberId: string, at = now()): Promise<number> {
    const head = await headOf(pointsAccount(memberId));
    return available(head?.lots ?? [], at);
  }

  async function growthOf(memberId: string, at = now()): Promise<number> {
    const head = await headOf(growthAccount(memberId));
    return available(head?.lots ?? [], at);
  }

  return { append, noteExpiry, headOf, creditPoints, appendGrowth, pointsOf, growthOf };
}

export type LotAccounts = ReturnType<typeof createLotAccounts>;
