import { randomUUID } from 'node:crypto';
import type { OrderSource } from '@flywheel/events';
import { AppError, badInput, claimOnce, isDuplicateKey, outboxRecord, requireRole, type Logger, type Viewer } from '@flywheel/service-kit';
import type { CartService } from './cart/service';
import type { CatalogClient, StockLine } from './catalog';
import type { CheckoutDoc, CheckoutFinalDoc, Models, OrderDoc, OrderLineDoc, OrderSourceDoc, OrderSourceKind } from './model';
import { priceCheckout, type BenefitChoice, type QuoteAdjuster } from './pricing';
import { codeOf, CURRENCY, MAX_LINES, MAX_QUANTITY, sha256 } from './shared';
import type { UnpaidHolds } from './unpaid';

const SOURCE_KINDS: readonly OrderSourceKind[] = ['DIRECT', 'CONTENT', 'LIVE', 'COMMUNITY', 'REFERRAL'];

export interface PlaceOrderInput {
  /** Required unless `fromCart`. */
  lines?: { skuId: string; quantity: number }[] | null;
  idempotencyKey: string;
  /** DIRECT when omitted. */
  source?: { kind: OrderSourceKind; refId?: string | null } | null;
  /** Order what the member's cart holds (every line with a quantity), then take it out of the cart. */
  fromCart?: boolean | null;
  /** A coupon of the member's wallet; the best applicable one when omitted (unless `noCoupon`). */
  couponId?: string | null;
  noCoupon?: boolean | null;
  /** Points to spend on the order (membership caps them at a share of the order). */
  points?: number | null;
}

/** Test seams of the checkout saga (fault injection); empty in production. */
export interface CheckoutHooks {
  /** Runs right after stock is reserved: throwing fails the checkout, never resolving is a crash. */
  afterReserve?: (checkoutId: string) => Promise<void>;
  /** Runs after PLACED was decided and before the order is inserted (never resolving is a crash). */
  afterPlaced?: (checkoutId: string) => Promise<void>;
}

/** The order id for one member's checkout: the same key from the same member is the same order. */
export const orderIdFor = (memberId: string, idempotencyKey: string) => sha256(`placeOrder\0${memberId}\0${idempotencyKey}`).slice(0, 32);

/** Catalog's answers to a reservation it refused as a whole (packages/events: all lines or none). */
const RESERVE_REFUSALS = ['OUT_OF_STOCK', 'NOT_FOUND', 'BAD_USER_INPUT', 'CONFLICT'];

const finalIdOf = (checkoutId: string) => `${checkoutId}:final`;

/** The order's lines as the catalog priced them. */
function orderLinesOf(quote: Awaited<ReturnType<CatalogClient['quote']>>): OrderLineDoc[] {
  return quote.lines.map((l) => ({
    productId: l.productId,
    skuId: l.skuId,
    name: l.name,
    skuName: l.skuName,
    quantity: l.quantity,
    unitPrice: l.unitPrice,
    subtotal: l.unitPrice * l.quantity,
    priceKind: l.priceKind,
    ...(l.flashSaleId ? { flashSaleId: l.flashSaleId } : {}),
  }));
}

interface ParsedRequest {
  key: string;
  /** Null for a checkout from the cart. */
  lines: StockLine[] | null;
  source: OrderSourceDoc;
  benefits: BenefitChoice;
}

function parseBenefits(input: PlaceOrderInput): BenefitChoice {
  const couponId = input.couponId?.trim() || null;
  if (couponId && input.noCoupon) throw badInput('Either a couponId or noCoupon', 'couponId');
  const points = input.points ?? 0;
  if (!Number.isSafeInteger(points) || points < 0) throw badInput('points must be a whole number of 0 or more', 'points');
  return { couponId, noCoupon: Boolean(input.noCoupon), points };
}

/** Validated, with lines of the same SKU added together and ordered by SKU (a stable fingerprint). */
export function parseRequest(input: PlaceOrderInput): ParsedRequest {
  const key = (input.idempotencyKey ?? '').trim();
  if (key.length < 1 || key.length > 128) throw badInput('idempotencyKey must be 1 to 128 characters', 'idempotencyKey');
  const source = parseSource(input.source);
  const benefits = parseBenefits(input);
  if (input.fromCart) {
    if (input.lines?.length) throw badInput('A checkout from the cart takes its lines from the cart', 'lines');
    return { key, lines: null, source, benefits };
  }
  return { key, lines: mergeLines(input.lines ?? []), source, benefits };
}

export function mergeLines(raw: { skuId: string; quantity: number }[]): StockLine[] {
  if (raw.length < 1 || raw.length > MAX_LINES) throw badInput(`An order has 1 to ${MAX_LINES} lines`, 'lines');
  const merged = new Map<string, number>();
  raw.forEach((line, i) => {
    const skuId = (line.skuId ?? '').trim();
    if (!skuId) throw badInput('skuId is required', `lines[${i}].skuId`);
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_QUANTITY) {
      throw badInput(`Quantity must be 1 to ${MAX_QUANTITY}`, `lines[${i}].quantity`);
    }
    merged.set(skuId, (merged.get(skuId) ?? 0) + line.quantity);
  });
  for (const [skuId, quantity] of merged) {
    if (quantity > MAX_QUANTITY) throw badInput(`At most ${MAX_QUANTITY} of one SKU per order`, `lines(${skuId}).quantity`);
  }
  return [...merged].map(([skuId, quantity]) => ({ skuId, quantity })).sort((a, b) => (a.skuId < b.skuId ? -1 : 1));
}

function parseSource(raw: PlaceOrderInput['source']): OrderSourceDoc {
  const kind = raw?.kind ?? 'DIRECT';
  if (!SOURCE_KINDS.includes(kind)) throw badInput(`Unknown source kind ${kind}`, 'source.kind');
  const refId = raw?.refId?.trim() || null;
  if (kind === 'DIRECT') {
    if (refId) throw badInput('A DIRECT order has no source reference', 'source.refId');
    return { kind, refId: null };
  }
  if (!refId || refId.length > 128) throw badInput(`A ${kind} order needs its source reference (1 to 128 characters)`, 'source.refId');
  return { kind, refId };
}

/** The event contract names each kind's reference. */
export function eventSource({ kind, refId }: OrderSourceDoc): OrderSource {
  switch (kind) {
    case 'DIRECT':
      return { kind };
    case 'CONTENT':
      return { kind, articleId: refId! };
    case 'LIVE':
      return { kind, roomId: refId! };
    case 'COMMUNITY':
      return { kind, postId: refId! };
    case 'REFERRAL':
      return { kind, code: refId! };
  }
}

const abandoned = () => new AppError('CONFLICT', 'This checkout did not finish in time and was abandoned; start a new checkout');
const keyReused = () => new AppError('CONFLICT', 'This idempotency key was already used for a different order');

export interface CheckoutDeps {
  models: Models;
  catalog: CatalogClient;
  cart: CartService;
  /** The member's caps on what unpaid orders hold: taken before reserving, given back on failure. */
  unpaid: UnpaidHolds;
  adjusters: readonly QuoteAdjuster[];
  hooks: CheckoutHooks;
  kick: () => void;
  now: () => Date;
  recoverySeconds: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

/**
 * The checkout saga: quote (catalog, then the adjusters) → record the checkout → reserve stock →
 * lock adjustments → decide PLACED → insert the order with its `orders.order.placed` event.
 *
 * Claims (DESIGN.md §3), all keyed by the checkout id = order id = hash(member, key):
 * - `checkouts/<id>`: inserted right before reserving; the recovery sweeper's worklist.
 * - `checkout_finals/<id>:final`: PLACED | FAILED | ABANDONED, first insert wins. Only the winner
 *   of a non-PLACED outcome releases what the checkout holds; a PLACED claim carries the order,
 *   so whoever finds it (a replay, the sweeper) can finish the insert after a crash.
 * - `orders/<id>`: the order itself; inserting it twice is a no-op.
 * Before any of them, the checkout takes its share of the member's unpaid allowance (unpaid.ts):
 * over a cap it is refused with nothing written or reserved.
 * Reserve is idempotent per order id at catalog, so racing replays of one checkout hold stock once.
 */
export function createCheckout(deps: CheckoutDeps) {
  const { models, catalog, cart, adjusters, now } = deps;

  const finalOf = (checkoutId: string) => models.CheckoutFinal.findById(finalIdOf(checkoutId)).lean<CheckoutFinalDoc>();
  const settle = (checkoutId: string) => models.Checkout.updateOne({ _id: checkoutId }, { $set: { settledAt: now() } });

  /**
   * Gives back everything a checkout may hold: stock, then whatever adjusters locked (unless
   * catalog refused the reservation as a whole: then nothing was reserved or locked), then the
   * member's unpaid allowance, taken before reserving.
   */
  async function releaseHolds(checkoutId: string, memberId: string, reserved = true): Promise<void> {
    if (reserved) {
      await catalog.release(checkoutId);
      for (const a of adjusters) await a.release(checkoutId);
    }
    await deps.unpaid.release(memberId, checkoutId);
  }

  /** The order of a PLACED decision exists afterwards, whoever inserts it. */
  async function finish(order: OrderDoc): Promise<OrderDoc> {
    try {
      await models.Order.create(order);
      deps.kick();
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    await settle(order._id);
    return order;
  }

  /** What a decided checkout answers, to the request that decided it and to every replay. */
  async function answer(final: CheckoutFinalDoc, requestHash: string): Promise<OrderDoc> {
    if (final.requestHash !== requestHash) throw keyReused();
    if (final.outcome === 'PLACED') return (await models.Order.findById(final.checkoutId).lean<OrderDoc>()) ?? finish(final.order!);
    if (final.outcome === 'FAILED') throw new AppError(final.error!.code as never, final.error!.message);
    throw abandoned();
  }

  async function decidedByOther(checkoutId: string, requestHash: string): Promise<OrderDoc> {
    const final = await finalOf(checkoutId);
    if (!final) throw new Error(`checkout ${checkoutId}: claim lost but no decision found`);
    return answer(final, requestHash);
  }

  /** A failure after the checkout was recorded: decide FAILED, then give back what it holds. */
  async function fail(checkoutId: string, memberId: string, requestHash: string, err: unknown, held: boolean): Promise<OrderDoc> {
    const code = codeOf(err);
    if (!code) deps.logger?.error({ err, checkoutId }, 'checkout failed');
    const error = code ? { code, message: (err as Error).message } : { code: 'INTERNAL_SERVER_ERROR', message: 'Checkout failed' };
    const won = await claimOnce(models.CheckoutFinal, {
      _id: finalIdOf(checkoutId),
      checkoutId,
      outcome: 'FAILED',
      requestHash,
      at: now(),
      error,
    });
    // A racing replay decided first: its answer is this checkout's answer.
    if (!won) return decidedByOther(checkoutId, requestHash);
    try {
      await releaseHolds(checkoutId, memberId, held);
    } catch (releaseErr) {
      // Left unsettled: the recovery sweeper releases it.
      deps.logger?.warn({ err: releaseErr, checkoutId }, 'release after a failed checkout failed; the sweeper retries');
      throw err;
    }
    await settle(checkoutId);
    throw err;
  }

  function buildOrder(
    checkoutId: string,
    memberId: string,
    requestHash: string,
    source: OrderSourceDoc,
    quote: Awaited<ReturnType<CatalogClient['quote']>>,
    priced: Awaited<ReturnType<typeof priceCheckout>>,
  ): OrderDoc {
    const createdAt = now();
    const lines = orderLinesOf(quote);
    return {
      _id: checkoutId,
      memberId,
      status: 'PENDING_PAYMENT',
      lines,
      subtotal: priced.subtotal,
      adjustments: priced.adjustments,
      total: priced.total,
      currency: CURRENCY,
      source,
      requestHash,
      createdAt,
      outbox: outboxRecord(
        'orders.order.placed',
        {
          orderId: checkoutId,
          memberId,
          total: priced.total,
          currency: CURRENCY,
          lines: lines.map(({ skuId, productId, quantity, unitPrice }) => ({ skuId, productId, quantity, unitPrice })),
          source: eventSource(source),
        },
        randomUUID(),
        createdAt,
      ),
    };
  }

  return {
    /** Prices a checkout as placeOrder would, with no side effects (no reservation, no lock). */
    async preview(viewer: Viewer | null, input: Omit<PlaceOrderInput, 'idempotencyKey'>) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const req = parseRequest({ ...input, idempotencyKey: 'preview' });
      const lines = req.lines ?? (await cart.linesToOrder(memberId));
      if (!lines.length) throw badInput('The cart is empty', 'fromCart');
      const quote = await catalog.quote(lines, memberId);
      // A fresh id per preview: nothing is keyed by it, it only has to look like a checkout's.
      const priced = await priceCheckout(adjusters, {
        checkoutId: `preview-${randomUUID()}`,
        memberId,
        source: req.source,
        quote,
        benefits: req.benefits,
      });
      return { lines: orderLinesOf(quote), ...priced };
    },

    /**
     * Places an order once per (member, idempotency key). Nothing is payable unless stock was
     * reserved first; any failure after reserving releases it; a replay answers exactly what the
     * first request answered (its order, or its error).
     */
    async placeOrder(viewer: Viewer | null, input: PlaceOrderInput): Promise<OrderDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const req = parseRequest(input);
      const checkoutId = orderIdFor(memberId, req.key);
      const requestHash = sha256(
        JSON.stringify({
          ...(req.lines ? { lines: req.lines } : { cart: true }),
          source: req.source,
          // Only when asked for: the hash of a plain checkout stays what it was before benefits.
          ...(req.benefits.couponId || req.benefits.noCoupon || req.benefits.points ? { benefits: req.benefits } : {}),
        }),
      );

      // A replay answers with the checkout's decision: every order is inserted only after its
      // PLACED decision, so one read tells a first request from a replay (in a rush, the one
      // read a refused buyer costs here).
      const decided = await finalOf(checkoutId);
      if (decided) return answer(decided, requestHash);

      let lines = req.lines;
      if (!lines) {
        lines = await cart.linesToOrder(memberId);
        if (!lines.length) {
          // The replay of a cart checkout that emptied the cart finds its decision by now.
          const late = await finalOf(checkoutId);
          if (late) return answer(late, requestHash);
          throw badInput('The cart is empty', 'fromCart');
        }
      }

      // Nothing is written before catalog has priced every line: a refusal or an outage here
      // leaves no trace, and a retry with the same key starts afresh.
      // Named for this order: a flash line is decided at catalog's gate now, so a buyer it turns
      // away in a rush is refused below having written nothing.
      const quote = await catalog.quote(lines, memberId, checkoutId);
      // Known short at quote time (a sold-out flash SKU in a rush): refuse before writing or
      // reserving anything. Catalog's reservation stays the authority for every unit taken.
      const flashSaleIds = quote.lines.flatMap((l) => (l.flashSaleId ? [l.flashSaleId] : []));
      let priced: Awaited<ReturnType<typeof priceCheckout>>;
      try {
        const short = quote.lines.find((l) => l.available !== undefined && l.available < l.quantity);
        if (short) throw new AppError('OUT_OF_STOCK', `SKU ${short.skuId} is out of stock`, { skuId: short.skuId });
        priced = await priceCheckout(adjusters, { checkoutId, memberId, source: req.source, quote, benefits: req.benefits });
        // The member's unpaid allowance, before anything is held for them: over a cap the checkout
        // is refused having written and reserved nothing (a retry once they paid can succeed).
        await deps.unpaid.hold(
          memberId,
          checkoutId,
          quote.lines.map((l) => ({ skuId: l.skuId, quantity: l.quantity, flash: Boolean(l.flashSaleId) })),
        );
      } catch (err) {
        // Refused before reserving: the flash units the quote holds go back to the gate now (they
        // would anyway when the hold expires).
        if (flashSaleIds.length) {
          await catalog
            .unhold(checkoutId, flashSaleIds)
            .catch((e: unknown) => deps.logger?.warn({ err: e, checkoutId }, 'flash unhold failed'));
        }
        throw err;
      }

      // From here on the checkout may hold stock: record it first, so a crash leaves a trace.
      const recorded: CheckoutDoc = { _id: checkoutId, memberId, requestHash, createdAt: now(), settledAt: null };
      if (!(await claimOnce(models.Checkout, { ...recorded }))) {
        const first = await models.Checkout.findById(checkoutId).lean<CheckoutDoc>();
        if (first && first.requestHash !== requestHash) throw keyReused();
      }

      try {
        await catalog.reserve(
          checkoutId,
          memberId,
          quote.lines.map((l) => ({ skuId: l.skuId, quantity: l.quantity, ...(l.flashSaleId ? { flashSaleId: l.flashSaleId } : {}) })),
        );
      } catch (err) {
        const code = codeOf(err);
        // No answer: the reservation may or may not exist. The checkout stays undecided; a
        // replay re-asks (idempotent), or the recovery sweeper abandons and releases it.
        if (code === null || code === 'UNAVAILABLE') throw err;
        // A refusal is all or none: nothing is held. Anything else may have held part of it.
        return fail(checkoutId, memberId, requestHash, err, !RESERVE_REFUSALS.includes(code));
      }

      let order: OrderDoc;
      try {
        await deps.hooks.afterReserve?.(checkoutId);
        for (const a of adjusters) {
          await a.lock(
            checkoutId,
            memberId,
            priced.adjustments.filter((x) => x.adjuster === a.name),
          );
        }
        order = buildOrder(checkoutId, memberId, requestHash, req.source, quote, priced);
      } catch (err) {
        return fail(checkoutId, memberId, requestHash, err, true);
      }

      // Decide right before inserting: the recovery sweeper may have abandoned a slow checkout.
      const placed = await claimOnce(models.CheckoutFinal, {
        _id: finalIdOf(checkoutId),
        checkoutId,
        outcome: 'PLACED',
        requestHash,
        at: now(),
        order,
      });
      if (!placed) return decidedByOther(checkoutId, requestHash);
      await deps.hooks.afterPlaced?.(checkoutId);
      await finish(order);
      if (!req.lines) {
        await cart.checkedOut(memberId, checkoutId, lines).catch((err: unknown) => {
          deps.logger?.warn({ err, checkoutId }, 'ordered lines stay in the cart');
        });
      }
      return order;
    },

    /**
     * The recovery sweeper: checkouts recorded longer ago than the recovery window and still
     * holding something. Undecided ones (their process died between reserve and order) are
     * claimed ABANDONED and released; PLACED ones get their order; FAILED or ABANDONED ones
     * whose release never completed are released again (catalog releases at most once).
     */
    async recover(at: Date = now()): Promise<{ abandoned: number; released: number; completed: number }> {
      const cutoff = new Date(at.getTime() - deps.recoverySeconds * 1000);
      const stuck = await models.Checkout.find({ settledAt: null, createdAt: { $lt: cutoff } })
        .sort({ createdAt: 1 })
        .limit(100)
        .lean<CheckoutDoc[]>();
      const tally = { abandoned: 0, released: 0, completed: 0 };
      for (const c of stuck) {
        try {
          let final = await finalOf(c._id);
          if (!final) {
            const won = await claimOnce(models.CheckoutFinal, {
              _id: finalIdOf(c._id),
              checkoutId: c._id,
              outcome: 'ABANDONED',
              requestHash: c.requestHash,
              at,
            });
            if (won) {
              tally.abandoned++;
              await releaseHolds(c._id, c.memberId);
              await settle(c._id);
              tally.released++;
              continue;
            }
            final = (await finalOf(c._id))!;
          }
          if (final.outcome === 'PLACED') {
            await finish(final.order!);
            tally.completed++;
          } else if (final.at < cutoff) {
            // Decided long ago by someone who never finished releasing (crash, catalog down).
            await releaseHolds(c._id, c.memberId);
            await settle(c._id);
            tally.released++;
          }
        } catch (err) {
          deps.logger?.warn({ err, checkoutId: c._id }, 'checkout recovery failed; will retry');
        }
      }
      return tally;
    },
  };
}
export type Checkout = ReturnType<typeof createCheckout>;
