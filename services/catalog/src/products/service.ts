import { randomUUID } from 'node:crypto';
import DataLoader from 'dataloader';
import { Types } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  byIdLoader,
  isDuplicateKey,
  isObjectId,
  isStaff,
  notFound,
  outboxRecord,
  requireRole,
  text,
  type Viewer,
} from '@flywheel/service-kit';
import { descriptionOf, pricesAndSpecs, type ProductProjection } from '../browse/projection';
import type { CategoryDoc, Models, ProductDescription, ProductDoc, SkuDoc } from '../model';
import { money, type Money } from '../money';
import type { StockService } from '../stock/service';
import type { ReadModel } from '../storefront/service';
import type { Quoter } from './quote';
import {
  checkPriceLadder,
  descriptionChanges,
  fen,
  parseSkus,
  parseSpecs,
  parseStatus,
  parseThreshold,
  parseWeight,
  type CreateCategoryInput,
  type CreateProductInput,
  type SetProductStatusInput,
  type UpdateProductInput,
  type UpdateSkuInput,
} from './rules';

/** Per-request batching: one query per tick for each kind of look-up. */
export function productLoaders(models: Models) {
  return {
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

export type ProductLoaders = ReturnType<typeof productLoaders>;

export interface ProductDeps {
  models: Models;
  /** Opens (and, on a failed creation, discards) the new SKUs' stock ledgers. */
  stock: Pick<StockService, 'openAccounts' | 'discardAccounts'>;
  /** Recomputes a product's listing fields and projects its ledgers (browse/projection.ts). */
  projection: ProductProjection;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  /** The storefront read model (storefront/), when enabled: customers' look-ups are answered from it. */
  readModel?: ReadModel | null;
  quoter: Quoter;
  now: () => Date;
}

/** Categories, products and SKUs: staff edits, what customers may see, and prices (quotes). */
export function createProductService(deps: ProductDeps) {
  const { models, now } = deps;
  /** Staff read the database: they see drafts and must see their own edits at once. */
  const fromMemory = (viewer: Viewer | null): ReadModel | null =>
    deps.readModel && !isStaff(viewer) && deps.readModel.ready() ? deps.readModel : null;

  async function existingCategory(id: string, field: string): Promise<CategoryDoc> {
    const found = isObjectId(id) ? await models.Category.findById(id).lean<CategoryDoc>() : null;
    if (!found) throw badInput('Category does not exist', field);
    return found;
  }

  const service = {
    /** Customers never see drafts; staff see everything. */
    visibleProduct(viewer: Viewer | null, product: ProductDoc | null): ProductDoc | null {
      if (!product) return null;
      return product.status !== 'DRAFT' || isStaff(viewer) ? product : null;
    },

    /** A SKU is visible when its product is. */
    async visibleSku(viewer: Viewer | null, loaders: ProductLoaders, id: string): Promise<SkuDoc | null> {
      const sku = await loaders.sku.load(id);
      if (!sku) return null;
      return service.visibleProduct(viewer, await loaders.product.load(sku.productId.toHexString())) ? sku : null;
    },

    /** The owning product; SKUs are written before their product, so one may briefly have none. */
    async productOf(loaders: ProductLoaders, sku: SkuDoc): Promise<ProductDoc> {
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
        ...(await descriptionChanges(input, existingCategory)),
      };
      const status = input.status ? parseStatus(input.status) : 'DRAFT';
      const skus = parseSkus(input.skus ?? []);

      const _id = new Types.ObjectId();
      const createdAt = now();
      const skuDocs: SkuDoc[] = skus.map((s) => ({ ...s, _id: new Types.ObjectId(), productId: _id, createdAt }));
      await models.Sku.insertMany(skuDocs);
      await deps.stock.openAccounts(skuDocs, createdAt);
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
        await deps.stock.discardAccounts(skuDocs.map((s) => s._id.toHexString())).catch(() => undefined);
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
      const changes = await descriptionChanges(input, existingCategory);
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
      if (input.weightGrams !== undefined)
        changes.weightGrams = input.weightGrams === null ? null : parseWeight(input.weightGrams, 'weightGrams');
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
      deps.quoter.dropSku(sku._id.toHexString());
      await deps.projection.refresh(sku.productId.toHexString());
      return next;
    },

    quote: deps.quoter.quote,
  };
  return service;
}

export type ProductService = ReturnType<typeof createProductService>;
