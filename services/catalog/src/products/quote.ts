import { AppError, badInput, isObjectId } from '@flywheel/service-kit';
import type { ProductProjection } from '../browse/projection';
import type { FlashAdmission, FlashOffer } from '../flash-sales/admission';
import { createHotDocs, HOT_DOC_MS } from '../hot-docs';
import type { CategoryDoc, Models, SkuDoc } from '../model';
import { CURRENCY } from '../money';
import type { StockService } from '../stock/service';
import { MAX_QUOTE_QUANTITY, type PriceQuote, type PriceQuoteRequest } from './rules';

export interface QuoteDeps {
  models: Models;
  projection: ProductProjection;
  stock: Pick<StockService, 'availableOf'>;
  admission: Pick<FlashAdmission, 'flashOffers'>;
}

/** Prices for orders: the only place a price is decided. */
export function createQuoter({ models, projection, stock, admission }: QuoteDeps) {
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

  /**
   * Prices lines for orders (NATS `catalog.price.quote`). Prices come only from here; a SKU
   * that is unknown or whose product is not on sale refuses the whole quote. With a member, a
   * line of a live flash sale the member may still buy gets the flash price (priceKind FLASH);
   * a signed-in member pays a SKU's member price (MEMBER); every other line is LIST. Each line says
   * what is `available` now (the SKU's stock, or the flash sale's remaining quota), for the
   * cart to show; the reservation is what decides.
   */
  async function quote(request: PriceQuoteRequest): Promise<PriceQuote> {
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
    const products = await projection.hotProducts.get([...new Set([...skus.values()].map((s) => s.productId.toHexString()))]);
    const categoryIds = [...new Set([...products.values()].map((p) => p.categoryId?.toHexString()).filter((c): c is string => Boolean(c)))];
    const [offers, available, paths] = await Promise.all([
      request.memberId ? admission.flashOffers(request.memberId, request.lines, request.orderId) : new Map<string, FlashOffer>(),
      stock.availableOf(ids),
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
        ...(sku.weightGrams != null ? { weightGrams: sku.weightGrams } : {}),
        ...(product.categoryId ? { categoryIds: paths.get(product.categoryId.toHexString()) ?? [] } : {}),
      };
    });
    if (!Number.isSafeInteger(total)) throw badInput('Order total is too large', 'lines');
    return { lines, total, currency: CURRENCY };
  }

  return { quote, dropSku: (skuId: string) => hotSkus.drop(skuId) };
}

export type Quoter = ReturnType<typeof createQuoter>;
