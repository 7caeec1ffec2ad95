import { claimOnce } from '@flywheel/service-kit';
import type { FlashAdmission } from '../flash-sales/admission';
import type { FlashSaleDoc } from '../flash-sales/model';
import type { FlashSaleService } from '../flash-sales/service';
import type { Models } from '../model';
import type { StockAccounts } from '../stock/accounts';
import type { StockEntryDoc } from '../stock/model';
import type { FinalCause, FinalOutcome, ReservationDoc, ReservationFinalDoc } from './model';

/** Op keys: what an entry does, unique across the ledger (see StockEntryDoc.op). */
export const orderOp = (orderId: string, kind: 'RESERVE' | 'RELEASE' | 'SELL', account: string) => `${orderId}:${kind}:${account}`;
export const finalId = (orderId: string) => `${orderId}:final`;

export interface FinalsDeps {
  models: Models;
  accounts: StockAccounts;
  admission: FlashAdmission;
  flashSales: Pick<FlashSaleService, 'settleFlash'>;
  now: () => Date;
}

/** How a reservation ends: released or sold exactly once, whoever (payment, cancel, expiry) gets there first. */
export function createReservationFinals({ models, accounts, admission, flashSales, now }: FinalsDeps) {
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
      await accounts.append(line.account, orderOp(orderId, kind, line.account), (t) => accounts.move(t, kind, taken.qty, fields));
    }
    const flashLines = reservation.lines.filter((l) => l.flashSaleId);
    if (final.outcome === 'RELEASED' && flashLines.length) {
      await admission.releaseHolds(flashLines, orderId, true);
      await models.FlashSlot.deleteMany({ orderId });
      for (const line of flashLines) {
        const flash = await models.FlashSale.findById(line.flashSaleId).lean<FlashSaleDoc>();
        if (flash && now() >= flash.endsAt) await flashSales.settleFlash(line.flashSaleId!, flash.endsAt, now());
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

  return { applyFinal, finalise };
}

export type ReservationFinals = ReturnType<typeof createReservationFinals>;
