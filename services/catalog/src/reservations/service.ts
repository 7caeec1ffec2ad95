import type { EventData, ReplyData, RequestData } from '@flywheel/events';
import { AppError, claimOnce, isDuplicateKey, isObjectId, sleep, type ErrorCode, type Logger } from '@flywheel/service-kit';
import type { FlashAdmission } from '../flash-sales/admission';
import type { Models, SkuDoc } from '../model';
import type { StockAccounts } from '../stock/accounts';
import { finalId, type ReservationFinals } from './finals';
import { createLineReserver, outOfStock } from './lines';
import type { IncidentKind, ReservationDoc, ReservationFinalDoc, ReservationLineDoc, ReservationResultDoc } from './model';

export type ReserveRequest = RequestData<'catalog.stock.reserve'>;
export type ReserveReply = ReplyData<'catalog.stock.reserve'>;
export type ReleaseReply = ReplyData<'catalog.stock.release'>;

/** How long a replayed reservation waits for the first attempt's answer (under the bus timeout). */
const REPLAY_WAIT_MS = 2_000;

export interface ReservationDeps {
  models: Models;
  accounts: StockAccounts;
  admission: FlashAdmission;
  finals: ReservationFinals;
  logger: Logger;
  /** Unfinalised reservations are released after this long (longer than orders' unpaid timeout). */
  reservationTtlSeconds: number;
  now: () => Date;
}

export function createReservationService(deps: ReservationDeps) {
  const { models, logger, accounts, admission, finals, now } = deps;
  const reserver = createLineReserver(deps);
  async function recordIncident(kind: IncidentKind, orderId: string, eventId: string, detail: Record<string, unknown>) {
    await claimOnce(models.StockIncident, { _id: `${orderId}:${kind}`, kind, orderId, eventId, detail, at: now() });
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

  return {
    /**
     * Reserves every line or none (catalog.stock.reserve). The reservation record (unique per
     * order id) is the claim: a replay answers the first result. Lines are reserved one at a
     * time; if one is refused, the final claim `<orderId>:final` (RELEASED) gives back what the
     * earlier ones took. A release that wins while lines are still being reserved is honoured
     * when the claimant finishes.
     */
    async reserve(request: ReserveRequest): Promise<ReserveReply> {
      const { orderId, memberId } = request;
      const lines = reserver.parseLines(request.lines);
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
      const short = lines.find((l) => accounts.knownShort(l.account, l.quantity));
      if (short) {
        await admission.releaseHolds(lines, orderId, false);
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
        const checked = await reserver.checkLines(lines, memberId, at);
        for (const line of checked) {
          await reserver.reserveLine(orderId, memberId, line, () => {
            took = true;
          });
        }
        result = { ok: true, reservedAt: now() };
      } catch (err) {
        result = failure(err);
        // All or nothing: what the earlier lines (or member slots) took goes back, exactly once.
        if (took) final = await finals.finalise(orderId, 'RELEASED', 'REFUSED');
      }
      if (!final) {
        // A release, cancel or expiry that won meanwhile (or before we started: orders gave up on
        // this reservation) may have missed lines taken after it looked: honour it now.
        final = await models.ReservationFinal.findById(finalId(orderId)).lean<ReservationFinalDoc>();
        if (final) await finals.applyFinal(reservation, final);
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

    /** catalog.stock.release: idempotent; `released` is false only when the order was already sold. */
    async release(orderId: string): Promise<ReleaseReply> {
      const final = await finals.finalise(orderId, 'RELEASED', 'RELEASE_REQUEST');
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
      const final = refused
        ? await finals.finalise(orderId, 'RELEASED', 'REFUSED')
        : await finals.finalise(orderId, 'SOLD', 'PAID', eventId);
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
      const final = await finals.finalise(data.orderId, 'RELEASED', 'CANCELLED', eventId);
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
        await accounts.append(skuId, `${data.refundId}:RESTOCK:${skuId}`, (t) => accounts.skuMove(sku, t, 'RESTOCK', qty, fields));
      }
    },
  };
}

export type ReservationService = ReturnType<typeof createReservationService>;
