import { AppError, badInput, findByIds, isObjectId } from '@flywheel/service-kit';
import type { FlashAdmission } from '../flash-sales/admission';
import type { FlashSaleDoc } from '../flash-sales/model';
import type { Models, ProductDoc, SkuDoc } from '../model';
import type { StockAccounts } from '../stock/accounts';
import { flashAccount, MAX_LINE_QUANTITY } from '../stock/ledger';
import { orderOp } from './finals';
import type { ReservationLineDoc } from './model';
import type { ReserveRequest } from './service';

export const outOfStock = (skuId: string, extra: Record<string, unknown> = {}) =>
  new AppError('OUT_OF_STOCK', `SKU ${skuId} is out of stock`, { skuId, ...extra });

export interface CheckedLine {
  line: ReservationLineDoc;
  sku: SkuDoc;
  flash: FlashSaleDoc | null;
}

export interface LineDeps {
  models: Models;
  accounts: StockAccounts;
  admission: FlashAdmission;
  now: () => Date;
}

/** A reservation's lines: their shape, what needs no stock to refuse, and taking each one's units. */
export function createLineReserver({ models, accounts, admission, now }: LineDeps) {
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

  /**
   * Every refusal that needs no stock is decided before any stock moves — a group-exclusive
   * flash line of a member not in its group among them (FORBIDDEN, NOT_IN_GROUP).
   */
  async function checkLines(lines: ReservationLineDoc[], memberId: string, at: Date): Promise<CheckedLine[]> {
    const skuIds = [...new Set(lines.map((l) => l.skuId).filter(isObjectId))];
    const skus = new Map((await findByIds<SkuDoc>(models.Sku, skuIds)).map((s) => [s._id.toHexString(), s]));
    const productIds = [...new Set([...skus.values()].map((s) => s.productId.toHexString()))];
    const products = new Map((await findByIds<ProductDoc>(models.Product, productIds)).map((p) => [p._id.toHexString(), p]));
    const flashIds = [...new Set(lines.flatMap((l) => (l.flashSaleId && isObjectId(l.flashSaleId) ? [l.flashSaleId] : [])))];
    const flashes = new Map((await findByIds<FlashSaleDoc>(models.FlashSale, flashIds)).map((f) => [f._id.toHexString(), f]));
    const checked = lines.map((line): CheckedLine => {
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
      if (line.quantity > flash.perMemberLimit) throw admission.flashLimit(line.skuId, flash);
      return { line, sku, flash };
    });
    await admission.requireInGroups(
      memberId,
      checked.map((c) => ({ skuId: c.line.skuId, flash: c.flash })),
    );
    return checked;
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
      await accounts.append(line.account, null, (t) => ({
        ...accounts.skuMove(sku, t, 'RESERVE', line.quantity, { orderId }, () => outOfStock(line.skuId)),
        op,
      }));
      took();
      return;
    }
    const flashSaleId = flash._id.toHexString();
    // Normally the order's hold from its quote; the ledger decides either way (a gate on another
    // replica, or none at all, must not cost a sale the ledger can make).
    await admission.admit(flash, orderId, memberId, line.quantity).catch(() => null);
    let ledgerShort = false;
    let held = new Set<number>();
    try {
      held = new Set((await admission.slotsOf(flash, memberId)).map((s) => s.n));
      if (held.size + line.quantity > flash.perMemberLimit) throw admission.flashLimit(line.skuId, flash);
      await accounts.append(line.account, null, (t) => {
        // Decided against the head: a reservation cannot land after the quota went back to the SKU.
        if (now() >= flash.endsAt) throw new AppError('BAD_USER_INPUT', `Flash sale ${flashSaleId} has ended`, { skuId: line.skuId });
        const body = accounts.move(t, 'RESERVE', line.quantity, { orderId, flashSaleId }, () => {
          ledgerShort = true;
          return outOfStock(line.skuId, { flashSaleId });
        });
        return { ...body, op };
      });
    } catch (err) {
      await admission.releaseHolds([line], orderId, !ledgerShort);
      throw err;
    }
    took();
    await admission.confirm(flashSaleId, orderId);
    if (!(await admission.takeSlots(flash, memberId, orderId, line.quantity, held, took))) throw admission.flashLimit(line.skuId, flash);
  }

  return { parseLines, checkLines, reserveLine };
}
