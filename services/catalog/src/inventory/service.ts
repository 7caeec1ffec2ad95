import { createHash, randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import DataLoader from 'dataloader';
import type { EventData, ReplyData, RequestData } from '@flywheel/events';
import {
  AppError,
  createKeyQueue,
  appendToLedger,
  badInput,
  byIdLoader,
  claimOnce,
  forgetLedgerHead,
  isDuplicateKey,
  isStaff,
  LedgerContentionError,
  MAX_PAGE,
  notFound,
  outboxRecord,
  paginate,
  requireRole,
  type Connection as Page,
  type ErrorCode,
  type Logger,
  type PageArgs,
  type Viewer,
  ledgerHead,
  findByIds,
} from '@flywheel/service-kit';
import type { Models, ProductDoc, SkuDoc } from '../model';
import { money, type Money } from '../money';
import {
  applyMove,
  availableOf,
  crossesLow,
  flashAccount,
  flashStatusAt,
  totalsOf,
  MAX_LINE_QUANTITY,
  MAX_PER_MEMBER_LIMIT,
  MAX_STOCK,
  type FlashSaleStatus,
  type StockKind,
  type StockTotals,
} from './ledger';
import type {
  FinalCause,
  FinalOutcome,
  FlashSaleDoc,
  IncidentKind,
  ReservationDoc,
  ReservationFinalDoc,
  ReservationLineDoc,
  ReservationResultDoc,
  StockEntryDoc,
} from './model';
import { createMemoryFlashGate, type FlashGate, type GateSale } from './flash-gate';

export type ReserveRequest = RequestData<'catalog.stock.reserve'>;
export type ReserveReply = ReplyData<'catalog.stock.reserve'>;
export type ReleaseReply = ReplyData<'catalog.stock.release'>;

export interface InventoryDeps {
  models: Models;
  /** Asks the outbox relay to publish now (low-stock events ride on ledger entries). */
  kick: () => void;
  logger: Logger;
  /** Unfinalised reservations are released after this long (longer than orders' unpaid timeout). */
  reservationTtlSeconds: number;
  /**
   * Told of every entry appended (product listings follow stock, see browse/projection.ts).
   * Called synchronously after the append and never awaited: a reservation never waits for it.
   */
  onStockMoved?: (entry: StockEntryDoc) => void;
  /** Told when a flash sale of the product was created (its listing and read models follow). */
  onFlashSaleCreated?: (productId: string) => Promise<unknown>;
  /** Decides flash-sale buyers before anything is written (flash-gate.ts); in-process by default. */
  flashGate?: FlashGate;
  now?: () => Date;
}

/** How long a checkout's flash hold waits for its reservation before the units go back. */
export const DEFAULT_HOLD_MS = 30_000;

export interface StockView {
  available: number;
  onHand: number | null;
  reserved: number | null;
  sold: number | null;
  lowStockThreshold: number | null;
}

export interface StockEntryView {
  id: string;
  seq: number;
  kind: StockKind;
  quantity: number;
  orderId: string | null;
  flashSaleId: string | null;
  refundId: string | null;
  reason: string | null;
  by: string | null;
  at: Date;
  available: number;
  onHand: number;
  reserved: number;
  sold: number;
}

export interface FlashSaleView {
  id: string;
  sku: SkuDoc;
  product: ProductDoc;
  flashPrice: Money;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  status: FlashSaleStatus;
  remaining: number;
}

export interface AdjustStockInput {
  skuId: string;
  delta: number;
  reason: string;
  idempotencyKey?: string | null;
}

export interface CreateFlashSaleInput {
  skuId: string;
  flashPrice: number;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  idempotencyKey?: string | null;
}

export interface FlashSaleListArgs extends PageArgs {
  status?: FlashSaleStatus | null;
}

/** A member's flash price for a quote line. */
export interface FlashOffer {
  flashSaleId: string;
  unitPrice: number;
  /** The flash sale's quota still available as of the offer. */
  remaining: number;
}

/** What request-scoped lookups inventory needs from the catalog's loaders. */
export interface EntityLoaders {
  sku: DataLoader<string, SkuDoc | null>;
  product: DataLoader<string, ProductDoc | null>;
}

/** How long a replayed reservation waits for the first attempt's answer (under the bus timeout). */
const REPLAY_WAIT_MS = 2_000;
const SWEEP_BATCH = 200;

const OBJECT_ID = /^[0-9a-f]{24}$/i;
const isObjectId = (id: string) => OBJECT_ID.test(id);
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Op keys: what an entry does, unique across the ledger (see StockEntryDoc.op). */
const orderOp = (orderId: string, kind: 'RESERVE' | 'RELEASE' | 'SELL', account: string) => `${orderId}:${kind}:${account}`;
const finalId = (orderId: string) => `${orderId}:final`;
/** Reservations that expired this long before the sweeper's mark are read again (clock skew between replicas). */
const SWEEP_SKEW_MS = 10_000;

/** An entry as `build` returns it; `op` defaults to the append's op, else the entry id. */
type EntryBody = Omit<StockEntryDoc, '_id' | 'accountId' | 'seq' | 'op'> & { op?: string };
type EntryFields = Partial<Pick<StockEntryDoc, 'orderId' | 'flashSaleId' | 'refundId' | 'reason' | 'by'>>;

const outOfStock = (skuId: string, extra: Record<string, unknown> = {}) =>
  new AppError('OUT_OF_STOCK', `SKU ${skuId} is out of stock`, { skuId, ...extra });

function requiredText(raw: string | null | undefined, field: string, max: number): string {
  const value = (raw ?? '').trim();
  if (value.length < 1 || value.length > max) throw badInput(`${field} must be 1 to ${max} characters`, field);
  return value;
}

function wholeNumber(value: number, field: string, min: number, max: number): number {
  if (!Number.isSafeInteger(value) || value < min || value > max)
    throw badInput(`${field} must be a whole number from ${min} to ${max}`, field);
  return value;
}

/** A deterministic ObjectId for an idempotency key: a replay creates (or finds) the same document. */
const objectIdFrom = (hash: string) => new Types.ObjectId(hash.slice(0, 24));

export function createInventoryService(deps: InventoryDeps) {
  const { models, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const queue = createKeyQueue();
  const gate = deps.flashGate ?? createMemoryFlashGate({ holdMs: DEFAULT_HOLD_MS });
  /**
   * The seeds' other recipe for a hot item, "cache the hot item": the last available count this
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
   * Appends to one account's ledger behind the in-process queue (DESIGN §3: queue the orders of a
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

  function entryView(e: StockEntryDoc): StockEntryView {
    return {
      id: e._id,
      seq: e.seq,
      kind: e.kind,
      quantity: e.qty,
      orderId: e.orderId ?? null,
      flashSaleId: e.flashSaleId ?? null,
      refundId: e.refundId ?? null,
      reason: e.reason ?? null,
      by: e.by ?? null,
      at: e.at,
      available: availableOf(e),
      onHand: e.onHand,
      reserved: e.reserved,
      sold: e.sold,
    };
  }

  async function recordIncident(kind: IncidentKind, orderId: string, eventId: string, detail: Record<string, unknown>) {
    await claimOnce(models.StockIncident, { _id: `${orderId}:${kind}`, kind, orderId, eventId, detail, at: now() });
  }

  // ---- reservations --------------------------------------------------------------------------

  /** Request shape only (no I/O): a refusal here writes nothing. */
  function parseLines(lines: ReserveRequest['lines']): ReservationLineDoc[] {
    const seen = new Set<string>();
    return lines.map((l) => {
      const account = l.flashSaleId ? flashAccount(l.flashSaleId) : l.skuId;
      if (seen.has(account)) throw badInput(`SKU ${l.skuId} appears more than once`, 'lines');
      seen.add(account);
      if (!Number.isSafeInteger(l.quantity) || l.quantity < 1 || l.quantity > MAX_LINE_QUANTITY) {
        throw badInput(`Quantity must be 1 to ${MAX_LINE_QUANTITY}`, 'quantity');
      }
      return { skuId: l.skuId, quantity: l.quantity, account, ...(l.flashSaleId ? { flashSaleId: l.flashSaleId } : {}) };
    });
  }

  interface CheckedLine {
    line: ReservationLineDoc;
    sku: SkuDoc;
    flash: FlashSaleDoc | null;
  }

  /** Every refusal that needs no stock is decided before any stock moves. */
  async function checkLines(lines: ReservationLineDoc[], at: Date): Promise<CheckedLine[]> {
    const skuIds = [...new Set(lines.map((l) => l.skuId).filter(isObjectId))];
    const skus = new Map((await findByIds<SkuDoc>(models.Sku, skuIds)).map((s) => [s._id.toHexString(), s]));
    const productIds = [...new Set([...skus.values()].map((s) => s.productId.toHexString()))];
    const products = new Map((await findByIds<ProductDoc>(models.Product, productIds)).map((p) => [p._id.toHexString(), p]));
    const flashIds = [...new Set(lines.flatMap((l) => (l.flashSaleId && isObjectId(l.flashSaleId) ? [l.flashSaleId] : [])))];
    const flashes = new Map((await findByIds<FlashSaleDoc>(models.FlashSale, flashIds)).map((f) => [f._id.toHexString(), f]));
    return lines.map((line) => {
      const sku = skus.get(line.skuId);
      const product = sku && products.get(sku.productId.toHexString());
      if (!sku || !product) throw new AppError('NOT_FOUND', `SKU ${line.skuId} not found`, { skuId: line.skuId });
      if (product.status !== 'ON_SALE') throw new AppError('BAD_USER_INPUT', `${product.name} is not on sale`, { skuId: line.skuId });
      if (!line.flashSaleId) return { line, sku, flash: null };
      const flashSaleId = line.flashSaleId;
      const flash = flashes.get(flashSaleId);
      if (!flash) throw new AppError('NOT_FOUND', `Flash sale ${flashSaleId} not found`, { skuId: line.skuId, flashSaleId });
      if (flash.skuId.toHexString() !== line.skuId) {
        throw new AppError('BAD_USER_INPUT', `Flash sale ${flashSaleId} is not for SKU ${line.skuId}`, { skuId: line.skuId, flashSaleId });
      }
      if (at < flash.startsAt || at >= flash.endsAt) {
        throw new AppError('BAD_USER_INPUT', `Flash sale ${flashSaleId} is not live`, { skuId: line.skuId, flashSaleId });
      }
      if (line.quantity > flash.perMemberLimit) throw flashLimit(line.skuId, flash);
      return { line, sku, flash };
    });
  }

  const flashLimit = (skuId: string, flash: FlashSaleDoc) =>
    new AppError('BAD_USER_INPUT', `At most ${flash.perMemberLimit} per member in flash sale ${flash._id.toHexString()}`, {
      skuId,
      flashSaleId: flash._id.toHexString(),
      limit: flash.perMemberLimit,
      reason: 'FLASH_SALE_LIMIT',
    });

  /**
   * One unit of the member's limit per claim (`<flashSaleId>:<memberId>:<n>`, n = 1..limit):
   * exact under any concurrency. Slots taken before a refusal are given back with the rest of
   * the reservation.
   */
  /** The member's slots of a flash sale, read by id (a filter on member would scan). */
  const slotsOf = (flash: FlashSaleDoc, memberId: string) => {
    const flashSaleId = flash._id.toHexString();
    const ids = Array.from({ length: flash.perMemberLimit }, (_, i) => `${flashSaleId}:${memberId}:${i + 1}`);
    return findByIds<{ _id: string; n: number }>(models.FlashSlot, ids, { n: 1 });
  };

  /**
   * Flash sales not yet ended per SKU, for quotes: a hot SKU is quoted by every buyer of a rush,
   * and flash sales never change once written, so each replica keeps them for FLASH_CACHE_MS
   * (dropped here at once when this replica creates one; another replica's new sale shows
   * within that time).
   */
  const FLASH_CACHE_MS = 1_000;
  const flashCache = new Map<string, { at: number; sales: FlashSaleDoc[] }>();
  const flashReads = new Map<string, Promise<unknown>>();
  async function pendingFlashSales(skuIds: string[], at: Date): Promise<FlashSaleDoc[]> {
    const fresh = (id: string) => {
      const c = flashCache.get(id);
      return c && Date.now() - c.at < FLASH_CACHE_MS ? c : null;
    };
    const stale = skuIds.filter((id) => !fresh(id));
    // One read in flight per SKU: a rush's quotes wait for it instead of each reading.
    const missing = stale.filter((id) => !flashReads.has(id));
    if (missing.length) {
      const started = Date.now();
      const read = models.FlashSale.find({ skuId: { $in: missing }, endsAt: { $gt: at } })
        .lean<FlashSaleDoc[]>()
        .then((found) => {
          if (flashCache.size > 10_000) flashCache.clear();
          for (const id of missing) flashCache.set(id, { at: started, sales: found.filter((f) => f.skuId.toHexString() === id) });
        })
        .finally(() => {
          for (const id of missing) if (flashReads.get(id) === read) flashReads.delete(id);
        });
      for (const id of missing) flashReads.set(id, read);
    }
    await Promise.all([...new Set(stale.map((id) => flashReads.get(id)))]);
    return skuIds.flatMap((id) => flashCache.get(id)?.sales ?? []);
  }

  async function takeSlots(flash: FlashSaleDoc, memberId: string, orderId: string, quantity: number, held: Set<number>, took: () => void) {
    const flashSaleId = flash._id.toHexString();
    let got = 0;
    for (let n = 1; n <= flash.perMemberLimit && got < quantity; n++) {
      if (held.has(n)) continue;
      const slot = { _id: `${flashSaleId}:${memberId}:${n}`, flashSaleId, memberId, n, orderId, at: now() };
      if (await claimOnce(models.FlashSlot, slot)) {
        took();
        got++;
      }
    }
    return got === quantity;
  }

  /** The gate's view of a flash sale, and how it reads the quota's ledger when it must. */
  const gateSale = (flash: FlashSaleDoc): GateSale => ({
    id: flash._id.toHexString(),
    perMemberLimit: flash.perMemberLimit,
    endsAt: flash.endsAt,
  });
  const admit = (flash: FlashSaleDoc, orderId: string, memberId: string, quantity: number) => {
    const id = flash._id.toHexString();
    return gate.admit(gateSale(flash), orderId, memberId, quantity, async () => {
      lastSeen.delete(flashAccount(id));
      return available(flashAccount(id));
    });
  };
  /** Gives back (or drops, when the ledger refused them) what the order's flash lines hold at the gate. */
  async function releaseHolds(lines: ReservationLineDoc[], orderId: string, giveBack: boolean) {
    for (const l of lines) {
      if (!l.flashSaleId) continue;
      await gate
        .release(l.flashSaleId, orderId, giveBack)
        .catch((err: unknown) => logger.warn({ err, orderId }, 'flash gate release failed'));
    }
  }

  /**
   * A checkout's quote (it names its order): each flash line is decided at the gate, in memory or
   * one Redis script. Admitted, the order holds the units and is quoted the flash price; refused
   * (sold out, or the member at the limit), the line is quoted like any other and nothing was
   * read or written for it.
   */
  async function admitOffers(live: FlashSaleDoc[], memberId: string, lines: { skuId: string; quantity: number }[], orderId: string) {
    const offers = new Map<string, FlashOffer>();
    for (const line of lines) {
      for (const flash of live) {
        if (flash.skuId.toHexString() !== line.skuId || line.quantity > flash.perMemberLimit) continue;
        const admitted = await admit(flash, orderId, memberId, line.quantity).catch((err: unknown) => {
          // A gate that cannot answer (Redis down) lets the ledger decide, as before the gate.
          logger.warn({ err, flashSaleId: flash._id.toHexString() }, 'flash gate unavailable; the ledger decides');
          return { ok: true as const, ticket: 0, left: line.quantity };
        });
        if (!admitted.ok) continue;
        offers.set(line.skuId, {
          flashSaleId: flash._id.toHexString(),
          unitPrice: flash.flashPrice,
          remaining: admitted.left + line.quantity,
        });
        break;
      }
    }
    return offers;
  }

  /**
   * Only the reservation's claimant ever reserves for an order, so RESERVE needs no op check
   * (one read less per buyer on a hot SKU); the op's unique index still backs it.
   *
   * A flash line reads the member's slots first (a member already at the limit takes nothing),
   * then draws on the quota, then claims the slots. Quota before slots keeps a sold-out crowd
   * cheap — a refused buyer has written nothing — while the slot claims still make the limit
   * exact: a member racing themself holds a unit only until the losing order gives it back.
   */
  async function reserveLine(orderId: string, memberId: string, { line, sku, flash }: CheckedLine, took: () => void) {
    const op = orderOp(orderId, 'RESERVE', line.account);
    if (!flash) {
      await append(line.account, null, (t) => ({
        ...skuMove(sku, t, 'RESERVE', line.quantity, { orderId }, () => outOfStock(line.skuId)),
        op,
      }));
      took();
      return;
    }
    const flashSaleId = flash._id.toHexString();
    // Normally the order's hold from its quote; the ledger decides either way (a gate on another
    // replica, or none at all, must not cost a sale the ledger can make).
    await admit(flash, orderId, memberId, line.quantity).catch(() => null);
    let ledgerShort = false;
    let held = new Set<number>();
    try {
      held = new Set((await slotsOf(flash, memberId)).map((s) => s.n));
      if (held.size + line.quantity > flash.perMemberLimit) throw flashLimit(line.skuId, flash);
      await append(line.account, null, (t) => {
        // Decided against the head: a reservation cannot land after the quota went back to the SKU.
        if (now() >= flash.endsAt) throw new AppError('BAD_USER_INPUT', `Flash sale ${flashSaleId} has ended`, { skuId: line.skuId });
        const body = move(t, 'RESERVE', line.quantity, { orderId, flashSaleId }, () => {
          ledgerShort = true;
          return outOfStock(line.skuId, { flashSaleId });
        });
        return { ...body, op };
      });
    } catch (err) {
      await releaseHolds([line], orderId, !ledgerShort);
      throw err;
    }
    took();
    await gate.confirm(flashSaleId, orderId).catch((err: unknown) => logger.warn({ err, orderId }, 'flash gate confirm failed'));
    if (!(await takeSlots(flash, memberId, orderId, line.quantity, held, took))) throw flashLimit(line.skuId, flash);
  }

  function failure(err: unknown): Omit<ReservationResultDoc, '_id' | 'at'> {
    if (err instanceof AppError) {
      const { code, ...extensions } = err.extensions as { code: string } & Record<string, unknown>;
      return { ok: false, error: { code, message: err.message, extensions } };
    }
    logger.error({ err }, 'stock reservation failed');
    return { ok: false, error: { code: 'UNAVAILABLE', message: 'Stock could not be reserved; try again with a new order' } };
  }

  function answer(orderId: string, result: Pick<ReservationResultDoc, 'ok' | 'reservedAt' | 'error'>): ReserveReply {
    if (result.ok && result.reservedAt) return { orderId, reservedAt: new Date(result.reservedAt).toISOString() };
    const error = result.error ?? { code: 'INTERNAL_SERVER_ERROR', message: 'reservation without an answer' };
    throw new AppError(error.code as ErrorCode, error.message, error.extensions ?? {});
  }

  const sameLines = (a: ReservationLineDoc[], b: ReservationLineDoc[]) =>
    a.length === b.length && a.every((l, i) => l.account === b[i]!.account && l.skuId === b[i]!.skuId && l.quantity === b[i]!.quantity);

  /** A replay answers the first attempt's result, waiting briefly if that attempt is still running. */
  async function replay(existing: ReservationDoc, memberId: string, lines: ReservationLineDoc[]): Promise<ReserveReply> {
    const orderId = existing._id;
    if (existing.memberId !== memberId || !sameLines(existing.lines, lines)) {
      throw new AppError('CONFLICT', `Order ${orderId} already reserved different lines`);
    }
    const deadline = Date.now() + REPLAY_WAIT_MS;
    for (;;) {
      const result = await models.ReservationResult.findById(orderId).lean<ReservationResultDoc>();
      if (result) return answer(orderId, result);
      if (Date.now() > deadline) {
        // The first attempt never answered (it crashed): once released, say so for good.
        const final = await models.ReservationFinal.findById(finalId(orderId)).lean<ReservationFinalDoc>();
        if (final?.outcome === 'RELEASED') throw new AppError('CONFLICT', `The reservation of order ${orderId} was released`);
        throw new AppError('UNAVAILABLE', `The reservation of order ${orderId} is still in progress`);
      }
      await sleep(50);
    }
  }

  /**
   * Applies the final outcome to whatever the reservation actually took: each line reserved is
   * released or sold once (op keys), a released flash line gives back its member slots (and,
   * once the flash sale has ended, its units to the SKU). Safe to run any number of times.
   */
  async function applyFinal(reservation: ReservationDoc, final: Pick<ReservationFinalDoc, 'outcome'>) {
    const orderId = reservation._id;
    const kind = final.outcome === 'SOLD' ? 'SELL' : 'RELEASE';
    const reserved = new Map(
      (
        await models.StockEntry.find({ op: { $in: reservation.lines.map((l) => orderOp(orderId, 'RESERVE', l.account)) } }).lean<
          StockEntryDoc[]
        >()
      ).map((e) => [e.accountId, e]),
    );
    for (const line of reservation.lines) {
      const taken = reserved.get(line.account);
      if (!taken) continue;
      const fields = { orderId, ...(line.flashSaleId ? { flashSaleId: line.flashSaleId } : {}) };
      await append(line.account, orderOp(orderId, kind, line.account), (t) => move(t, kind, taken.qty, fields));
    }
    const flashLines = reservation.lines.filter((l) => l.flashSaleId);
    if (final.outcome === 'RELEASED' && flashLines.length) {
      await releaseHolds(flashLines, orderId, true);
      await models.FlashSlot.deleteMany({ orderId });
      for (const line of flashLines) {
        const flash = await models.FlashSale.findById(line.flashSaleId).lean<FlashSaleDoc>();
        if (flash && now() >= flash.endsAt) await settleFlash(line.flashSaleId!, flash.endsAt, now());
      }
    }
  }

  /**
   * Claims `<orderId>:final` (first claimant wins) and applies the winner's outcome. A loser
   * re-applies the winner's outcome, which finishes a step a crashed winner left half done.
   */
  async function finalise(orderId: string, outcome: FinalOutcome, cause: FinalCause, eventId?: string): Promise<ReservationFinalDoc> {
    const claim: ReservationFinalDoc = { _id: finalId(orderId), orderId, outcome, cause, at: now(), ...(eventId ? { eventId } : {}) };
    const final = (await claimOnce(models.ReservationFinal, { ...claim }))
      ? claim
      : ((await models.ReservationFinal.findById(claim._id).lean<ReservationFinalDoc>()) ?? claim);
    const reservation = await models.Reservation.findById(orderId).lean<ReservationDoc>();
    if (reservation) await applyFinal(reservation, final);
    return final;
  }

  // ---- flash sales ---------------------------------------------------------------------------

  /**
   * After the end: the quota left in the flash sale's account goes back to the SKU. The flash
   * side (QUOTA_RETURN) is written first; each one's SKU counterpart (FLASH_RETURN, op
   * `<entry>:back`) is then ensured, so a crash in between is repaired by the next pass. Works
   * from the ledger alone (the allocation entry names the SKU), so it also returns the quota of
   * a creation that crashed before its flash sale document was written. True when nothing is
   * left to do (no unit still reserved).
   */
  async function settleFlash(flashSaleId: string, endsAt: Date, at: Date): Promise<boolean> {
    if (at < endsAt) return false;
    const allocation = await models.StockEntry.findOne({ op: `${flashSaleId}:ALLOCATE` }).lean<StockEntryDoc>();
    if (!allocation) return true;
    const account = flashAccount(flashSaleId);
    const fields = { flashSaleId };
    await append(account, `${flashSaleId}:INITIAL`, (t, head) => (head ? null : move(t, 'INITIAL', allocation.qty, fields)));
    await append(account, null, (t) => {
      const left = availableOf(t);
      return left > 0 ? move(t, 'QUOTA_RETURN', left, fields) : null;
    });
    const returns = await models.StockEntry.find({ accountId: account, kind: 'QUOTA_RETURN' }).lean<StockEntryDoc[]>();
    for (const r of returns) {
      await append(allocation.accountId, `${r._id}:back`, (t) => move(t, 'FLASH_RETURN', r.qty, fields));
    }
    const head = await headOf(account);
    return !head || head.reserved === 0;
  }

  async function flashView(loaders: EntityLoaders & InventoryLoaders, flash: FlashSaleDoc, at: Date): Promise<FlashSaleView | null> {
    const id = flash._id.toHexString();
    const [sku, product, head] = await Promise.all([
      loaders.sku.load(flash.skuId.toHexString()),
      loaders.product.load(flash.productId.toHexString()),
      loaders.stockHead.load(flashAccount(id)),
    ]);
    if (!sku || !product) return null;
    const available = availableOf(totalsOf(head));
    const status = flashStatusAt(flash, available, at);
    return {
      id,
      sku,
      product,
      flashPrice: money(flash.flashPrice),
      quota: flash.quota,
      perMemberLimit: flash.perMemberLimit,
      startsAt: flash.startsAt,
      endsAt: flash.endsAt,
      status,
      remaining: status === 'ENDED' ? 0 : available,
    };
  }

  /** Customers see flash sales of products on sale; staff see all. */
  const flashVisible = (viewer: Viewer | null, view: FlashSaleView) => isStaff(viewer) || view.product.status === 'ON_SALE';

  function createInventoryLoaders() {
    return {
      /** The head entry of each account asked for in a tick: one indexed read each, deduplicated. */
      stockHead: new DataLoader<string, StockEntryDoc | null>((accounts) => Promise.all(accounts.map(headOf))),
      flashSale: byIdLoader(models.FlashSale),
      /** Flash sales of each SKU that have not ended, earliest start first. */
      flashSalesBySku: new DataLoader<string, FlashSaleDoc[]>(async (skuIds) => {
        const valid = skuIds.filter(isObjectId);
        const sales = valid.length
          ? await models.FlashSale.find({ skuId: { $in: valid }, endsAt: { $gt: now() } })
              .sort({ startsAt: 1, _id: 1 })
              .lean<FlashSaleDoc[]>()
          : [];
        return skuIds.map((id) => sales.filter((f) => f.skuId.toHexString() === id));
      }),
    };
  }
  type InventoryLoaders = ReturnType<typeof createInventoryLoaders>;

  // ---- the sweeper ---------------------------------------------------------------------------

  /**
   * Reservations that expired up to `at`, read from the sweep mark on (keyset pages by
   * expiresAt, id). One nobody finalised is released (EXPIRED) — unless it was refused without
   * taking anything (a refusal that took something claimed its final before answering). One
   * whose outcome was applied only half way (its winner crashed) is finished.
   */
  async function expireReservations(at: Date): Promise<number> {
    const mark = await models.SweepMark.findById('reservations').lean();
    let after: { expiresAt: Date; id: string } | null = null;
    const from = new Date((mark?.until ?? new Date(0)).getTime() - SWEEP_SKEW_MS);
    let expired = 0;
    let stuck = false;
    for (let page = 0; page < 10; page++) {
      const window: Record<string, unknown> = after
        ? { $or: [{ expiresAt: { $gt: after.expiresAt } }, { expiresAt: after.expiresAt, _id: { $gt: after.id } }] }
        : { expiresAt: { $gte: from } };
      const batch = await models.Reservation.find({ $and: [window, { expiresAt: { $lte: at } }] })
        .sort({ expiresAt: 1, _id: 1 })
        .limit(SWEEP_BATCH)
        .lean<ReservationDoc[]>();
      if (!batch.length) break;
      const ids = batch.map((r) => r._id);
      const [finals, results] = await Promise.all([
        findByIds<ReservationFinalDoc>(models.ReservationFinal, ids.map(finalId)),
        findByIds<ReservationResultDoc>(models.ReservationResult, ids, { ok: 1 }),
      ]);
      const finalOf = new Map(finals.map((f) => [f.orderId, f]));
      const refused = new Set(results.filter((r) => !r.ok).map((r) => r._id));
      const done = finals.length
        ? await completed(
            batch.filter((r) => finalOf.has(r._id)),
            finalOf,
          )
        : new Set<string>();
      let until: Date | null = null;
      for (const r of batch) {
        try {
          const final = finalOf.get(r._id);
          if (!final && !refused.has(r._id)) {
            if ((await finalise(r._id, 'RELEASED', 'EXPIRED')).cause === 'EXPIRED') expired++;
          } else if (final && !done.has(r._id)) {
            await applyFinal(r, final);
          }
          if (!stuck) until = r.expiresAt;
        } catch (err) {
          // Carry on with the others, but keep the mark before this one so it is tried again.
          logger.error({ err, orderId: r._id }, 'expiring a reservation failed; will retry');
          stuck = true;
        }
        after = { expiresAt: r.expiresAt, id: r._id };
      }
      // Progress is kept only past work that is done: a crash re-reads from the last mark.
      if (until) await saveMark(until);
      if (batch.length < SWEEP_BATCH) break;
    }
    return expired;
  }

  async function saveMark(until: Date) {
    const update = { $set: { until } };
    // Two first passes may both upsert: the loser's insert is a duplicate, its update is not.
    await models.SweepMark.updateOne({ _id: 'reservations' }, update, { upsert: true }).catch(async (err: unknown) => {
      if (!isDuplicateKey(err)) throw err;
      await models.SweepMark.updateOne({ _id: 'reservations' }, update);
    });
  }

  /** Of finalised reservations, those whose every reserved line already carries its outcome. */
  async function completed(reservations: ReservationDoc[], finalOf: Map<string, ReservationFinalDoc>): Promise<Set<string>> {
    const ops = reservations.flatMap((r) =>
      r.lines.flatMap((l) => {
        const kind = finalOf.get(r._id)!.outcome === 'SOLD' ? 'SELL' : 'RELEASE';
        return [orderOp(r._id, 'RESERVE', l.account), orderOp(r._id, kind, l.account)];
      }),
    );
    const present = new Set((await models.StockEntry.find({ op: { $in: ops } }, { op: 1 }).lean()).map((e) => e.op));
    const slotsHeld = new Set(
      (await models.FlashSlot.find({ orderId: { $in: reservations.map((r) => r._id) } }, { orderId: 1 }).lean()).map((s) => s.orderId),
    );
    const done = new Set<string>();
    for (const r of reservations) {
      const kind = finalOf.get(r._id)!.outcome === 'SOLD' ? 'SELL' : 'RELEASE';
      const linesDone = r.lines.every(
        (l) => !present.has(orderOp(r._id, 'RESERVE', l.account)) || present.has(orderOp(r._id, kind, l.account)),
      );
      if (linesDone && !(kind === 'RELEASE' && slotsHeld.has(r._id))) done.add(r._id);
    }
    return done;
  }

  /** Ended flash sales give their unsold quota back; done once nothing is reserved any more. */
  async function settleFlashSales(): Promise<number> {
    let settled = 0;
    const due = await models.FlashSettlement.find({ dueAt: { $lte: now() } })
      .sort({ dueAt: 1 })
      .limit(SWEEP_BATCH)
      .lean();
    for (const item of due) {
      if (await settleFlash(item._id, item.dueAt, now())) {
        await models.FlashSettlement.deleteOne({ _id: item._id });
        settled++;
      }
    }
    return settled;
  }

  /**
   * One pass: expired reservations, then ended flash sales. Every replica runs it; the claims
   * make concurrent passes harmless. `at` is the clock reservations expire by (tests pass a later
   * one); whether a flash sale has ended is always decided by the real clock, the one its
   * reservations are checked against.
   */
  async function sweepOnce(at: Date = now()): Promise<{ expired: number; settled: number }> {
    const expired = await expireReservations(at);
    const settled = await settleFlashSales();
    return { expired, settled };
  }

  const inventory = {
    loaders: createInventoryLoaders,

    /** Opens the ledgers of new SKUs: entry 1 is INITIAL with the stock they were created with. */
    async openAccounts(skus: SkuDoc[], at: Date): Promise<void> {
      await models.StockEntry.insertMany(
        skus.map((s) => {
          const skuId = s._id.toHexString();
          const after = applyMove(totalsOf(null), 'INITIAL', s.initialStock)!;
          return {
            _id: `${skuId}:1`,
            accountId: skuId,
            seq: 1,
            kind: 'INITIAL',
            qty: s.initialStock,
            op: `${skuId}:INITIAL`,
            at,
            ...after,
          };
        }),
      );
    },

    async discardAccounts(skuIds: string[]): Promise<void> {
      await models.StockEntry.deleteMany({ accountId: { $in: skuIds } });
      for (const id of skuIds) {
        forgetLedgerHead(models.StockEntry, id);
        lastWritten.delete(id);
        lastSeen.delete(id);
      }
    },

    async stockOf(viewer: Viewer | null, loaders: InventoryLoaders, sku: SkuDoc): Promise<StockView> {
      const t = totalsOf(await loaders.stockHead.load(sku._id.toHexString()));
      const staff = isStaff(viewer);
      return {
        available: availableOf(t),
        onHand: staff ? t.onHand : null,
        reserved: staff ? t.reserved : null,
        sold: staff ? t.sold : null,
        lowStockThreshold: staff ? sku.lowStockThreshold : null,
      };
    },

    /**
     * Regular stock available now of each SKU (unknown ids: 0), for quotes and cart views: from
     * what this replica saw in the last HOT_CACHE_MS, else from the ledger head.
     */
    async availableOf(skuIds: string[]): Promise<Map<string, number>> {
      const ids = [...new Set(skuIds)];
      const counts = await Promise.all(ids.map((id) => (isObjectId(id) ? available(id) : 0)));
      return new Map(ids.map((id, i) => [id, counts[i]!]));
    },

    async inStock(loaders: InventoryLoaders, skus: SkuDoc[]): Promise<boolean> {
      const heads = await loaders.stockHead.loadMany(skus.map((s) => s._id.toHexString()));
      return heads.some((h) => !(h instanceof Error) && availableOf(totalsOf(h)) > 0);
    },

    async stockLedger(viewer: Viewer | null, skuId: string, args: PageArgs): Promise<Page<StockEntryView>> {
      requireRole(viewer, 'STAFF');
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be 1..${MAX_PAGE}`, 'first');
      if (!isObjectId(skuId) || !(await models.Sku.exists({ _id: skuId }))) throw notFound('SKU');
      let before: number | null = null;
      if (args.after) {
        const seq = Number(Buffer.from(args.after, 'base64url').toString('utf8'));
        if (!Number.isSafeInteger(seq) || seq < 1) throw badInput('invalid cursor', 'after');
        before = seq;
      }
      // By seq, not time: the ledger's own order (clocks of replicas may disagree).
      const entries = await models.StockEntry.find({ accountId: skuId, ...(before ? { seq: { $lt: before } } : {}) })
        .sort({ seq: -1 })
        .limit(first + 1)
        .lean<StockEntryDoc[]>();
      const edges = entries.slice(0, first).map((e) => ({ node: entryView(e), cursor: Buffer.from(String(e.seq)).toString('base64url') }));
      return { edges, pageInfo: { hasNextPage: entries.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },

    /** Staff correction (stock-take, damage): an ADJUST entry with its reason; available never below zero. */
    async adjustStock(viewer: Viewer | null, input: AdjustStockInput): Promise<{ sku: SkuDoc; entry: StockEntryView }> {
      const v = requireRole(viewer, 'STAFF');
      if (!Number.isSafeInteger(input.delta) || input.delta === 0 || Math.abs(input.delta) > MAX_STOCK) {
        throw badInput(`delta must be a non-zero whole number from -${MAX_STOCK} to ${MAX_STOCK}`, 'delta');
      }
      const reason = requiredText(input.reason, 'reason', 200);
      const key = input.idempotencyKey == null ? null : requiredText(input.idempotencyKey, 'idempotencyKey', 100);
      const sku = isObjectId(input.skuId) ? await models.Sku.findById(input.skuId).lean<SkuDoc>() : null;
      if (!sku) throw notFound('SKU');
      const op = key ? `adjust:${sha256(`${v.id}\n${key}`)}` : null;
      const result = await append(input.skuId, op, (t) => {
        if (t.onHand + input.delta > MAX_STOCK) throw badInput(`Stock on hand cannot exceed ${MAX_STOCK}`, 'delta');
        return skuMove(sku, t, 'ADJUST', input.delta, { reason, by: v.id }, (before) =>
          badInput(`Only ${availableOf(before)} available: stock cannot go below zero`, 'delta'),
        );
      });
      const entry = result!.entry;
      if (!result!.fresh && (entry.accountId !== input.skuId || entry.qty !== input.delta || entry.reason !== reason)) {
        throw new AppError('CONFLICT', 'This idempotencyKey was used for a different adjustment');
      }
      return { sku, entry: entryView(entry) };
    },

    /**
     * Reserves every line or none (catalog.stock.reserve). The reservation record (unique per
     * order id) is the claim: a replay answers the first result. Lines are reserved one at a
     * time; if one is refused, the final claim `<orderId>:final` (RELEASED) gives back what the
     * earlier ones took. A release that wins while lines are still being reserved is honoured
     * when the claimant finishes.
     */
    async reserve(request: ReserveRequest): Promise<ReserveReply> {
      const { orderId, memberId } = request;
      const lines = parseLines(request.lines);
      const at = now();
      const reservation: ReservationDoc = {
        _id: orderId,
        memberId,
        lines,
        at,
        expiresAt: new Date(at.getTime() + deps.reservationTtlSeconds * 1000),
      };
      try {
        await models.Reservation.create(reservation);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const first = await models.Reservation.findById(orderId).lean<ReservationDoc>();
        if (!first) throw err;
        return replay(first, memberId, lines);
      }

      // Known short (the hot-item cache): refuse without queueing behind the SKU's queue. The
      // refusal is stored like any other answer, so a replay of this order answers the same.
      const short = lines.find((l) => knownShort(l.account, l.quantity));
      if (short) {
        await releaseHolds(lines, orderId, false);
        const refused = {
          _id: orderId,
          ...failure(outOfStock(short.skuId, short.flashSaleId ? { flashSaleId: short.flashSaleId } : {})),
          at: now(),
        };
        const first = (await claimOnce(models.ReservationResult, refused))
          ? refused
          : ((await models.ReservationResult.findById(orderId).lean<ReservationResultDoc>()) ?? refused);
        return answer(orderId, first);
      }

      let took = false;
      let final: ReservationFinalDoc | null = null;
      let result: Omit<ReservationResultDoc, '_id' | 'at'>;
      try {
        const checked = await checkLines(lines, at);
        for (const line of checked) {
          await reserveLine(orderId, memberId, line, () => {
            took = true;
          });
        }
        result = { ok: true, reservedAt: now() };
      } catch (err) {
        result = failure(err);
        // All or nothing: what the earlier lines (or member slots) took goes back, exactly once.
        if (took) final = await finalise(orderId, 'RELEASED', 'REFUSED');
      }
      if (!final) {
        // A release, cancel or expiry that won meanwhile (or before we started: orders gave up on
        // this reservation) may have missed lines taken after it looked: honour it now.
        final = await models.ReservationFinal.findById(finalId(orderId)).lean<ReservationFinalDoc>();
        if (final) await applyFinal(reservation, final);
        if (final && result.ok && final.outcome === 'RELEASED') {
          result = { ok: false, error: { code: 'CONFLICT', message: `Order ${orderId} was released while its stock was being reserved` } };
        }
      }
      const stored = { _id: orderId, ...result, at: now() };
      const first = (await claimOnce(models.ReservationResult, stored))
        ? stored
        : ((await models.ReservationResult.findById(orderId).lean<ReservationResultDoc>()) ?? stored);
      return answer(orderId, first);
    },

    /**
     * catalog.flash.unhold: the checkout stopped before reserving; what its quote holds at the gate
     * goes back. An order that did reserve keeps its units (its release is catalog.stock.release).
     */
    async unhold(orderId: string, flashSaleIds: string[]): Promise<{ orderId: string }> {
      if (await models.Reservation.exists({ _id: orderId })) return { orderId };
      await releaseHolds(
        flashSaleIds.map((flashSaleId) => ({ skuId: '', quantity: 0, account: flashAccount(flashSaleId), flashSaleId })),
        orderId,
        true,
      );
      return { orderId };
    },

    /** catalog.stock.release: idempotent; `released` is false only when the order was already sold. */
    async release(orderId: string): Promise<ReleaseReply> {
      const final = await finalise(orderId, 'RELEASED', 'RELEASE_REQUEST');
      return { orderId, released: final.outcome === 'RELEASED' };
    },

    /** orders.order.paid: the reservation becomes sold, unless it was released first. */
    async orderPaid(data: EventData<'orders.order.paid'>, eventId: string): Promise<void> {
      const { orderId } = data;
      if (!(await models.Reservation.exists({ _id: orderId }))) {
        logger.warn({ orderId, eventId }, 'order paid without a stock reservation; nothing to convert');
        await recordIncident('PAID_WITHOUT_RESERVATION', orderId, eventId, { paymentId: data.paymentId });
        return;
      }
      // A refusal that took nothing never claimed its final: claim it now, as a release.
      const refused = await models.ReservationResult.exists({ _id: orderId, ok: false });
      const final = refused ? await finalise(orderId, 'RELEASED', 'REFUSED') : await finalise(orderId, 'SOLD', 'PAID', eventId);
      if (final.outcome === 'RELEASED') {
        // The stock went back (expiry, cancel, failed checkout) and may already be sold to someone
        // else: never sell it twice. Orders refunds a payment for an order it cancelled.
        logger.error(
          { orderId, eventId, paymentId: data.paymentId, releasedBy: final.cause, releasedAt: final.at },
          'order paid after its stock reservation was released; nothing sold',
        );
        await recordIncident('PAID_AFTER_RELEASE', orderId, eventId, {
          paymentId: data.paymentId,
          releasedBy: final.cause,
          releasedAt: final.at,
        });
      }
    },

    /** orders.order.cancelled: the reservation goes back (a no-op if it was already finalised). */
    async orderCancelled(data: EventData<'orders.order.cancelled'>, eventId: string): Promise<void> {
      const final = await finalise(data.orderId, 'RELEASED', 'CANCELLED', eventId);
      if (final.outcome === 'SOLD') logger.warn({ orderId: data.orderId, eventId }, 'order cancelled after it was sold; stock left sold');
    },

    /** orders.order.refunded: returned goods go back on sale, once per refund (op per refund and SKU). */
    async orderRefunded(data: EventData<'orders.order.refunded'>, eventId: string): Promise<void> {
      const bySku = new Map<string, number>();
      for (const l of data.restock) bySku.set(l.skuId, (bySku.get(l.skuId) ?? 0) + l.quantity);
      for (const [skuId, qty] of bySku) {
        const sku = isObjectId(skuId) ? await models.Sku.findById(skuId).lean<SkuDoc>() : null;
        if (!sku) {
          logger.warn({ orderId: data.orderId, refundId: data.refundId, skuId }, 'restock of an unknown SKU skipped');
          await recordIncident('RESTOCK_UNKNOWN_SKU', data.orderId, eventId, { refundId: data.refundId, skuId, quantity: qty });
          continue;
        }
        const fields = { orderId: data.orderId, refundId: data.refundId };
        await append(skuId, `${data.refundId}:RESTOCK:${skuId}`, (t) => skuMove(sku, t, 'RESTOCK', qty, fields));
      }
    },

    /**
     * Carves the quota out of the SKU (FLASH_ALLOCATE) into the flash sale's own account, then
     * writes the flash sale, which makes it reachable. The settlement record written first returns
     * the quota at the end even if creation stops half way; with an idempotency key a replay
     * finishes (or finds) the same flash sale.
     */
    async createFlashSale(viewer: Viewer | null, input: CreateFlashSaleInput): Promise<FlashSaleDoc> {
      const v = requireRole(viewer, 'STAFF');
      const sku = isObjectId(input.skuId) ? await models.Sku.findById(input.skuId).lean<SkuDoc>() : null;
      if (!sku) throw notFound('SKU');
      const flashPrice = input.flashPrice;
      if (!Number.isSafeInteger(flashPrice) || flashPrice < 1 || flashPrice >= sku.price) {
        throw badInput('The flash price is a whole number of fen above zero and below the SKU price', 'flashPrice');
      }
      const quota = wholeNumber(input.quota, 'quota', 1, MAX_STOCK);
      const perMemberLimit = wholeNumber(input.perMemberLimit, 'perMemberLimit', 1, Math.min(MAX_PER_MEMBER_LIMIT, quota));
      const startsAt = new Date(input.startsAt);
      const endsAt = new Date(input.endsAt);
      if (!(startsAt < endsAt)) throw badInput('startsAt must be before endsAt', 'endsAt');
      if (endsAt <= now()) throw badInput('endsAt must be in the future', 'endsAt');
      const idemKey = input.idempotencyKey == null ? null : requiredText(input.idempotencyKey, 'idempotencyKey', 100);
      const hash = idemKey ? sha256(`${v.id}\ncreateFlashSale\n${idemKey}`) : null;
      const _id = hash ? objectIdFrom(hash) : new Types.ObjectId();
      const id = _id.toHexString();
      const key = hash ?? id;
      const replayed = await models.FlashSale.findOne({ key }).lean<FlashSaleDoc>();
      if (replayed) {
        const same =
          replayed.skuId.equals(sku._id) &&
          replayed.flashPrice === flashPrice &&
          replayed.quota === quota &&
          replayed.perMemberLimit === perMemberLimit &&
          replayed.startsAt.getTime() === startsAt.getTime() &&
          replayed.endsAt.getTime() === endsAt.getTime();
        if (!same) throw new AppError('CONFLICT', 'This idempotencyKey was used for a different flash sale');
        return replayed;
      }

      await claimOnce(models.FlashSettlement, { _id: id, dueAt: endsAt });
      const fields = { flashSaleId: id, by: v.id };
      let allocation: StockEntryDoc;
      try {
        const allocated = await append(input.skuId, `${id}:ALLOCATE`, (t) =>
          skuMove(sku, t, 'FLASH_ALLOCATE', quota, fields, (before) =>
            badInput(`Only ${availableOf(before)} available for the flash quota`, 'quota'),
          ),
        );
        allocation = allocated!.entry;
      } catch (err) {
        await models.FlashSettlement.deleteOne({ _id: id });
        throw err;
      }
      // A replay finishing a creation that stopped half way must not change what was carved.
      if (allocation.qty !== quota) throw new AppError('CONFLICT', 'This idempotencyKey was used for a different flash sale');
      await append(flashAccount(id), `${id}:INITIAL`, (t, head) => (head ? null : move(t, 'INITIAL', allocation.qty, fields)));
      const doc: FlashSaleDoc = {
        _id,
        key,
        skuId: sku._id,
        productId: sku.productId,
        flashPrice,
        quota,
        perMemberLimit,
        startsAt,
        endsAt,
        createdBy: v.id,
        createdAt: now(),
      };
      try {
        await models.FlashSale.create(doc);
        flashCache.delete(input.skuId);
        await deps.onFlashSaleCreated?.(sku.productId.toHexString());
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        return (await models.FlashSale.findOne({ key }).lean<FlashSaleDoc>()) ?? doc;
      }
      return doc;
    },

    async flashSale(viewer: Viewer | null, loaders: EntityLoaders & InventoryLoaders, id: string): Promise<FlashSaleView | null> {
      const flash = await loaders.flashSale.load(id);
      const view = flash && (await flashView(loaders, flash, now()));
      return view && flashVisible(viewer, view) ? view : null;
    },

    flashView: (loaders: EntityLoaders & InventoryLoaders, flash: FlashSaleDoc) => flashView(loaders, flash, now()),

    async listFlashSales(viewer: Viewer | null, loaders: EntityLoaders & InventoryLoaders, args: FlashSaleListArgs) {
      const at = now();
      const filter: Record<string, unknown> =
        args.status === 'UPCOMING'
          ? { startsAt: { $gt: at } }
          : args.status === 'ENDED'
            ? { endsAt: { $lte: at } }
            : args.status
              ? { startsAt: { $lte: at }, endsAt: { $gt: at } }
              : {};
      const page = await paginate(models.FlashSale, filter, args);
      const views = await Promise.all(page.edges.map(async (e) => ({ node: await flashView(loaders, e.node, at), cursor: e.cursor })));
      const edges = views.filter(
        (e): e is { node: FlashSaleView; cursor: string } =>
          e.node !== null && flashVisible(viewer, e.node) && (!args.status || e.node.status === args.status),
      );
      return { edges, pageInfo: page.pageInfo };
    },

    /** The SKU's live flash sale (one with quota left first), or else the next one. */
    async flashSaleOfSku(loaders: EntityLoaders & InventoryLoaders, sku: SkuDoc): Promise<FlashSaleView | null> {
      const at = now();
      const sales = await loaders.flashSalesBySku.load(sku._id.toHexString());
      const views = (await Promise.all(sales.map((f) => flashView(loaders, f, at)))).filter((v): v is FlashSaleView => v !== null);
      return (
        views.find((v) => v.status === 'LIVE') ??
        views.find((v) => v.status === 'SOLD_OUT') ??
        views.find((v) => v.status === 'UPCOMING') ??
        null
      );
    },

    /**
     * Flash prices for a member's quote: a line gets one when a flash sale of its SKU is live,
     * has the quantity left and the member stays within the limit (as of now; the reservation
     * decides for real).
     */
    async flashOffers(memberId: string, lines: { skuId: string; quantity: number }[], orderId?: string): Promise<Map<string, FlashOffer>> {
      const at = now();
      const skuIds = [...new Set(lines.map((l) => l.skuId).filter(isObjectId))];
      const live = (await pendingFlashSales(skuIds, at))
        .filter((f) => f.startsAt <= at && at < f.endsAt)
        .sort((a, b) => a.endsAt.getTime() - b.endsAt.getTime() || a._id.toHexString().localeCompare(b._id.toHexString()));
      const offers = new Map<string, FlashOffer>();
      if (!live.length) return offers;
      if (orderId) return admitOffers(live, memberId, lines, orderId);
      const ids = live.map((f) => f._id.toHexString());
      // A sold-out quota (usually known without a read: the hot-item cache) needs no slot reads.
      const remainders = await Promise.all(ids.map((id) => available(flashAccount(id))));
      const slots = await Promise.all(live.map((flash, i) => (remainders[i]! > 0 ? slotsOf(flash, memberId) : [])));
      for (const line of lines) {
        live.forEach((flash, i) => {
          if (offers.has(line.skuId) || flash.skuId.toHexString() !== line.skuId) return;
          const used = slots[i]!.length;
          const remaining = remainders[i]!;
          if (remaining >= line.quantity && used + line.quantity <= flash.perMemberLimit) {
            offers.set(line.skuId, { flashSaleId: ids[i]!, unitPrice: flash.flashPrice, remaining });
          }
        });
      }
      return offers;
    },

    sweepOnce,

    /**
     * The sweeper's timer: started by the service's init, stopped before NATS drains. `alsoRun`
     * are further passes of the same tick (the product listings' repair pass).
     */
    sweeper(intervalMs: number, alsoRun: (() => Promise<unknown>)[] = []) {
      let timer: NodeJS.Timeout | null = null;
      let running: Promise<unknown> | null = null;
      const tick = () => {
        if (running) return;
        running = sweepOnce()
          .catch((err: unknown) => logger.error({ err }, 'stock sweep failed'))
          .then(() => Promise.all(alsoRun.map((pass) => pass().catch((err: unknown) => logger.error({ err }, 'sweep pass failed')))))
          .finally(() => {
            running = null;
          });
      };
      return {
        start() {
          timer ??= setInterval(tick, intervalMs);
          timer.unref();
        },
        async stop() {
          if (timer) clearInterval(timer);
          timer = null;
          await running;
        },
      };
    },
  };
  return inventory;
}

export type InventoryService = ReturnType<typeof createInventoryService>;
export type InventoryLoaders = ReturnType<InventoryService['loaders']>;
