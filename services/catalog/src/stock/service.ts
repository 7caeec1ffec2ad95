import DataLoader from 'dataloader';
import {
  AppError,
  badInput,
  decodeSeqCursor,
  isObjectId,
  isStaff,
  MAX_PAGE,
  notFound,
  pageSize,
  requireRole,
  seqPage,
  sha256,
  text,
  type PageArgs,
  type SeqPage,
  type Viewer,
} from '@flywheel/service-kit';
import type { Models, SkuDoc } from '../model';
import type { StockAccounts } from './accounts';
import { applyMove, availableOf, totalsOf, MAX_STOCK, type StockKind } from './ledger';
import type { StockEntryDoc } from './model';

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

export interface AdjustStockInput {
  skuId: string;
  delta: number;
  reason: string;
  idempotencyKey?: string | null;
}

/** The head entry of each account asked for in a tick: one indexed read each, deduplicated. */
const stockLoaders = (accounts: StockAccounts) => ({
  stockHead: new DataLoader<string, StockEntryDoc | null>((ids) => Promise.all(ids.map(accounts.headOf))),
});
export type StockLoaders = ReturnType<typeof stockLoaders>;

export interface StockDeps {
  models: Models;
  accounts: StockAccounts;
}

/** The SKUs' stock: their ledgers' heads as views, the ledger itself for staff, and staff adjustments. */
export function createStockService({ models, accounts }: StockDeps) {
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

  const stock = {
    loaders: () => stockLoaders(accounts),

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
      for (const id of skuIds) accounts.discard(id);
    },

    async stockOf(viewer: Viewer | null, loaders: StockLoaders, sku: SkuDoc): Promise<StockView> {
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
      const counts = await Promise.all(ids.map((id) => (isObjectId(id) ? accounts.available(id) : 0)));
      return new Map(ids.map((id, i) => [id, counts[i]!]));
    },

    async inStock(loaders: StockLoaders, skus: SkuDoc[]): Promise<boolean> {
      const heads = await loaders.stockHead.loadMany(skus.map((s) => s._id.toHexString()));
      return heads.some((h) => !(h instanceof Error) && availableOf(totalsOf(h)) > 0);
    },

    async stockLedger(viewer: Viewer | null, skuId: string, args: PageArgs): Promise<SeqPage<StockEntryView>> {
      requireRole(viewer, 'STAFF');
      const first = pageSize(args.first, MAX_PAGE);
      if (!isObjectId(skuId) || !(await models.Sku.exists({ _id: skuId }))) throw notFound('SKU');
      const before = decodeSeqCursor(args.after);
      // By seq, not time: the ledger's own order (clocks of replicas may disagree).
      const entries = await models.StockEntry.find({ accountId: skuId, ...(before ? { seq: { $lt: before } } : {}) })
        .sort({ seq: -1 })
        .limit(first + 1)
        .lean<StockEntryDoc[]>();
      return seqPage(entries, first, entryView);
    },

    /** Staff correction (stock-take, damage): an ADJUST entry with its reason; available never below zero. */
    async adjustStock(viewer: Viewer | null, input: AdjustStockInput): Promise<{ sku: SkuDoc; entry: StockEntryView }> {
      const v = requireRole(viewer, 'STAFF');
      if (!Number.isSafeInteger(input.delta) || input.delta === 0 || Math.abs(input.delta) > MAX_STOCK) {
        throw badInput(`delta must be a non-zero whole number from -${MAX_STOCK} to ${MAX_STOCK}`, 'delta');
      }
      const reason = text(input.reason, 'reason', 200);
      const key = input.idempotencyKey == null ? null : text(input.idempotencyKey, 'idempotencyKey', 100);
      const sku = isObjectId(input.skuId) ? await models.Sku.findById(input.skuId).lean<SkuDoc>() : null;
      if (!sku) throw notFound('SKU');
      const op = key ? `adjust:${sha256(`${v.id}\n${key}`)}` : null;
      const result = await accounts.append(input.skuId, op, (t) => {
        if (t.onHand + input.delta > MAX_STOCK) throw badInput(`Stock on hand cannot exceed ${MAX_STOCK}`, 'delta');
        return accounts.skuMove(sku, t, 'ADJUST', input.delta, { reason, by: v.id }, (before) =>
          badInput(`Only ${availableOf(before)} available: stock cannot go below zero`, 'delta'),
        );
      });
      const entry = result!.entry;
      if (!result!.fresh && (entry.accountId !== input.skuId || entry.qty !== input.delta || entry.reason !== reason)) {
        throw new AppError('CONFLICT', 'This idempotencyKey was used for a different adjustment');
      }
      return { sku, entry: entryView(entry) };
    },
  };
  return stock;
}

export type StockService = ReturnType<typeof createStockService>;
