import { findByIds, isDuplicateKey, type Logger } from '@flywheel/service-kit';
import type { FlashSaleService } from '../flash-sales/service';
import type { Models } from '../model';
import { finalId, orderOp, type ReservationFinals } from '../reservations/finals';
import type { ReservationDoc, ReservationFinalDoc, ReservationResultDoc } from '../reservations/model';

export const SWEEP_BATCH = 200;
/** Reservations that expired this long before the sweeper's mark are read again (clock skew between replicas). */
const SWEEP_SKEW_MS = 10_000;

export interface SweeperDeps {
  models: Models;
  finals: ReservationFinals;
  flashSales: Pick<FlashSaleService, 'settleFlashSales'>;
  logger: Logger;
  now: () => Date;
}

/** The periodic repair work: expired reservations released (or finished), ended flash sales settled. */
export function createSweeperService({ models, finals: { finalise, applyFinal }, flashSales, logger, now }: SweeperDeps) {
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

  /**
   * One pass: expired reservations, then ended flash sales. Every replica runs it; the claims
   * make concurrent passes harmless. `at` is the clock reservations expire by (tests pass a later
   * one); whether a flash sale has ended is always decided by the real clock, the one its
   * reservations are checked against.
   */
  async function sweepOnce(at: Date = now()): Promise<{ expired: number; settled: number }> {
    const expired = await expireReservations(at);
    const settled = await flashSales.settleFlashSales();
    return { expired, settled };
  }

  return {
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
}

export type SweeperService = ReturnType<typeof createSweeperService>;
