import { randomUUID } from 'node:crypto';
import { appendToLedger, createKeyQueue, forgetLedgerHead, LedgerContentionError, ledgerHead, outboxRecord } from '@flywheel/service-kit';
import type { Models, SkuDoc } from '../model';
import { applyMove, availableOf, crossesLow, totalsOf, type StockKind, type StockTotals } from './ledger';
import type { StockEntryDoc } from './model';

/** An entry as `build` returns it; `op` defaults to the append's op, else the entry id. */
export type EntryBody = Omit<StockEntryDoc, '_id' | 'accountId' | 'seq' | 'op'> & { op?: string };
export type EntryFields = Partial<Pick<StockEntryDoc, 'orderId' | 'flashSaleId' | 'refundId' | 'reason' | 'by'>>;

export interface StockAccountsDeps {
  models: Models;
  /** Asks the outbox relay to publish now (low-stock events ride on ledger entries). */
  kick: () => void;
  /**
   * Told of every entry appended (product listings follow stock, see browse/projection.ts).
   * Called synchronously after the append and never awaited: a reservation never waits for it.
   */
  onStockMoved?: (entry: StockEntryDoc) => void;
  now: () => Date;
}

/**
 * The stock accounts' writer, shared by every module that moves stock (adjustments, reservations,
 * flash quotas): appends behind a per-account queue and keeps this replica's hot-item caches.
 */
export function createStockAccounts(deps: StockAccountsDeps) {
  const { models, now } = deps;
  const queue = createKeyQueue();
  /**
   * The other recipe for a hot item (docs/concurrency.md, "Hot items"), "cache the hot item": the last available count this
   * process saw per account. When it shows too little, a reservation is refused before any write
   * (a sold-out flash SKU costs one read per late buyer instead of several writes). Only a recent
   * observation counts, so a release by another replica is seen within HOT_CACHE_MS; the ledger
   * stays the only authority for every reservation that is actually taken.
   */
  const lastSeen = new Map<string, { available: number; at: number }>();
  const HOT_CACHE_MS = 500;
  /**
   * The entry this replica last appended per account: behind the queue, the next append of a hot
   * account tries seq + 1 on it without reading the head (appendToLedger's knownHead).
   */
  const lastWritten = new Map<string, { entry: StockEntryDoc; at: number }>();
  const observe = (accountId: string, totals: StockTotals) => lastSeen.set(accountId, { available: availableOf(totals), at: Date.now() });
  const knownShort = (accountId: string, quantity: number) => {
    const seen = lastSeen.get(accountId);
    return Boolean(seen && Date.now() - seen.at < HOT_CACHE_MS && seen.available < quantity);
  };

  const headOf = (accountId: string) => ledgerHead(models.StockEntry, accountId) as Promise<StockEntryDoc | null>;
  /** What an account has available, as this replica recently saw it or read now. */
  const reading = new Map<string, Promise<number>>();
  const available = (accountId: string): Promise<number> => {
    const seen = lastSeen.get(accountId);
    if (seen && Date.now() - seen.at < HOT_CACHE_MS) return Promise.resolve(seen.available);
    // A rush asks at once: one head read in flight per account, shared.
    const running = reading.get(accountId);
    if (running) return running;
    const read = headOf(accountId)
      .then((head) => {
        const totals = totalsOf(head);
        observe(accountId, totals);
        return availableOf(totals);
      })
      .finally(() => reading.delete(accountId));
    reading.set(accountId, read);
    return read;
  };

  /**
   * Appends to one account's ledger behind the in-process queue (docs/concurrency.md, "Hot items": queue the orders of a
   * hot SKU instead of letting them collide). `op`, when given, makes the step idempotent: an
   * entry already holding it is returned instead of applying the move again — which is how a
   * half-finished release, sale or restock is safely re-run after a crash or a redelivery.
   * `build` returns null to do nothing and throws to refuse.
   */
  async function append(
    accountId: string,
    op: string | null,
    build: (t: StockTotals, head: StockEntryDoc | null) => EntryBody | null,
  ): Promise<{ entry: StockEntryDoc; fresh: boolean } | null> {
    return queue.run(accountId, async () => {
      for (let round = 1; ; round++) {
        if (op) {
          const done = await models.StockEntry.findOne({ op }).lean<StockEntryDoc>();
          if (done) return { entry: done, fresh: false };
        }
        try {
          const known = lastWritten.get(accountId);
          const entry = await appendToLedger(
            models.StockEntry,
            accountId,
            (head) => {
              observe(accountId, totalsOf(head));
              const body = build(totalsOf(head), head);
              return body && { ...body, op: body.op ?? op ?? `${accountId}:${(head?.seq ?? 0) + 1}` };
            },
            known && Date.now() - known.at < HOT_CACHE_MS ? { knownHead: known.entry } : {},
          );
          if (entry) {
            observe(accountId, totalsOf(entry));
            if (lastWritten.size > 10_000) lastWritten.clear();
            lastWritten.set(accountId, { entry, at: Date.now() });
          }
          if (entry?.outbox) deps.kick();
          if (entry) deps.onStockMoved?.(entry);
          return entry ? { entry, fresh: true } : null;
        } catch (err) {
          // Another replica applied the same op first: its entry holds the unique op, so every
          // insert of ours is a duplicate until the check above finds it.
          if (!(err instanceof LedgerContentionError) || !op || round >= 2) throw err;
        }
      }
    });
  }

  /** The entry body for one move, or the caller's refusal when it would overdraw. */
  function move(t: StockTotals, kind: StockKind, qty: number, fields: EntryFields, refuse?: (t: StockTotals) => Error): EntryBody {
    const after = applyMove(t, kind, qty);
    if (!after) throw refuse ? refuse(t) : new Error(`${kind} of ${qty} refused`);
    return { kind, qty, at: now(), ...fields, ...after };
  }

  /** A move of a SKU's own stock: the entry that crosses its threshold carries `catalog.stock.low`. */
  function skuMove(sku: SkuDoc, t: StockTotals, kind: StockKind, qty: number, fields: EntryFields, refuse?: (t: StockTotals) => Error) {
    const body = move(t, kind, qty, fields, refuse);
    if (crossesLow(t, body, sku.lowStockThreshold)) {
      const data = {
        skuId: sku._id.toHexString(),
        productId: sku.productId.toHexString(),
        available: availableOf(body),
        threshold: sku.lowStockThreshold,
      };
      body.outbox = outboxRecord('catalog.stock.low', data, randomUUID(), body.at);
    }
    return body;
  }

  return {
    append,
    move,
    skuMove,
    available,
    headOf,
    knownShort,
    /** Forgets what this replica saw of an account: its next read goes to the ledger. */
    forget: (accountId: string) => lastSeen.delete(accountId),
    /** Forgets everything this replica knows of accounts whose entries were deleted. */
    discard(accountId: string) {
      forgetLedgerHead(models.StockEntry, accountId);
      lastWritten.delete(accountId);
      lastSeen.delete(accountId);
    },
  };
}

export type StockAccounts = ReturnType<typeof createStockAccounts>;
