import { findByIds, ledgerHead, type Logger } from '@flywheel/service-kit';
import { flashAccount, type StockTotals } from '../stock/ledger';
import type { FlashSaleDoc } from '../flash-sales/model';
import type { StockEntryDoc } from '../stock/model';
import type { CategoryDoc, Models, ProductDoc, SkuDoc } from '../model';

// The storefront read model (docs/architecture.md, "Reads at scale"): what shoppers read — products that are
// not drafts, their SKUs and prices, categories, stock heads (available / inStock), flash sales
// still to end, and the listing fields the shop sorts on (salesCount, minPrice) — held in memory
// by every replica, so a category page or a product detail costs no database command.
//
// FerretDB evaluates every filter but a lone `_id` and every sort over all documents in Go, so a
// listing `find` is a full scan whatever the indexes say: memory is the only read that scales.
//
// Kept current by catalog's own changes only (storefront/events.ts carries them between replicas):
// this replica applies its own changes synchronously (a staff edit is visible to the next read on
// the same replica), other replicas reload what they are told changed. A replica that may have
// missed a change stops answering from here (`ready()` false: callers read the database instead)
// until a full reload has run. Nothing that charges money reads this: quotes and reservations
// read the authority (products/quote.ts `quote`, reservations `reserve`).

/** A stock account's head totals (regular stock of a SKU, or a flash sale's quota). */
export interface StockHead extends StockTotals {
  seq: number;
}

/** A product as the listing projection just wrote it, with what it was computed from. */
export interface ProductSnapshot {
  product: ProductDoc;
  skus: SkuDoc[];
  flashes: FlashSaleDoc[];
  heads: { accountId: string; head: StockHead | null }[];
}

/** What one replica tells the others (storefront/events.ts); all parts optional. */
export interface ReadModelChange {
  productIds?: string[];
  heads?: { accountId: string; head: StockHead }[];
  categories?: boolean;
}

interface Listed {
  doc: ProductDoc;
  skus: SkuDoc[];
  flashes: FlashSaleDoc[];
  /** The read clock when the data was read: an older read never overwrites a newer one. */
  epoch: number;
}

export interface ReadModelDeps {
  models: Models;
  logger: Logger;
  /** Sends a change to the other replicas (set once the feed is connected). */
  announce?: (change: ReadModelChange) => void;
  /** The feed's liveness: false while this replica could be missing changes. */
  live?: () => boolean;
  now?: () => Date;
}

/** Point reads at once while loading stock heads (each is a short `_id` probe). */
const HEAD_READ_CONCURRENCY = 8;

const headOf = (t: StockHead | StockEntryDoc): StockHead => ({ seq: t.seq, onHand: t.onHand, reserved: t.reserved, sold: t.sold });
const idOf = (d: { _id: { toHexString(): string } }) => d._id.toHexString();
const byId = (a: { _id: { toHexString(): string } }, b: { _id: { toHexString(): string } }) => (idOf(a) < idOf(b) ? -1 : 1);

function indexCategories(all: CategoryDoc[]) {
  const byKey = new Map(all.map((c) => [idOf(c), c]));
  const children = new Map<string, CategoryDoc[]>();
  for (const c of [...all].sort(byId)) {
    const parent = c.parentId ? c.parentId.toHexString() : '';
    children.set(parent, [...(children.get(parent) ?? []), c]);
  }
  return { byKey, children };
}

/** Reads the heads of the given accounts, a few at a time. */
async function readHeads(models: Models, accountIds: string[], setHead: (accountId: string, head: StockEntryDoc | null) => void) {
  let next = 0;
  const worker = async () => {
    while (next < accountIds.length) {
      const accountId = accountIds[next++]!;
      setHead(accountId, (await ledgerHead(models.StockEntry, accountId)) as StockEntryDoc | null);
    }
  };
  await Promise.all(Array.from({ length: Math.min(HEAD_READ_CONCURRENCY, accountIds.length) }, worker));
}

const accountsOf = (skuDocs: SkuDoc[], flashes: FlashSaleDoc[]) => [...skuDocs.map(idOf), ...flashes.map((f) => flashAccount(idOf(f)))];

/** Documents grouped by the product they belong to. */
function byProduct<T extends { productId: { toHexString(): string } }>(docs: T[]): Map<string, T[]> {
  const out = new Map<string, T[]>();
  for (const d of docs) out.set(d.productId.toHexString(), [...(out.get(d.productId.toHexString()) ?? []), d]);
  return out;
}

/** `pass` one at a time: a call while one runs asks for another pass after it, and shares its promise. */
function oneAtATime(pass: () => Promise<void>) {
  let running: Promise<void> | null = null;
  let again = false;
  return {
    run(): Promise<void> {
      if (running) {
        again = true;
        return running;
      }
      running = (async () => {
        do {
          again = false;
          await pass();
        } while (again);
      })().finally(() => {
        running = null;
      });
      return running;
    },
    running: () => running,
  };
}

export function createReadModel(deps: ReadModelDeps) {
  const { models, logger } = deps;
  const now = deps.now ?? (() => new Date());

  let clock = 0;
  const tick = () => ++clock;

  const products = new Map<string, Listed>();
  const skus = new Map<string, SkuDoc>();
  const heads = new Map<string, StockHead>();
  let categories: CategoryDoc[] = [];
  let categoryIndex = indexCategories([]);
  let categoriesEpoch = 0;
  /** Bumped on every product change: the sorted listings below are rebuilt lazily from it. */
  let version = 0;
  const sorted = new Map<string, { version: number; docs: ProductDoc[] }>();

  let loaded = false;
  /** Read clock of the last reason to doubt this copy; a full reload started after it restores trust. */
  let doubtedAt = 0;
  let trusted = true;

  function setHead(accountId: string, head: StockHead | null | undefined) {
    if (!head) return;
    const known = heads.get(accountId);
    if (!known || known.seq < head.seq) heads.set(accountId, headOf(head));
  }

  /** Puts (or, for a draft or a vanished product, removes) one product read at `epoch`. */
  function put(productId: string, epoch: number, listed: Omit<Listed, 'epoch'> | null) {
    const known = products.get(productId);
    if (known && known.epoch > epoch) return;
    for (const s of known?.skus ?? []) skus.delete(idOf(s));
    if (!listed || listed.doc.status === 'DRAFT') {
      products.delete(productId);
    } else {
      const { outbox: _outbox, ...doc } = listed.doc;
      const ordered = [...listed.skus].sort((a, b) => a.position - b.position);
      products.set(productId, { doc: doc as ProductDoc, skus: ordered, flashes: listed.flashes, epoch });
      for (const s of ordered) skus.set(idOf(s), s);
    }
    version++;
  }

  /** Reads the given products (and what hangs off them) again. */
  async function loadProducts(ids: string[]): Promise<void> {
    const epoch = tick();
    const at = now();
    const docs = await findByIds<ProductDoc>(models.Product, ids);
    const visible = docs.filter((d) => d.status !== 'DRAFT');
    const oids = visible.map((d) => d._id);
    const [skuDocs, flashes] = oids.length
      ? await Promise.all([
          models.Sku.find({ productId: { $in: oids } }).lean<SkuDoc[]>(),
          models.FlashSale.find({ productId: { $in: oids }, endsAt: { $gt: at } }).lean<FlashSaleDoc[]>(),
        ])
      : [[], []];
    // Heads already known follow the announced ledger entries; new accounts are read here.
    await readHeads(
      models,
      accountsOf(skuDocs, flashes).filter((a) => !heads.has(a)),
      setHead,
    );
    const found = new Map(visible.map((d) => [idOf(d), d]));
    for (const id of ids) {
      const doc = found.get(id);
      put(
        id,
        epoch,
        doc
          ? {
              doc,
              skus: skuDocs.filter((s) => s.productId.equals(doc._id)),
              flashes: flashes.filter((f) => f.productId.equals(doc._id)),
            }
          : null,
      );
    }
  }

  async function loadCategories(): Promise<void> {
    const epoch = tick();
    const all = await models.Category.find({}).lean<CategoryDoc[]>();
    if (epoch < categoriesEpoch) return;
    categoriesEpoch = epoch;
    categories = all;
    categoryIndex = indexCategories(all);
  }

  /** Everything again: products, SKUs, flash sales, every head, categories. */
  async function loadAll(): Promise<void> {
    const epoch = tick();
    const at = now();
    const [docs, skuDocs, flashes] = await Promise.all([
      models.Product.find({ status: { $ne: 'DRAFT' } }).lean<ProductDoc[]>(),
      models.Sku.find({}).lean<SkuDoc[]>(),
      models.FlashSale.find({ endsAt: { $gt: at } }).lean<FlashSaleDoc[]>(),
      loadCategories(),
    ]);
    const skusOf = byProduct(skuDocs);
    const flashesOf = byProduct(flashes);
    const seen = new Set<string>();
    const listed = docs.map((doc) => {
      const id = idOf(doc);
      seen.add(id);
      return { id, doc, skus: skusOf.get(id) ?? [], flashes: flashesOf.get(id) ?? [] };
    });
    // Every head is read: a lost announcement of a stock move is repaired here.
    await readHeads(
      models,
      listed.flatMap((l) => accountsOf(l.skus, l.flashes)),
      setHead,
    );
    for (const { id, ...l } of listed) put(id, epoch, l);
    for (const [id, known] of products) if (!seen.has(id) && known.epoch < epoch) put(id, epoch, null);
  }

  // One full reload at a time; a request during one runs another after it (its reads may be older).
  const reloads = oneAtATime(async () => {
    const startedAt = tick();
    try {
      await loadAll();
      loaded = true;
      if (startedAt > doubtedAt) trusted = true;
    } catch (err) {
      logger.warn({ err }, 'storefront read model reload failed; reads go to the database until the next one succeeds');
    }
  });
  const reloadAll = reloads.run;

  // Announced products are reloaded in batches: one reload in flight, the ids that arrive meanwhile next.
  const dirty = new Set<string>();
  let flushing: Promise<void> | null = null;
  function flush(): Promise<void> {
    flushing ??= (async () => {
      while (dirty.size) {
        const ids = [...dirty];
        dirty.clear();
        await loadProducts(ids).catch((err: unknown) => {
          logger.warn({ err }, 'storefront read model: reloading products failed; a full reload follows');
          doubt();
        });
      }
    })().finally(() => {
      flushing = null;
    });
    return flushing;
  }

  /** This copy may have missed a change: stop serving it and read everything again. */
  function doubt(): void {
    doubtedAt = tick();
    trusted = false;
    void reloadAll();
  }

  function sortedOnSale(key: string, compare: (a: ProductDoc, b: ProductDoc) => number): ProductDoc[] {
    const cached = sorted.get(key);
    if (cached?.version === version) return cached.docs;
    const docs = [...products.values()]
      .map((l) => l.doc)
      .filter((d) => d.status === 'ON_SALE')
      .sort(compare);
    sorted.set(key, { version, docs });
    return docs;
  }

  /** True when reads may be answered from here: loaded, no doubt pending, the feed alive. */
  const isReady = (): boolean => loaded && trusted && (deps.live?.() ?? true);

  return {
    /** True when reads may be answered from here: loaded, no doubt pending, the feed alive. */
    ready: isReady,

    /** At start-up, before serving; also the periodic safety net and the repair after a doubt. */
    reloadAll,
    doubt,

    /** Another replica changed these: read them again (in the background, batched). */
    apply(change: ReadModelChange): void {
      for (const { accountId, head } of change.heads ?? []) setHead(accountId, head);
      if (change.categories) void loadCategories().catch(() => doubt());
      for (const id of change.productIds ?? []) dirty.add(id);
      if (dirty.size) void flush();
    },

    /** Resolves once the products announced so far have been read again (tests, shutdown). */
    settled: async (): Promise<void> => {
      while (flushing || reloads.running()) await (flushing ?? reloads.running());
    },

    // ---- this replica's own changes: applied at once, then announced ----------------------------

    /**
     * Called as the listing projection starts reading a product; the function it returns takes
     * what the projection wrote. The read clock is taken at the start, so a projection that read
     * before a newer reload finished cannot overwrite it.
     */
    observeProjection(): (snapshot: ProductSnapshot) => void {
      const epoch = tick();
      return ({ product, skus: skuDocs, flashes, heads: read }) => {
        const id = idOf(product);
        for (const { accountId, head } of read) setHead(accountId, head);
        put(id, epoch, { doc: product, skus: skuDocs, flashes: flashes.filter((f) => f.endsAt > now()) });
        deps.announce?.({ productIds: [id] });
      };
    },

    /** A stock ledger entry this replica appended: its totals are the account's new head. */
    stockMoved(entry: StockEntryDoc): void {
      const head = headOf(entry);
      setHead(entry.accountId, head);
      deps.announce?.({ heads: [{ accountId: entry.accountId, head }] });
    },

    async categoriesChanged(): Promise<void> {
      await loadCategories();
      deps.announce?.({ categories: true });
    },

    // ---- reads ----------------------------------------------------------------------------------

    product: (id: string): ProductDoc | null => products.get(id)?.doc ?? null,
    sku: (id: string): SkuDoc | null => skus.get(id) ?? null,
    skusOf: (productId: string): SkuDoc[] => products.get(productId)?.skus ?? [],
    /** The product's SKUs and flash sales still to end, while this model holds it and is ready. */
    holdings(productId: string): { skus: SkuDoc[]; flashes: FlashSaleDoc[] } | null {
      const held = products.get(productId);
      return held && isReady() ? { skus: held.skus, flashes: held.flashes } : null;
    },
    /** Undefined when this model does not hold the account (callers read the ledger). */
    head: (accountId: string): StockHead | undefined => heads.get(accountId),
    /** The SKU's flash sales that have not ended, earliest start first (as the database loader). */
    flashSalesOf(skuId: string): FlashSaleDoc[] {
      const sku = skus.get(skuId);
      if (!sku) return [];
      const at = now();
      return (products.get(sku.productId.toHexString())?.flashes ?? [])
        .filter((f) => f.skuId.toHexString() === skuId && f.endsAt > at)
        .sort((a, b) => a.startsAt.getTime() - b.startsAt.getTime() || byId(a, b));
    },
    category: (id: string): CategoryDoc | null => categoryIndex.byKey.get(id) ?? null,
    rootCategories: (): CategoryDoc[] => categoryIndex.children.get('') ?? [],
    childrenOf: (id: string): CategoryDoc[] => categoryIndex.children.get(id) ?? [],
    /** The category and every category below it; empty when it does not exist. */
    withDescendants(categoryId: string): Set<string> {
      if (!categoryIndex.byKey.has(categoryId)) return new Set();
      const ids = [categoryId];
      for (let i = 0; i < ids.length; i++) for (const c of categoryIndex.children.get(ids[i]!) ?? []) ids.push(idOf(c));
      return new Set(ids);
    },
    /** Products on sale in the given order; the array is shared and must not be changed. */
    onSale: sortedOnSale,
    get size() {
      return { products: products.size, skus: skus.size, heads: heads.size, categories: categories.length };
    },
  };
}

export type ReadModel = ReturnType<typeof createReadModel>;
