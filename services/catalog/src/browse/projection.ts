import { isDuplicateKey, isObjectId, type Logger, ledgerHead } from '@flywheel/service-kit';
import { availableOf, flashAccount, totalsOf, type StockTotals } from '../stock/ledger';
import type { FlashSaleDoc } from '../flash-sales/model';
import type { StockEntryDoc } from '../stock/model';
import { createHotDocs, HOT_DOC_MS } from '../hot-docs';
import type { ProductSnapshot } from '../storefront/service';
import type {
  Models,
  ProductDescription,
  ProductDoc,
  ProductListing,
  ProductRevisionDoc,
  ProductStatusEntryDoc,
  SkuDoc,
  SpecValueDoc,
} from '../model';

// The product document is what the shop's listings filter and sort on, so it carries copies of
// facts owned elsewhere (ProductListing). Each copy is recomputed from its source — never
// incremented — by `project`, which rewrites the product's description and status from their
// ledger heads too. That makes every recomputation a repair: on FerretDB an update writes the
// whole document back, so two writers of one product (a staff edit and a stock move, or two
// replicas) can undo each other's fields; whichever projection runs next puts all of them right.
//
// When it runs: after every stock ledger entry that can change a listing (fire-and-forget, so
// checkout never waits for it), after every staff edit (awaited), and in the sweeper's repair
// pass over products whose sources moved recently (the cross-replica safety net). So `inStock`,
// `available` and `salesCount` are eventually correct — typically within milliseconds, at worst
// within one sweep interval — and nothing that decides (reservations, quotes) ever reads them.

/** A spec value as stored in `ProductDoc.specValues` (spec names may not contain `=`). */
export const specValueKey = (s: SpecValueDoc) => `${s.name}=${s.value}`;

export function parseSpecValueKey(key: string): SpecValueDoc | null {
  const at = key.indexOf('=');
  return at < 1 ? null : { name: key.slice(0, at), value: key.slice(at + 1) };
}

/** Price range and spec values of a product, from its SKUs. */
export function pricesAndSpecs(skus: Pick<SkuDoc, 'price' | 'specs'>[]): Pick<ProductListing, 'minPrice' | 'maxPrice' | 'specValues'> {
  const prices = skus.map((s) => s.price);
  return {
    minPrice: prices.length ? Math.min(...prices) : 0,
    maxPrice: prices.length ? Math.max(...prices) : 0,
    specValues: [...new Set(skus.flatMap((s) => (s.specs ?? []).map(specValueKey)))],
  };
}

/**
 * Stock and sales of a product from the heads of its SKUs' ledgers and of its flash sales' quota
 * accounts. `available` counts regular stock only (a flash quota is reported on its flash sale);
 * `salesCount` counts units sold from either, gross (a refund restocks rather than un-sells).
 */
export function stockSummary(
  skuHeads: (StockTotals | null)[],
  flashHeads: (StockTotals | null)[],
): Pick<ProductListing, 'available' | 'inStock' | 'salesCount'> {
  const available = skuHeads.reduce((sum, h) => sum + availableOf(totalsOf(h)), 0);
  const salesCount = [...skuHeads, ...flashHeads].reduce((sum, h) => sum + totalsOf(h).sold, 0);
  return { available, inStock: available > 0, salesCount };
}

/** The descriptive fields of a product or revision, normalised (documents from before a field existed lack it). */
export function descriptionOf(doc: Partial<ProductDescription> & Pick<ProductDescription, 'name'>): ProductDescription {
  return {
    name: doc.name,
    description: doc.description ?? '',
    categoryId: doc.categoryId ?? null,
    keywords: [...(doc.keywords ?? [])],
    images: (doc.images ?? []).map(({ url, alt }) => ({ url, alt })),
    videoUrl: doc.videoUrl ?? null,
    parameters: (doc.parameters ?? []).map(({ name, value }) => ({ name, value })),
    afterSalesPolicy: doc.afterSalesPolicy ?? '',
  };
}

type Projected = Pick<ProductDoc, 'status'> & ProductDescription & ProductListing;

/** Same JSON in the same key order: ObjectIds compare by hex, arrays by content and order. */
function unchanged(current: ProductDoc, next: Projected): boolean {
  const keys = Object.keys(next) as (keyof Projected)[];
  const pick = (d: Partial<Projected>) => JSON.stringify(keys.map((k) => d[k] ?? null));
  return pick(current) === pick(next);
}

/** Sources that moved this long before the last repair pass are read again (clock skew, racing writers). */
const REPAIR_SKEW_MS = 10_000;
/** The first repair pass of a database looks back this far (older products are backfilled at start). */
const FIRST_REPAIR_LOOKBACK_MS = 3600_000;
const REPAIR_MARK = 'product-listings';
/** Entries in each id → product cache (the relation never changes; the bound only caps memory). */
const CACHE_LIMIT = 10_000;

export interface ProjectionDeps {
  models: Models;
  logger: Logger;
  /**
   * Told when a projection starts reading (the storefront read model takes its read clock then);
   * the function returned receives the product as projected, with the SKUs, flash sales and stock
   * heads it was computed from, so this replica's read model follows without reading them again.
   */
  observe?: () => (snapshot: ProductSnapshot) => void;
  /**
   * The SKUs and flash sales this replica's read model holds for a product, or null. With them a
   * reservation's stock move re-counts only `available` (the product and its SKUs' heads: a few
   * reads) instead of projecting the whole product.
   */
  holdings?: (productId: string) => { skus: SkuDoc[]; flashes: FlashSaleDoc[] } | null;
  now?: () => Date;
}

export function createProductProjection(deps: ProjectionDeps) {
  const { models, logger } = deps;
  const now = deps.now ?? (() => new Date());
  const headOf = (accountId: string) => ledgerHead(models.StockEntry, accountId) as Promise<StockEntryDoc | null>;
  /** Products as quotes read them (see hot-docs); every write of a product here drops its copy. */
  const hotProducts = createHotDocs<ProductDoc>(models.Product, HOT_DOC_MS);

  async function project(productId: string): Promise<ProductDoc | null> {
    if (!isObjectId(productId)) return null;
    const observed = deps.observe?.();
    const product = await models.Product.findById(productId).lean<ProductDoc>();
    if (!product) return null;
    const [status, revision, skus] = await Promise.all([
      ledgerHead(models.ProductStatusEntry, productId) as Promise<ProductStatusEntryDoc | null>,
      ledgerHead(models.ProductRevision, productId) as Promise<ProductRevisionDoc | null>,
      models.Sku.find({ productId: product._id }).lean<SkuDoc[]>(),
    ]);
    const flashes = skus.length ? await models.FlashSale.find({ skuId: { $in: skus.map((s) => s._id) } }).lean<FlashSaleDoc[]>() : [];
    const [skuHeads, flashHeads] = await Promise.all([
      Promise.all(skus.map((s) => headOf(s._id.toHexString()))),
      Promise.all(flashes.map((f) => headOf(flashAccount(f._id.toHexString())))),
    ]);
    const next: Projected = {
      status: status?.to ?? product.status,
      ...descriptionOf(revision ?? product),
      ...pricesAndSpecs(skus),
      ...stockSummary(skuHeads, flashHeads),
    };
    if (!unchanged(product, next)) {
      await models.Product.updateOne({ _id: product._id }, { $set: next });
      hotProducts.drop(productId);
    }
    const projected = { ...product, ...next };
    observed?.({
      product: projected,
      skus,
      flashes,
      heads: [
        ...skus.map((s, i) => ({ accountId: s._id.toHexString(), head: skuHeads[i] ?? null })),
        ...flashes.map((f, i) => ({ accountId: flashAccount(f._id.toHexString()), head: flashHeads[i] ?? null })),
      ],
    });
    return projected;
  }

  /**
   * A reservation or its release moves only regular stock held, so of the listing only `available`
   * and `inStock` change: re-counted from the SKUs' heads, the rest of the product left as it is
   * (the full projection and the repair pass own it). Falls back to `project` when this replica's
   * read model does not hold the product.
   */
  async function recountAvailable(productId: string): Promise<ProductDoc | null> {
    const held = deps.holdings?.(productId);
    if (!held) return project(productId);
    const observed = deps.observe?.();
    const product = await models.Product.findById(productId).lean<ProductDoc>();
    if (!product) return null;
    const skuHeads = await Promise.all(held.skus.map((s) => headOf(s._id.toHexString())));
    const available = skuHeads.reduce((sum, h) => sum + availableOf(totalsOf(h)), 0);
    const next = { available, inStock: available > 0 };
    if (product.available !== next.available || product.inStock !== next.inStock) {
      await models.Product.updateOne({ _id: product._id }, { $set: next });
      hotProducts.drop(productId);
    }
    const projected = { ...product, ...next };
    observed?.({
      product: projected,
      skus: held.skus,
      flashes: held.flashes,
      heads: held.skus.map((s, i) => ({ accountId: s._id.toHexString(), head: skuHeads[i] ?? null })),
    });
    return projected;
  }

  // Coalescing per product: at most one projection running and one waiting. A request made while
  // one waits is covered by it (its reads have not started; a full request makes a waiting recount
  // a full projection); one made while a projection runs queues the next. So a burst of stock
  // moves costs a few projections, not one each, and within a process no two projections of one
  // product write at once.
  const waiting = new Map<string, { run: Promise<ProductDoc | null>; full: boolean }>();
  const running = new Map<string, Promise<unknown>>();
  const background = new Set<Promise<unknown>>();
  let stopped = false;

  function refresh(productId: string, full = true): Promise<ProductDoc | null> {
    const queued = waiting.get(productId);
    if (queued) {
      queued.full ||= full;
      return queued.run;
    }
    const before = running.get(productId);
    const entry = { run: null as unknown as Promise<ProductDoc | null>, full };
    const run: Promise<ProductDoc | null> = (before ? before.catch(() => undefined) : Promise.resolve()).then(() => {
      waiting.delete(productId);
      running.set(productId, run);
      return entry.full ? project(productId) : recountAvailable(productId);
    });
    entry.run = run;
    waiting.set(productId, entry);
    const settled = run.then(
      () => undefined,
      () => undefined,
    );
    void settled.then(() => {
      if (running.get(productId) === run) running.delete(productId);
    });
    return run;
  }

  function inBackground(work: Promise<unknown>) {
    const tracked = work.catch((err: unknown) => logger.warn({ err }, 'product listing projection failed; the repair pass retries'));
    background.add(tracked);
    void tracked.finally(() => background.delete(tracked));
  }

  const skuProduct = new Map<string, string>();
  const flashProduct = new Map<string, string>();
  const remember = (cache: Map<string, string>, key: string, value: string) => {
    if (cache.size >= CACHE_LIMIT) cache.clear();
    cache.set(key, value);
    return value;
  };

  /** The product a stock account belongs to: a SKU's, or a flash sale's SKU's. */
  async function productOfAccount(accountId: string): Promise<string | null> {
    if (accountId.startsWith('flash:')) {
      const flashSaleId = accountId.slice('flash:'.length);
      const known = flashProduct.get(flashSaleId);
      if (known) return known;
      if (!isObjectId(flashSaleId)) return null;
      const flash = await models.FlashSale.findById(flashSaleId, { productId: 1 }).lean<Pick<FlashSaleDoc, 'productId'>>();
      return flash ? remember(flashProduct, flashSaleId, flash.productId.toHexString()) : null;
    }
    const known = skuProduct.get(accountId);
    if (known) return known;
    if (!isObjectId(accountId)) return null;
    const sku = await models.Sku.findById(accountId, { productId: 1 }).lean<Pick<SkuDoc, 'productId'>>();
    return sku ? remember(skuProduct, accountId, sku.productId.toHexString()) : null;
  }

  async function saveMark(until: Date) {
    const update = { $set: { until } };
    await models.SweepMark.updateOne({ _id: REPAIR_MARK }, update, { upsert: true }).catch(async (err: unknown) => {
      if (!isDuplicateKey(err)) throw err;
      await models.SweepMark.updateOne({ _id: REPAIR_MARK }, update);
    });
  }

  return {
    hotProducts,

    /** Recomputes a product's listing now (coalesced with any in flight); null when it does not exist. */
    refresh,

    /**
     * Inventory calls this after each ledger entry it appends. A flash quota's moves matter only
     * when they sell (salesCount): its reservations are the flash-sale hot path and cost nothing
     * here. Never awaited by the caller, never throws.
     */
    stockMoved(entry: Pick<StockEntryDoc, 'accountId' | 'kind'>): void {
      if (stopped) return;
      if (entry.accountId.startsWith('flash:') && entry.kind !== 'SELL') return;
      const recount = entry.kind === 'RESERVE' || entry.kind === 'RELEASE';
      inBackground(productOfAccount(entry.accountId).then((id) => (id ? refresh(id, !recount) : null)));
    },

    /**
     * The sweeper's pass: every product whose stock, revisions or status moved since the last pass
     * (less a skew margin) is projected again. Catches a projection lost to a crash, or undone by
     * another replica's write. Returns how many products it projected.
     */
    async repairOnce(at: Date = now()): Promise<number> {
      const mark = await models.SweepMark.findById(REPAIR_MARK).lean();
      const from = mark?.until ? mark.until.getTime() : at.getTime() - FIRST_REPAIR_LOOKBACK_MS;
      const window = { at: { $gte: new Date(from - REPAIR_SKEW_MS) } };
      const [accounts, revised, restatused] = await Promise.all([
        models.StockEntry.distinct('accountId', window),
        models.ProductRevision.distinct('accountId', window),
        models.ProductStatusEntry.distinct('accountId', window),
      ]);
      const productIds = new Set([...revised, ...restatused].map(String));
      for (const accountId of accounts) {
        const productId = await productOfAccount(String(accountId));
        if (productId) productIds.add(productId);
      }
      for (const productId of productIds) await refresh(productId);
      await saveMark(at);
      return productIds.size;
    },

    /** Products written before their listing fields existed get them (at start, before serving). */
    async backfill(): Promise<number> {
      const missing = await models.Product.find({ minPrice: { $exists: false } }, { _id: 1 })
        .limit(CACHE_LIMIT)
        .lean<Pick<ProductDoc, '_id'>[]>();
      for (const p of missing) await refresh(p._id.toHexString());
      return missing.length;
    },

    /** Waits for background projections; later stock moves are left to the next start's repair pass. */
    async drain(): Promise<void> {
      stopped = true;
      while (background.size) await Promise.all([...background]);
    },
  };
}

export type ProductProjection = ReturnType<typeof createProductProjection>;
