import { randomUUID } from 'node:crypto';
import { createHotDocs, HOT_DOC_MS } from './hot-docs';
import { Types } from 'mongoose';
import DataLoader from 'dataloader';
import type { ReplyData, RequestData } from '@flywheel/events';
import {
  AppError,
  appendToLedger,
  badInput,
  byIdLoader,
  isDuplicateKey,
  isStaff,
  notFound,
  outboxRecord,
  requireRole,
  type BaseContext,
  type Viewer,
} from '@flywheel/service-kit';
import { descriptionOf, pricesAndSpecs, type ProductProjection } from './browse/projection';
import type { BrowseService } from './browse/service';
import { readModelLoaders, type ReadModel } from './storefront/service';
import { DEFAULT_LOW_STOCK_THRESHOLD, MAX_LINE_QUANTITY, MAX_STOCK } from './inventory/ledger';
import type { FlashOffer, InventoryService } from './inventory/service';
import type {
  CategoryDoc,
  Models,
  ProductDescription,
  ProductDoc,
  ProductImageDoc,
  ProductParameterDoc,
  ProductStatus,
  SkuDoc,
  SpecValueDoc,
} from './model';
import { CURRENCY, money, type Money } from './money';

export { CURRENCY, money, type Money };
export { keywordPattern } from './browse/service';

export const PRODUCT_STATUSES: readonly ProductStatus[] = ['DRAFT', 'ON_SALE', 'OFF_SHELF'];

// Bounds that keep one product's document and the storefront sane; not business rules.
const MAX_SKUS = 100;
const MAX_SPECS = 10;
const MAX_KEYWORDS = 20;
const MAX_IMAGES = 20;
const MAX_PARAMETERS = 30;
export const MAX_URL = 2_048;
export const MAX_LONG_TEXT = 5_000;
/** Per line of a quote; orders enforces its own, stricter per-order limits. */
export const MAX_QUOTE_QUANTITY = MAX_LINE_QUANTITY;

export interface CreateCategoryInput {
  name: string;
  parentId?: string | null;
}
export interface SpecValueInput {
  name: string;
  value: string;
}
export interface SkuInput {
  name: string;
  specs?: SpecValueInput[] | null;
  /** Integer fen, > 0. */
  price: number;
  /** Integer fen, ≥ price. */
  marketPrice?: number | null;
  /** Integer fen, > 0 and ≤ price. */
  memberPrice?: number | null;
  /** Initial stock: the SKU's INITIAL ledger entry. */
  stock: number;
  lowStockThreshold?: number | null;
}
export interface ProductImageInput {
  url: string;
  alt?: string | null;
}
export interface DescriptionInput {
  name?: string | null;
  description?: string | null;
  categoryId?: string | null;
  keywords?: string[] | null;
  images?: ProductImageInput[] | null;
  videoUrl?: string | null;
  parameters?: ProductParameterDoc[] | null;
  afterSalesPolicy?: string | null;
}
export interface CreateProductInput extends DescriptionInput {
  name: string;
  /** DRAFT when omitted. */
  status?: ProductStatus | null;
  skus: SkuInput[];
}
/** Omitted (or null) fields stay as they are, except categoryId and videoUrl, which null clears. */
export interface UpdateProductInput extends DescriptionInput {
  productId: string;
}
/** Omitted fields stay; null clears marketPrice and memberPrice and leaves the others. */
export interface UpdateSkuInput {
  skuId: string;
  price?: number | null;
  marketPrice?: number | null;
  memberPrice?: number | null;
  specs?: SpecValueInput[] | null;
  lowStockThreshold?: number | null;
}
export interface SetProductStatusInput {
  productId: string;
  status: ProductStatus;
}
export type PriceQuoteRequest = RequestData<'catalog.price.quote'>;
export type PriceQuote = ReplyData<'catalog.price.quote'>;

export interface CatalogDeps {
  models: Models;
  /** Stock ledgers, reservations and flash sales (inventory/). */
  inventory: InventoryService;
  /** Recomputes a product's listing fields and projects its ledgers (browse/projection.ts). */
  projection: ProductProjection;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  /** The storefront read model (storefront/), when enabled: customers' look-ups are answered from it. */
  readModel?: ReadModel | null;
  now?: () => Date;
}

const OBJECT_ID = /^[0-9a-f]{24}$/i;
const isObjectId = (id: string) => OBJECT_ID.test(id);

/** Trimmed text of bounded length, or BAD_USER_INPUT naming the field. */
function text(raw: string | null | undefined, field: string, max: number, { optional = false } = {}): string {
  const value = (raw ?? '').trim();
  if (!value && optional) return '';
  if (value.length < 1 || value.length > max) throw badInput(`${field} must be 1 to ${max} characters`, field);
  return value;
}

/** An absolute http(s) URL (images and videos live on a CDN; catalog stores their addresses only). */
function url(raw: string | null | undefined, field: string): string {
  const value = text(raw, field, MAX_URL);
  let parsed: URL;
  try {
    parsed = new URL(value);
  } catch {
    throw badInput('Not an absolute URL', field);
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') throw badInput('Only http(s) URLs', field);
  return value;
}

/** A price: a whole number of fen above zero. */
function fen(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw badInput('A price is a whole number of fen greater than zero', field);
  return value;
}

/** 划线价 ≥ price ≥ member price: the reference price is never below what is charged, the member price never above. */
function checkPriceLadder(price: number, marketPrice: number | null, memberPrice: number | null, prefix: string) {
  if (marketPrice !== null && marketPrice < price) throw badInput('The market price cannot be below the price', `${prefix}marketPrice`);
  if (memberPrice !== null && memberPrice > price) throw badInput('The member price cannot be above the price', `${prefix}memberPrice`);
}

function parseSpecs(specs: SpecValueInput[], prefix: string): SpecValueDoc[] {
  if (specs.length > MAX_SPECS) throw badInput(`A SKU has at most ${MAX_SPECS} spec values`, `${prefix}specs`);
  const names = new Set<string>();
  return specs.map((sp, j) => {
    const spec = { name: text(sp.name, `${prefix}specs[${j}].name`, 30), value: text(sp.value, `${prefix}specs[${j}].value`, 30) };
    // Listings store spec values as `name=value` strings (browse/projection.ts).
    if (spec.name.includes('=')) throw badInput('A spec name cannot contain "="', `${prefix}specs[${j}].name`);
    if (names.has(spec.name)) throw badInput(`Duplicate spec ${spec.name}`, `${prefix}specs[${j}].name`);
    names.add(spec.name);
    return spec;
  });
}

function parseThreshold(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_STOCK) {
    throw badInput(`The low-stock threshold is a whole number from 0 to ${MAX_STOCK}`, field);
  }
  return value;
}

function parseImages(images: ProductImageInput[]): ProductImageDoc[] {
  if (images.length > MAX_IMAGES) throw badInput(`At most ${MAX_IMAGES} images`, 'images');
  return images.map((img, i) => ({
    url: url(img.url, `images[${i}].url`),
    alt: text(img.alt, `images[${i}].alt`, 100, { optional: true }),
  }));
}

function parseParameters(parameters: ProductParameterDoc[]): ProductParameterDoc[] {
  if (parameters.length > MAX_PARAMETERS) throw badInput(`At most ${MAX_PARAMETERS} parameters`, 'parameters');
  return parameters.map((p, i) => ({
    name: text(p.name, `parameters[${i}].name`, 30),
    value: text(p.value, `parameters[${i}].value`, 200),
  }));
}

/** Per-request batching: one query per tick for each kind of look-up. */
function createLoaders(models: Models, inventory: InventoryService) {
  return {
    ...inventory.loaders(),
    product: byIdLoader(models.Product),
    sku: byIdLoader(models.Sku),
    category: byIdLoader(models.Category),
    skusByProduct: new DataLoader<string, SkuDoc[]>(async (productIds) => {
      const valid = productIds.filter(isObjectId);
      const skus = valid.length
        ? await models.Sku.find({ productId: { $in: valid } })
            .sort({ position: 1 })
            .lean<SkuDoc[]>()
        : [];
      return productIds.map((id) => skus.filter((s) => s.productId.toHexString() === id));
    }),
    childrenOf: new DataLoader<string, CategoryDoc[]>(async (parentIds) => {
      const valid = parentIds.filter(isObjectId);
      const children = valid.length
        ? await models.Category.find({ parentId: { $in: valid } })
            .sort({ _id: 1 })
            .lean<CategoryDoc[]>()
        : [];
      return parentIds.map((id) => children.filter((c) => c.parentId?.toHexString() === id));
    }),
  };
}

export type CatalogLoaders = ReturnType<typeof createLoaders>;

export function createCatalogService(deps: CatalogDeps) {
  const { models, inventory } = deps;
  const now = deps.now ?? (() => new Date());
  /** Staff read the database: they see drafts and must see their own edits at once. */
  const fromMemory = (viewer: Viewer | null): ReadModel | null =>
    deps.readModel && !isStaff(viewer) && deps.readModel.ready() ? deps.readModel : null;
  /** SKUs as quotes read them (see hot-docs); `updateSku` drops its copy. */
  const hotSkus = createHotDocs<SkuDoc>(models.Sku, HOT_DOC_MS);
  // Parents of categories, for the category path a quote gives (category-scoped coupons match
  // a parent category too). A category's parent rarely changes: a minute's staleness is fine.
  const parents = new Map<string, { parentId: string | null; at: number }>();
  async function categoryPath(categoryId: string): Promise<string[]> {
    const path: string[] = [];
    for (let id: string | null = categoryId; id && path.length < 10 && !path.includes(id);) {
      path.push(id);
      let known = parents.get(id);
      if (!known || Date.now() - known.at > 60_000) {
        const doc: CategoryDoc | null = await models.Category.findById(id, { parentId: 1 }).lean<CategoryDoc>();
        known = { parentId: doc?.parentId ? doc.parentId.toHexString() : null, at: Date.now() };
        if (parents.size > 10_000) parents.clear();
        parents.set(id, known);
      }
      id = known.parentId;
    }
    return path;
  }

  function parseStatus(status: string, field = 'status'): ProductStatus {
    if (!PRODUCT_STATUSES.includes(status as ProductStatus)) throw badInput(`Unknown product status ${status}`, field);
    return status as ProductStatus;
  }

  async function existingCategory(id: string, field: string): Promise<CategoryDoc> {
    const found = isObjectId(id) ? await models.Category.findById(id).lean<CategoryDoc>() : null;
    if (!found) throw badInput('Category does not exist', field);
    return found;
  }

  function parseSkus(skus: SkuInput[]): Omit<SkuDoc, '_id' | 'productId' | 'createdAt'>[] {
    if (!skus.length) throw badInput('A product needs at least one SKU', 'skus');
    if (skus.length > MAX_SKUS) throw badInput(`A product has at most ${MAX_SKUS} SKUs`, 'skus');
    const names = new Set<string>();
    return skus.map((s, i) => {
      const name = text(s.name, `skus[${i}].name`, 50);
      if (names.has(name.toLowerCase())) throw badInput(`Duplicate SKU name ${name}`, `skus[${i}].name`);
      names.add(name.toLowerCase());
      const price = fen(s.price, `skus[${i}].price`);
      const marketPrice = s.marketPrice == null ? null : fen(s.marketPrice, `skus[${i}].marketPrice`);
      const memberPrice = s.memberPrice == null ? null : fen(s.memberPrice, `skus[${i}].memberPrice`);
      checkPriceLadder(price, marketPrice, memberPrice, `skus[${i}].`);
      if (!Number.isSafeInteger(s.stock) || s.stock < 0 || s.stock > MAX_STOCK) {
        throw badInput(`Stock is a whole number from 0 to ${MAX_STOCK}`, `skus[${i}].stock`);
      }
      const lowStockThreshold = parseThreshold(s.lowStockThreshold ?? DEFAULT_LOW_STOCK_THRESHOLD, `skus[${i}].lowStockThreshold`);
      const specs = parseSpecs(s.specs ?? [], `skus[${i}].`);
      return { name, specs, price, marketPrice, memberPrice, initialStock: s.stock, lowStockThreshold, position: i };
    });
  }

  function parseKeywords(raw: string[] | null | undefined): string[] {
    const keywords = [...new Set((raw ?? []).map((k, i) => text(k, `keywords[${i}]`, 30)))];
    if (keywords.length > MAX_KEYWORDS) throw badInput(`At most ${MAX_KEYWORDS} keywords`, 'keywords');
    return keywords;
  }

  /**
   * The description fields present in `input`, validated (before anything is written); absent
   * ones are left out, so applying the result to a description changes only what was given.
   */
  async function descriptionChanges(input: DescriptionInput): Promise<Partial<ProductDescription>> {
    const next: Partial<ProductDescription> = {};
    if (input.name != null) next.name = text(input.name, 'name', 100);
    if (input.description != null) next.description = text(input.description, 'description', MAX_LONG_TEXT, { optional: true });
    if (input.keywords != null) next.keywords = parseKeywords(input.keywords);
    if (input.images != null) next.images = parseImages(input.images);
    if (input.parameters != null) next.parameters = parseParameters(input.parameters);
    if (input.afterSalesPolicy != null) {
      next.afterSalesPolicy = text(input.afterSalesPolicy, 'afterSalesPolicy', MAX_LONG_TEXT, { optional: true });
    }
    if (input.videoUrl !== undefined) next.videoUrl = input.videoUrl === null ? null : url(input.videoUrl, 'videoUrl');
    if (input.categoryId !== undefined) {
      next.categoryId = input.categoryId ? (await existingCategory(input.categoryId, 'categoryId'))._id : null;
    }
    return next;
  }

  const service = {
    /** Customers never see drafts; staff see everything. */
    visibleProduct(viewer: Viewer | null, product: ProductDoc | null): ProductDoc | null {
      if (!product) return null;
      return product.status !== 'DRAFT' || isStaff(viewer) ? product : null;
    },

    /** A SKU is visible when its product is. */
    async visibleSku(viewer: Viewer | null, loaders: CatalogLoaders, id: string): Promise<SkuDoc | null> {
      const sku = await loaders.sku.load(id);
      if (!sku) return null;
      return service.visibleProduct(viewer, await loaders.product.load(sku.productId.toHexString())) ? sku : null;
    },

    /** The owning product; SKUs are written before their product, so one may briefly have none. */
    async productOf(loaders: CatalogLoaders, sku: SkuDoc): Promise<ProductDoc> {
      const product = await loaders.product.load(sku.productId.toHexString());
      if (!product) throw notFound('Product');
      return product;
    },

    /** The product's "from" price: its cheapest SKU. */
    lowestPrice(skus: SkuDoc[]): Money {
      if (!skus.length) throw new Error('product without SKUs');
      return money(Math.min(...skus.map((s) => s.price)));
    },

    /** The product's lowest and highest SKU prices. */
    priceRange(skus: SkuDoc[]): { min: Money; max: Money } {
      const { minPrice, maxPrice } = pricesAndSpecs(skus);
      if (!skus.length) throw new Error('product without SKUs');
      return { min: money(minPrice), max: money(maxPrice) };
    },

    async rootCategories(viewer: Viewer | null): Promise<CategoryDoc[]> {
      const model = fromMemory(viewer);
      if (model) return model.rootCategories();
      return models.Category.find({ parentId: null }).sort({ _id: 1 }).lean<CategoryDoc[]>().exec();
    },

    async createCategory(viewer: Viewer | null, input: CreateCategoryInput): Promise<CategoryDoc> {
      requireRole(viewer, 'STAFF');
      const name = text(input.name, 'name', 30);
      const parent = input.parentId ? await existingCategory(input.parentId, 'parentId') : null;
      const doc: CategoryDoc = {
        _id: new Types.ObjectId(),
        name,
        nameKey: name.toLowerCase(),
        parentId: parent?._id ?? null,
        createdAt: now(),
      };
      try {
        await models.Category.create(doc);
      } catch (err) {
        if (isDuplicateKey(err)) throw new AppError('CONFLICT', `A category named ${name} already exists here`);
        throw err;
      }
      await deps.readModel?.categoriesChanged();
      return doc;
    },

    /**
     * SKUs and their stock ledgers (entry 1: INITIAL) are written first and the product last: the
     * product insert is what makes them reachable, and it carries the creation event (outbox), so
     * a crash in between leaves only unreachable SKUs behind, never a product without SKUs or
     * stock, or an event without a product.
     */
    async createProduct(viewer: Viewer | null, input: CreateProductInput): Promise<ProductDoc> {
      requireRole(viewer, 'STAFF');
      const description: ProductDescription = {
        ...descriptionOf({ name: text(input.name, 'name', 100) }),
        ...(await descriptionChanges(input)),
      };
      const status = input.status ? parseStatus(input.status) : 'DRAFT';
      const skus = parseSkus(input.skus ?? []);

      const _id = new Types.ObjectId();
      const createdAt = now();
      const skuDocs: SkuDoc[] = skus.map((s) => ({ ...s, _id: new Types.ObjectId(), productId: _id, createdAt }));
      await models.Sku.insertMany(skuDocs);
      await inventory.openAccounts(skuDocs, createdAt);
      // The listing as projection.ts would compute it from the SKUs and their INITIAL entries.
      const available = skus.reduce((sum, s) => sum + s.initialStock, 0);
      const product: ProductDoc = {
        _id,
        ...description,
        status,
        ...pricesAndSpecs(skuDocs),
        available,
        inStock: available > 0,
        salesCount: 0,
        createdAt,
        outbox: outboxRecord('catalog.product.changed', { productId: _id.toHexString(), status }, randomUUID(), createdAt),
      };
      try {
        await models.Product.create(product);
      } catch (err) {
        await inventory.discardAccounts(skuDocs.map((s) => s._id.toHexString())).catch(() => undefined);
        await models.Sku.deleteMany({ productId: _id }).catch(() => undefined);
        throw err;
      }
      deps.kick();
      // Projected once more so that the read models (this replica's at once) learn of it.
      if (deps.readModel && status !== 'DRAFT') await deps.projection.refresh(_id.toHexString());
      return product;
    },

    /**
     * Each change is claimed as the next entry of the product's status ledger (which carries the
     * event); the product's `status` is then projected from the ledger head (with the rest of its
     * listing). Re-running the projection on every call heals a crash between the two writes.
     */
    async setProductStatus(viewer: Viewer | null, input: SetProductStatusInput): Promise<ProductDoc> {
      const v = requireRole(viewer, 'STAFF');
      const to = parseStatus(input.status);
      const product = isObjectId(input.productId) ? await models.Product.findById(input.productId).lean<ProductDoc>() : null;
      if (!product) throw notFound('Product');
      const productId = product._id.toHexString();
      const entry = await appendToLedger(models.ProductStatusEntry, productId, (head) => {
        const from = head?.to ?? product.status;
        if (from === to) return null;
        if (to === 'DRAFT') throw badInput('A published product cannot become a draft again; take it off the shelf instead', 'status');
        const at = now();
        return { from, to, by: v.id, at, outbox: outboxRecord('catalog.product.changed', { productId, status: to }, randomUUID(), at) };
      });
      if (entry) deps.kick();
      return (await deps.projection.refresh(productId)) ?? product;
    },

    /**
     * Staff edit of the description: only the fields given change. The whole description after
     * the edit is claimed as the next entry of the product's revision ledger (two staff editing
     * different fields at once both land: the second builds on the first's entry) and projected
     * onto the product, where a concurrent write can no longer undo it for good.
     */
    async updateProduct(viewer: Viewer | null, input: UpdateProductInput): Promise<ProductDoc> {
      const v = requireRole(viewer, 'STAFF');
      const product = isObjectId(input.productId) ? await models.Product.findById(input.productId).lean<ProductDoc>() : null;
      if (!product) throw notFound('Product');
      const productId = product._id.toHexString();
      const changes = await descriptionChanges(input);
      if (!Object.keys(changes).length) return product;
      await appendToLedger(models.ProductRevision, productId, (head) => ({
        ...descriptionOf(head ?? product),
        ...changes,
        by: v.id,
        at: now(),
      }));
      return (await deps.projection.refresh(productId)) ?? product;
    },

    /**
     * Staff edit of a SKU: prices for future quotes (orders keep what they were quoted), the
     * reference and member prices, spec values and the low-stock threshold. A plain $set: staff
     * are its only writer (stock lives in the ledger, never here). The product's price range and
     * spec values are then recomputed from all its SKUs.
     */
    async updateSku(viewer: Viewer | null, input: UpdateSkuInput): Promise<SkuDoc> {
      requireRole(viewer, 'STAFF');
      const sku = isObjectId(input.skuId) ? await models.Sku.findById(input.skuId).lean<SkuDoc>() : null;
      if (!sku) throw notFound('SKU');
      const changes: Partial<SkuDoc> = {};
      if (input.price != null) changes.price = fen(input.price, 'price');
      if (input.marketPrice !== undefined) changes.marketPrice = input.marketPrice === null ? null : fen(input.marketPrice, 'marketPrice');
      if (input.memberPrice !== undefined) changes.memberPrice = input.memberPrice === null ? null : fen(input.memberPrice, 'memberPrice');
      if (input.specs != null) changes.specs = parseSpecs(input.specs, '');
      if (input.lowStockThreshold != null) changes.lowStockThreshold = parseThreshold(input.lowStockThreshold, 'lowStockThreshold');
      const next = { ...sku, ...changes };
      checkPriceLadder(next.price, next.marketPrice ?? null, next.memberPrice ?? null, '');
      if (changes.price !== undefined && changes.price !== sku.price) {
        // A flash sale is sold below the price: a new price may not undercut one still to end.
        const undercut = await models.FlashSale.findOne({ skuId: sku._id, endsAt: { $gt: now() }, flashPrice: { $gte: changes.price } })
          .select({ flashPrice: 1 })
          .lean();
        if (undercut) throw badInput(`A flash sale of this SKU sells at ${undercut.flashPrice} fen; the price must stay above it`, 'price');
      }
      if (Object.keys(changes).length) await models.Sku.updateOne({ _id: sku._id }, { $set: changes });
      hotSkus.drop(sku._id.toHexString());
      await deps.projection.refresh(sku.productId.toHexString());
      return next;
    },

    /**
     * Prices lines for orders (NATS `catalog.price.quote`). Prices come only from here; a SKU
     * that is unknown or whose product is not on sale refuses the whole quote. With a member, a
     * line of a live flash sale the member may still buy gets the flash price (priceKind FLASH);
     * a signed-in member pays a SKU's member price (MEMBER); every other line is LIST. Each line says
     * what is `available` now (the SKU's stock, or the flash sale's remaining quota), for the
     * cart to show; the reservation is what decides.
     */
    async quote(request: PriceQuoteRequest): Promise<PriceQuote> {
      const seen = new Set<string>();
      for (const line of request.lines) {
        if (seen.has(line.skuId)) throw badInput(`SKU ${line.skuId} appears more than once`, 'lines');
        seen.add(line.skuId);
        if (!Number.isSafeInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_QUOTE_QUANTITY) {
          throw badInput(`Quantity must be 1 to ${MAX_QUOTE_QUANTITY}`, 'quantity');
        }
      }
      const ids = [...seen].filter(isObjectId);
      const skus = await hotSkus.get(ids);
      const products = await deps.projection.hotProducts.get([...new Set([...skus.values()].map((s) => s.productId.toHexString()))]);
      const categoryIds = [
        ...new Set([...products.values()].map((p) => p.categoryId?.toHexString()).filter((c): c is string => Boolean(c))),
      ];
      const [offers, available, paths] = await Promise.all([
        request.memberId ? inventory.flashOffers(request.memberId, request.lines, request.orderId) : new Map<string, FlashOffer>(),
        inventory.availableOf(ids),
        Promise.all(categoryIds.map(async (c) => [c, await categoryPath(c)] as const)).then((e) => new Map(e)),
      ]);
      let total = 0;
      const lines = request.lines.map((line) => {
        const sku = skus.get(line.skuId);
        const product = sku && products.get(sku.productId.toHexString());
        if (!sku || !product) throw new AppError('NOT_FOUND', `SKU ${line.skuId} not found`);
        if (product.status !== 'ON_SALE') throw new AppError('BAD_USER_INPUT', `${product.name} is not on sale`, { skuId: line.skuId });
        const offer = offers.get(line.skuId);
        // A signed-in member pays the member price (会员价) where there is one; a flash price wins.
        const member = !offer && request.memberId && sku.memberPrice != null && sku.memberPrice < sku.price ? sku.memberPrice : null;
        const unitPrice = offer?.unitPrice ?? member ?? sku.price;
        total += unitPrice * line.quantity;
        return {
          skuId: line.skuId,
          productId: product._id.toHexString(),
          quantity: line.quantity,
          unitPrice,
          ...(offer
            ? { priceKind: 'FLASH' as const, flashSaleId: offer.flashSaleId }
            : { priceKind: member !== null ? ('MEMBER' as const) : ('LIST' as const) }),
          name: product.name,
          skuName: sku.name,
          available: offer ? offer.remaining : (available.get(line.skuId) ?? 0),
          ...(product.categoryId ? { categoryIds: paths.get(product.categoryId.toHexString()) ?? [] } : {}),
        };
      });
      if (!Number.isSafeInteger(total)) throw badInput('Order total is too large', 'lines');
      return { lines, total, currency: CURRENCY };
    },

    /** A request's loaders: from the read model for customers while it is ready, else from the database. */
    loaders(viewer: Viewer | null = null): CatalogLoaders {
      const fromDb = createLoaders(models, inventory);
      const model = fromMemory(viewer);
      return model ? readModelLoaders(model, fromDb) : fromDb;
    },
  };
  return service;
}

export type CatalogService = ReturnType<typeof createCatalogService>;

export interface Context extends BaseContext {
  service: CatalogService;
  inventory: InventoryService;
  browse: BrowseService;
  loaders: CatalogLoaders;
}
