import { AppError, claimOnce, findByIds, fromBusError, isObjectId, type Bus, type Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { ReservationLineDoc } from '../reservations/model';
import type { StockAccounts } from '../stock/accounts';
import { flashAccount } from '../stock/ledger';
import type { FlashGate, GateSale } from './gate';
import type { FlashSaleDoc } from './model';

/** How long a checkout's flash hold waits for its reservation before the units go back. */
export const DEFAULT_HOLD_MS = 30_000;

/** A member's flash price for a quote line. */
export interface FlashOffer {
  flashSaleId: string;
  unitPrice: number;
  /** The flash sale's quota still available as of the offer. */
  remaining: number;
}

export interface FlashAdmissionDeps {
  models: Models;
  accounts: StockAccounts;
  /** Decides flash-sale buyers before anything is written (gate.ts). */
  gate: FlashGate;
  /** Asks community whether a member is in a group-exclusive flash sale's group. */
  bus: Pick<Bus, 'request'>;
  logger: Pick<Logger, 'warn'>;
  now: () => Date;
}

/**
 * Who may buy a flash sale: quote-time offers and admission at the gate, the member's limit
 * (slots), and giving back what a checkout held.
 */
export function createFlashAdmission({ models, accounts, gate, bus, logger, now }: FlashAdmissionDeps) {
  const flashLimit = (skuId: string, flash: FlashSaleDoc) =>
    new AppError('BAD_USER_INPUT', `At most ${flash.perMemberLimit} per member in flash sale ${flash._id.toHexString()}`, {
      skuId,
      flashSaleId: flash._id.toHexString(),
      limit: flash.perMemberLimit,
      reason: 'FLASH_SALE_LIMIT',
    });

  const notInGroup = (skuId: string, flash: FlashSaleDoc) =>
    new AppError('FORBIDDEN', `Flash sale ${flash._id.toHexString()} is for members of its community group only`, {
      skuId,
      flashSaleId: flash._id.toHexString(),
      reason: 'NOT_IN_GROUP',
      field: 'flashSaleId',
    });

  const inGroup = async (groupId: string, memberId: string) =>
    (await bus.request('community.group.membership', { groupId, memberId })).member;

  /**
   * The groups (of those given) the member is in now: one community request per distinct group.
   * For showing and pricing only: a group that does not answer counts as not joined (logged), so
   * its sales stay hidden and its lines are quoted at the normal price.
   */
  async function joinedGroups(memberId: string, groupIds: Iterable<string>): Promise<Set<string>> {
    const asked = await Promise.all(
      [...new Set(groupIds)].map((groupId) =>
        inGroup(groupId, memberId).then(
          (member) => (member ? groupId : null),
          (err: unknown) => {
            logger.warn({ err, groupId, memberId }, 'group membership unknown; its group-exclusive flash sales skipped');
            return null;
          },
        ),
      ),
    );
    return new Set(asked.filter((g): g is string => g !== null));
  }

  /**
   * A reservation's lines of group-exclusive flash sales: refused (FORBIDDEN, NOT_IN_GROUP) unless
   * the member is in each one's group, one request per distinct group. The quote never offers
   * such a line to a non-member; this keeps a crafted request from buying it. Community not
   * answering refuses too (UNAVAILABLE).
   */
  async function requireInGroups(memberId: string, lines: { skuId: string; flash: FlashSaleDoc | null }[]): Promise<void> {
    const known = new Map<string, boolean>();
    for (const { skuId, flash } of lines) {
      const groupId = flash?.groupId;
      if (!flash || !groupId) continue;
      if (!known.has(groupId)) known.set(groupId, await inGroup(groupId, memberId).catch(fromBusError));
      if (!known.get(groupId)) throw notInGroup(skuId, flash);
    }
  }

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
      accounts.forget(flashAccount(id));
      return accounts.available(flashAccount(id));
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

  return {
    flashLimit,
    joinedGroups,
    requireInGroups,
    slotsOf,
    takeSlots,
    admit,
    releaseHolds,
    /** The reserved order keeps its units: its hold at the gate becomes final. */
    confirm: (flashSaleId: string, orderId: string) =>
      gate.confirm(flashSaleId, orderId).catch((err: unknown) => logger.warn({ err, orderId }, 'flash gate confirm failed')),
    /** Drops this replica's copy of a SKU's pending flash sales (one was just created). */
    forgetSku: (skuId: string) => flashCache.delete(skuId),

    /**
     * Flash prices for a member's quote: a line gets one when a flash sale of its SKU is live,
     * open to the member (a group-exclusive one only to members of its group, asked before the
     * gate so a non-member is never admitted), has the quantity left and the member stays within
     * the limit (as of now; the reservation decides for real).
     */
    async flashOffers(memberId: string, lines: { skuId: string; quantity: number }[], orderId?: string): Promise<Map<string, FlashOffer>> {
      const at = now();
      const skuIds = [...new Set(lines.map((l) => l.skuId).filter(isObjectId))];
      const pending = (await pendingFlashSales(skuIds, at)).filter((f) => f.startsAt <= at && at < f.endsAt);
      const joined = await joinedGroups(
        memberId,
        pending.flatMap((f) => (f.groupId ? [f.groupId] : [])),
      );
      const live = pending
        .filter((f) => !f.groupId || joined.has(f.groupId))
        .sort((a, b) => a.endsAt.getTime() - b.endsAt.getTime() || a._id.toHexString().localeCompare(b._id.toHexString()));
      const offers = new Map<string, FlashOffer>();
      if (!live.length) return offers;
      if (orderId) return admitOffers(live, memberId, lines, orderId);
      const ids = live.map((f) => f._id.toHexString());
      // A sold-out quota (usually known without a read: the hot-item cache) needs no slot reads.
      const remainders = await Promise.all(ids.map((id) => accounts.available(flashAccount(id))));
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
  };
}

export type FlashAdmission = ReturnType<typeof createFlashAdmission>;
