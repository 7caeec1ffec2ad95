import { randomUUID } from 'node:crypto';
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
  paginate,
  requireRole,
  type BaseContext,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import { DEFAULT_LOW_STOCK_THRESHOLD, MAX_LINE_QUANTITY, MAX_STOCK } from './inventory/ledger';
import type { FlashOffer, InventoryService } from './inventory/service';
import type { CategoryDoc, Models, ProductDoc, ProductStatus, ProductStatusEntryDoc, SkuDoc, SpecValueDoc } from './model';
import { CURRENCY, money, type Money } from './money';

export { CURRENCY, money, type Money };

export const PRODUCT_STATUSES: readonly ProductStatus[] = ['DRAFT', 'ON_SALE', 'OFF_SHELF'];

// Bounds that keep one product's document and the storefront sane; not business rules.
const MAX_SKUS = 100;
const MAX_SPECS = 10;
const MAX_KEYWORDS = 20;
const MAX_KEYWORD_QUERY = 50;
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
  /** Initial stock: the SKU's INITIAL ledger entry. */
  stock: number;
  lowStockThreshold?: number | null;
}
export interface CreateProductInput {
  name: string;
  description?: string | null;
  categoryId?: string | null;
  keywords?: string[] | null;
  /** DRAFT when omitted. */
  status?: ProductStatus | null;
  skus: SkuInput[];
}
export interface SetProductStatusInput {
  productId: string;
  status: ProductStatus;
}
export interface ProductListArgs extends PageArgs {
  categoryId?: string | null;
  keyword?: string | null;
}

export type PriceQuoteRequest = RequestData<'catalog.price.quote'>;
export type PriceQuote = ReplyData<'catalog.price.quote'>;

export interface CatalogDeps {
  models: Models;
  /** Stock ledgers, reservations and flash sales (inventory/). */
  inventory: InventoryService;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
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

/** A user's search text as a literal, case-insensitive pattern (no regex injection, no $text). */
export function keywordPattern(keyword: string): RegExp {
  return new RegExp(keyword.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
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
      if (!Number.isSafeInteger(s.price) || s.price <= 0) {
        throw badInput('Price is a whole number of fen greater than zero', `skus[${i}].price`);
      }
      if (!Number.isSafeInteger(s.stock) || s.stock < 0 || s.stock > MAX_STOCK) {
        throw badInput(`Stock is a whole number from 0 to ${MAX_STOCK}`, `skus[${i}].stock`);
      }
      const lowStockThreshold = s.lowStockThreshold ?? DEFAULT_LOW_STOCK_THRESHOLD;
      if (!Number.isSafeInteger(lowStockThreshold) || lowStockThreshold < 0 || lowStockThreshold > MAX_STOCK) {
        throw badInput(`The low-stock threshold is a whole number from 0 to ${MAX_STOCK}`, `skus[${i}].lowStockThreshold`);
      }
      const specs = s.specs ?? [];
      if (specs.length > MAX_SPECS) throw badInput(`A SKU has at most ${MAX_SPECS} spec values`, `skus[${i}].specs`);
      const specNames = new Set<string>();
      const parsedSpecs: SpecValueDoc[] = specs.map((sp, j) => {
        const spec = { name: text(sp.name, `skus[${i}].specs[${j}].name`, 30), value: text(sp.value, `skus[${i}].specs[${j}].value`, 30) };
        if (specNames.has(spec.name)) throw badInput(`Duplicate spec ${spec.name}`, `skus[${i}].specs[${j}].name`);
        specNames.add(spec.name);
        return spec;
      });
      return { name, specs: parsedSpecs, price: s.price, initialStock: s.stock, lowStockThreshold, position: i };
    });
  }

  function parseKeywords(raw: string[] | null | undefined): string[] {
    const keywords = [...new Set((raw ?? []).map((k, i) => text(k, `keywords[${i}]`, 30)))];
    if (keywords.length > MAX_KEYWORDS) throw badInput(`At most ${MAX_KEYWORDS} keywords`, 'keywords');
    return keywords;
  }

  /** The category and every category below it (the tree is small and read whole). */
  async function withDescendants(categoryId: string): Promise<Types.ObjectId[]> {
    const all = await models.Category.find({}, { _id: 1, parentId: 1 }).lean<Pick<CategoryDoc, '_id' | 'parentId'>[]>();
    const found = all.find((c) => c._id.toHexString() === categoryId);
    if (!found) return [];
    const ids = [found._id];
    for (let i = 0; i < ids.length; i++) {
      const parent = ids[i]!.toHexString();
      for (const c of all) if (c.parentId?.toHexString() === parent) ids.push(c._id);
    }
    return ids;
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

    rootCategories(): Promise<CategoryDoc[]> {
      return models.Category.find({ parentId: null }).sort({ _id: 1 }).lean<CategoryDoc[]>().exec();
    },

    async listProducts(viewer: Viewer | null, args: ProductListArgs) {
      const and: Record<string, unknown>[] = [];
      if (!isStaff(viewer)) and.push({ status: 'ON_SALE' });
      if (args.categoryId) and.push({ categoryId: { $in: await withDescendants(args.categoryId) } });
      const keyword = args.keyword?.trim();
      if (keyword) {
        if (keyword.length > MAX_KEYWORD_QUERY) throw badInput(`keyword is at most ${MAX_KEYWORD_QUERY} characters`, 'keyword');
        const pattern = keywordPattern(keyword);
        and.push({ $or: [{ name: pattern }, { keywords: pattern }] });
      }
      return paginate(models.Product, and.length ? { $and: and } : {}, args);
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
      const name = text(input.name, 'name', 100);
      const description = text(input.description, 'description', 5_000, { optional: true });
      const keywords = parseKeywords(input.keywords);
      const status = input.status ? parseStatus(input.status) : 'DRAFT';
      const skus = parseSkus(input.skus ?? []);
      const category = input.categoryId ? await existingCategory(input.categoryId, 'categoryId') : null;

      const _id = new Types.ObjectId();
      const createdAt = now();
      const skuDocs: SkuDoc[] = skus.map((s) => ({ ...s, _id: new Types.ObjectId(), productId: _id, createdAt }));
      await models.Sku.insertMany(skuDocs);
      await inventory.openAccounts(skuDocs, createdAt);
      const product: ProductDoc = {
        _id,
        name,
        description,
        categoryId: category?._id ?? null,
        keywords,
        status,
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
      return product;
    },

    /**
     * Each change is claimed as the next entry of the product's status ledger (which carries the
     * event); the product's `status` is then set from the ledger head. Re-running the projection
     * on every call heals a crash between the two writes.
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
      const head = await models.ProductStatusEntry.findOne({ accountId: productId }).sort({ seq: -1 }).lean<ProductStatusEntryDoc>();
      if (!head) return product;
      if (head.to !== product.status) await models.Product.updateOne({ _id: product._id }, { $set: { status: head.to } });
      return { ...product, status: head.to };
    },

    /**
     * Prices lines for orders (NATS `catalog.price.quote`). Prices come only from here; a SKU
     * that is unknown or whose product is not on sale refuses the whole quote. With a member, a
     * line of a live flash sale the member may still buy gets the flash price (priceKind FLASH);
     * every other line is LIST (MEMBER prices arrive with membership pricing).
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
      const skus = new Map((await models.Sku.find({ _id: { $in: ids } }).lean<SkuDoc[]>()).map((s) => [s._id.toHexString(), s]));
      const productIds = [...new Set([...skus.values()].map((s) => s.productId.toHexString()))];
      const products = new Map(
        (await models.Product.find({ _id: { $in: productIds } }).lean<ProductDoc[]>()).map((p) => [p._id.toHexString(), p]),
      );
      const offers = request.memberId ? await inventory.flashOffers(request.memberId, request.lines) : new Map<string, FlashOffer>();
      let total = 0;
      const lines = request.lines.map((line) => {
        const sku = skus.get(line.skuId);
        const product = sku && products.get(sku.productId.toHexString());
        if (!sku || !product) throw new AppError('NOT_FOUND', `SKU ${line.skuId} not found`);
        if (product.status !== 'ON_SALE') throw new AppError('BAD_USER_INPUT', `${product.name} is not on sale`, { skuId: line.skuId });
        const offer = offers.get(line.skuId);
        const unitPrice = offer?.unitPrice ?? sku.price;
        total += unitPrice * line.quantity;
        return {
          skuId: line.skuId,
          productId: product._id.toHexString(),
          quantity: line.quantity,
          unitPrice,
          ...(offer ? { priceKind: 'FLASH' as const, flashSaleId: offer.flashSaleId } : { priceKind: 'LIST' as const }),
          name: product.name,
          skuName: sku.name,
        };
      });
      if (!Number.isSafeInteger(total)) throw badInput('Order total is too large', 'lines');
      return { lines, total, currency: CURRENCY };
    },

    loaders: () => createLoaders(models, inventory),
  };
  return service;
}

export type CatalogService = ReturnType<typeof createCatalogService>;

export interface Context extends BaseContext {
  service: CatalogService;
  inventory: InventoryService;
  loaders: CatalogLoaders;
}
