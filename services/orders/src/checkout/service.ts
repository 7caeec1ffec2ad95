import { randomUUID } from 'node:crypto';
import { AppError, badInput, claimOnce, requireRole, sha256, type Logger, type Viewer } from '@flywheel/service-kit';
import type { CartService } from '../cart/service';
import type { CatalogClient } from '../clients/catalog';
import type { AddressSnapshot } from '../clients/membership';
import { orderPlaced } from '../events';
import type { Models, OrderDoc, OrderLineDoc } from '../order/model';
import type { Shipping } from '../shipping';
import type { OrderShippingDoc } from '../shipping/model';
import { codeOf, CURRENCY, type CatalogQuote, type OrderSourceDoc } from '../types';
import { createCheckoutFinals, finalIdOf, keyReused } from './finals';
import type { CheckoutDoc, CheckoutModels } from './model';
import { priceCheckout, type PricedCheckout, type QuoteAdjuster } from './pricing';
import { parseRequest, type PlaceOrderInput } from './request';
import type { UnpaidHolds } from './unpaid';

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

/** The order's lines as the catalog priced them. */
function orderLinesOf(quote: CatalogQuote): OrderLineDoc[] {
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

export interface CheckoutDeps {
  models: Models & CheckoutModels;
  catalog: CatalogClient;
  cart: CartService;
  shipping: Shipping;
  /** The member's caps on what unpaid orders hold: taken before reserving, given back on failure. */
  unpaid: UnpaidHolds;
  adjusters: readonly QuoteAdjuster[];
  hooks: CheckoutHooks;
  kick: () => void;
  now: () => Date;
  recoverySeconds: number;
  logger?: Pick<Logger, 'warn' | 'error'>;
  /** Pays a zero-total order at once (payments' settlement): no intent, no provider. */
  settleFree?: (order: OrderDoc) => Promise<unknown>;
}

/**
 * The checkout saga: quote (catalog, then the adjusters) → record the checkout → reserve stock →
 * lock adjustments → decide PLACED → insert the order with its `orders.order.placed` event.
 *
 * Claims (docs/concurrency.md), all keyed by the checkout id = order id = hash(member, key):
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
  const { models, catalog, cart, adjusters, shipping, now } = deps;

  /** The shipping charge of a priced checkout: the address's province, the lines, the goods after discounts. */
  const feeOf = (address: AddressSnapshot | null, quote: CatalogQuote, priced: PricedCheckout) =>
    shipping.feeFor({
      provinceCode: address?.provinceCode ?? null,
      provinceName: address?.provinceName ?? null,
      lines: quote.lines.map((l) => ({ quantity: l.quantity, ...(l.weightGrams !== undefined ? { weightGrams: l.weightGrams } : {}) })),
      goodsTotal: priced.total,
      tierFreeShipping: Boolean(priced.freeShipping),
    });

  const { finalOf, settle, releaseHolds, finish, answer, decidedByOther, fail } = createCheckoutFinals(deps);

  function buildOrder(
    checkoutId: string,
    memberId: string,
    requestHash: string,
    source: OrderSourceDoc,
    quote: CatalogQuote,
    priced: PricedCheckout,
    fee: OrderShippingDoc,
    address: AddressSnapshot | null,
  ): OrderDoc {
    const createdAt = now();
    const order: OrderDoc = {
      _id: checkoutId,
      memberId,
      status: 'PENDING_PAYMENT',
      lines: orderLinesOf(quote),
      subtotal: priced.subtotal,
      adjustments: priced.adjustments,
      total: priced.total + fee.fee,
      shipping: fee,
      ...(address ? { shippingAddress: shipping.seal(address) } : {}),
      ...(priced.adjustments.some((a) => a.kind === 'GROUP_BUY') ? { grouping: true } : {}),
      currency: CURRENCY,
      source,
      requestHash,
      createdAt,
    };
    return { ...order, outbox: orderPlaced(order, createdAt) };
  }

  return {
    /** Prices a checkout as placeOrder would, with no side effects (no reservation, no lock). */
    async preview(viewer: Viewer | null, input: Omit<PlaceOrderInput, 'idempotencyKey'>) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const req = parseRequest({ ...input, idempotencyKey: 'preview' });
      const lines = req.lines ?? (await cart.linesToOrder(memberId));
      if (!lines.length) throw badInput('The cart is empty', 'fromCart');
      const address = await shipping.addressFor(memberId, req.addressId);
      const quote = await catalog.quote(lines, memberId);
      // A fresh id per preview: nothing is keyed by it, it only has to look like a checkout's.
      const priced = await priceCheckout(adjusters, {
        checkoutId: `preview-${randomUUID()}`,
        memberId,
        source: req.source,
        quote,
        benefits: req.benefits,
        referralOffer: req.referralOffer,
      });
      const fee = await feeOf(address, quote, priced);
      return {
        lines: orderLinesOf(quote),
        subtotal: priced.subtotal,
        adjustments: priced.adjustments,
        total: priced.total + fee.fee,
        shipping: fee,
        shippingAddress: address ? shipping.open(address) : null,
      };
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
          ...(req.addressId ? { addressId: req.addressId } : {}),
          ...(req.referralOffer ? { referralOffer: req.referralOffer } : {}),
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

      // The address first (nothing is held yet): another member's address, or an unknown one, refuses here.
      const address = await shipping.addressFor(memberId, req.addressId);

      // Nothing is written before catalog has priced every line: a refusal or an outage here
      // leaves no trace, and a retry with the same key starts afresh.
      // Named for this order: a flash line is decided at catalog's gate now, so a buyer it turns
      // away in a rush is refused below having written nothing.
      const quote = await catalog.quote(lines, memberId, checkoutId);
      // Known short at quote time (a sold-out flash SKU in a rush): refuse before writing or
      // reserving anything. Catalog's reservation stays the authority for every unit taken.
      const flashSaleIds = quote.lines.flatMap((l) => (l.flashSaleId ? [l.flashSaleId] : []));
      let priced: PricedCheckout;
      let fee: OrderShippingDoc;
      try {
        const short = quote.lines.find((l) => l.available !== undefined && l.available < l.quantity);
        if (short) throw new AppError('OUT_OF_STOCK', `SKU ${short.skuId} is out of stock`, { skuId: short.skuId });
        priced = await priceCheckout(adjusters, {
          checkoutId,
          memberId,
          source: req.source,
          quote,
          benefits: req.benefits,
          referralOffer: req.referralOffer,
        });
        // An undeliverable province is refused here, before anything is held.
        fee = await feeOf(address, quote, priced);
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
            { referralOffer: req.referralOffer },
          );
        }
        order = buildOrder(checkoutId, memberId, requestHash, req.source, quote, priced, fee, address);
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
