import { AppError, appendToLedger, badInput, ledgerHead, type Logger } from '@flywheel/service-kit';
import type { Models } from '../order/model';
import { statusOf } from '../order/state';
import type { CheckoutModels, HeldLineDoc } from './model';

// Unpaid orders hold stock until they are paid or cancelled (ORDER_PAYMENT_TIMEOUT_SECONDS), so
// without a cap one member can hold a SKU's whole stock, and renew the hold each time it expires.
// Every checkout takes its share of the member's allowance (orders, units, flash units per SKU)
// before it reserves anything, as a HOLD entry of the member's own ledger; the order gives it
// back exactly once — when it is paid, cancelled or expires, or when its checkout fails. The
// ledger's head carries everything held, so concurrent checkouts of one member are decided one
// at a time against the real head (docs/concurrency.md, "Ledgers"): a member racing themself gets exactly the cap.

export interface UnpaidCaps {
  /** Orders waiting for payment at once. */
  orders: number;
  /** Units of all SKUs together. */
  units: number;
  /** Units of one SKU bought at a flash price. */
  flashUnitsPerSku: number;
}

export interface HoldLine {
  skuId: string;
  quantity: number;
  flash: boolean;
}

export interface UnpaidDeps {
  models: Pick<Models, 'Order' | 'OrderTransition'> & CheckoutModels;
  caps: UnpaidCaps;
  now: () => Date;
  /** A hold whose checkout left no trace at all is stale this long after it was taken. */
  recoverySeconds: number;
  logger?: Pick<Logger, 'warn'>;
}

const ordersIn = (open: readonly HeldLineDoc[]) => [...new Set(open.map((l) => l.orderId))];
const sum = (lines: readonly { quantity: number }[]) => lines.reduce((s, l) => s + l.quantity, 0);

/** Units per SKU of the flash lines. */
function flashUnits(lines: readonly { skuId: string; quantity: number; flash: boolean }[]): Map<string, number> {
  const by = new Map<string, number>();
  for (const l of lines) if (l.flash) by.set(l.skuId, (by.get(l.skuId) ?? 0) + l.quantity);
  return by;
}

export function createUnpaidHolds(deps: UnpaidDeps) {
  const { models, caps, now } = deps;
  const Ledger = models.UnpaidHold;

  /** Why adding `lines` to what is held would break a cap; null when it would not. */
  function overCap(open: readonly HeldLineDoc[], lines: readonly HoldLine[]): AppError | null {
    const orders = ordersIn(open).length;
    if (orders + 1 > caps.orders) {
      return new AppError(
        'CONFLICT',
        `You have ${orders} orders waiting for payment (at most ${caps.orders}): pay or cancel one before placing another`,
        { reason: 'UNPAID_ORDERS_LIMIT', limit: caps.orders },
      );
    }
    const units = sum(open);
    if (units + sum(lines) > caps.units) {
      return new AppError(
        'CONFLICT',
        `Your unpaid orders already hold ${units} units (at most ${caps.units} in all): pay or cancel one first`,
        { reason: 'UNPAID_UNITS_LIMIT', limit: caps.units },
      );
    }
    const held = flashUnits(open);
    for (const [skuId, quantity] of flashUnits(lines)) {
      if ((held.get(skuId) ?? 0) + quantity > caps.flashUnitsPerSku) {
        return new AppError(
          'CONFLICT',
          `Your unpaid orders already hold ${held.get(skuId) ?? 0} flash-sale units of SKU ${skuId} (at most ${caps.flashUnitsPerSku}): pay or cancel one first`,
          { reason: 'UNPAID_FLASH_UNITS_LIMIT', limit: caps.flashUnitsPerSku, skuId },
        );
      }
    }
    return null;
  }

  /** An order that could never fit, whatever the member pays first: a bad request, not a conflict. */
  function tooLarge(lines: readonly HoldLine[]): AppError | null {
    if (sum(lines) > caps.units) return badInput(`An unpaid order holds at most ${caps.units} units`, 'lines');
    for (const [skuId, quantity] of flashUnits(lines)) {
      if (quantity > caps.flashUnitsPerSku) {
        return badInput(`At most ${caps.flashUnitsPerSku} units of a flash-sale SKU per unpaid order`, `lines(${skuId}).quantity`);
      }
    }
    return null;
  }

  /** Gives back what an order holds; a no-op when it holds nothing (already given back, or never held). */
  async function release(memberId: string, orderId: string): Promise<boolean> {
    const entry = await appendToLedger(Ledger, memberId, (head) => {
      const open = head?.open ?? [];
      if (!open.some((l) => l.orderId === orderId)) return null;
      return { op: 'RELEASE' as const, orderId, at: now(), open: open.filter((l) => l.orderId !== orderId) };
    });
    return entry !== null;
  }

  /**
   * Whether a hold still stands for something that may become (or is) an unpaid order. Holds are
   * given back where orders leave PENDING_PAYMENT and where checkouts fail, but a crash between
   * that and the release (or a replay racing its own checkout) can leave one behind: a member at
   * a cap has theirs checked before being refused, so a stale hold never locks anyone out.
   */
  async function stillHeld(line: HeldLineDoc, at: Date): Promise<boolean> {
    const order = await models.Order.findById(line.orderId, { _id: 1 }).lean();
    if (order) return statusOf(await ledgerHead(models.OrderTransition, line.orderId)) === 'PENDING_PAYMENT';
    const final = await models.CheckoutFinal.findById(`${line.orderId}:final`, { outcome: 1 }).lean();
    // PLACED: the order is being inserted. FAILED or ABANDONED: nothing will ever be payable.
    if (final) return final.outcome === 'PLACED';
    // Recorded and undecided: still running, or the recovery sweeper will decide (and release) it.
    if (await models.Checkout.findById(line.orderId, { _id: 1 }).lean()) return true;
    // No trace: the checkout died between taking the hold and recording itself.
    return at.getTime() - new Date(line.heldAt).getTime() < deps.recoverySeconds * 1000;
  }

  async function releaseStale(memberId: string, open: readonly HeldLineDoc[]): Promise<number> {
    const at = now();
    let released = 0;
    for (const orderId of ordersIn(open)) {
      const line = open.find((l) => l.orderId === orderId)!;
      if (!(await stillHeld(line, at)) && (await release(memberId, orderId))) {
        deps.logger?.warn({ memberId, orderId }, 'released a stale unpaid hold');
        released++;
      }
    }
    return released;
  }

  return {
    /**
     * Takes the checkout's share of the member's allowance, or refuses (CONFLICT; BAD_USER_INPUT
     * for an order no allowance could ever fit) having written nothing. A replay of a checkout
     * that already holds its share takes nothing more.
     */
    async hold(memberId: string, orderId: string, lines: readonly HoldLine[]): Promise<void> {
      const alone = tooLarge(lines);
      if (alone) throw alone;
      for (let attempt = 0; ; attempt++) {
        // Decided inside the append, against the head of each attempt; read after it.
        const decided: { refusal: AppError | null; open: readonly HeldLineDoc[] } = { refusal: null, open: [] };
        await appendToLedger(Ledger, memberId, (head) => {
          const open = head?.open ?? [];
          decided.open = open;
          decided.refusal = null;
          if (open.some((l) => l.orderId === orderId)) return null;
          decided.refusal = overCap(open, lines);
          if (decided.refusal) return null;
          const heldAt = now();
          return { op: 'HOLD' as const, orderId, at: heldAt, open: [...open, ...lines.map((l) => ({ ...l, orderId, heldAt }))] };
        });
        if (!decided.refusal) return;
        // At a cap: give back holds that no longer stand, then decide once more.
        if (attempt > 0 || (await releaseStale(memberId, decided.open)) === 0) throw decided.refusal;
      }
    },

    release,

    /** What the member holds unpaid right now (the head of their ledger). */
    async heldBy(memberId: string): Promise<{ orders: string[]; units: number; flashUnits: Record<string, number> }> {
      const open = (await ledgerHead(Ledger, memberId))?.open ?? [];
      return { orders: ordersIn(open), units: sum(open), flashUnits: Object.fromEntries(flashUnits(open)) };
    },
  };
}
export type UnpaidHolds = ReturnType<typeof createUnpaidHolds>;
