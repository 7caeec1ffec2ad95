import type { ReplyData, RequestData } from '@flywheel/events';
import { badInput, httpUrl, text, wholeNumber } from '@flywheel/service-kit';
import type { CategoryDoc, ProductDescription, ProductImageDoc, ProductParameterDoc, ProductStatus, SkuDoc, SpecValueDoc } from '../model';
import { DEFAULT_LOW_STOCK_THRESHOLD, MAX_LINE_QUANTITY, MAX_STOCK } from '../stock/ledger';

// The input rules of products and SKUs: what staff may enter, checked before anything is written.

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
  /** Grams per unit, for weight-based shipping fees (0 to MAX_WEIGHT_GRAMS). */
  weightGrams?: number | null;
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
  /** null clears it. */
  weightGrams?: number | null;
}
export interface SetProductStatusInput {
  productId: string;
  status: ProductStatus;
}
export type PriceQuoteRequest = RequestData<'catalog.price.quote'>;
export type PriceQuote = ReplyData<'catalog.price.quote'>;

/** A price: a whole number of fen above zero. */
export function fen(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 1) throw badInput('A price is a whole number of fen greater than zero', field);
  return value;
}

/** 划线价 ≥ price ≥ member price: the reference price is never below what is charged, the member price never above. */
export function checkPriceLadder(price: number, marketPrice: number | null, memberPrice: number | null, prefix: string) {
  if (marketPrice !== null && marketPrice < price) throw badInput('The market price cannot be below the price', `${prefix}marketPrice`);
  if (memberPrice !== null && memberPrice > price) throw badInput('The member price cannot be above the price', `${prefix}memberPrice`);
}

export function parseSpecs(specs: SpecValueInput[], prefix: string): SpecValueDoc[] {
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

export function parseThreshold(value: number, field: string): number {
  if (!Number.isSafeInteger(value) || value < 0 || value > MAX_STOCK) {
    throw badInput(`The low-stock threshold is a whole number from 0 to ${MAX_STOCK}`, field);
  }
  return value;
}

export function parseImages(images: ProductImageInput[]): ProductImageDoc[] {
  if (images.length > MAX_IMAGES) throw badInput(`At most ${MAX_IMAGES} images`, 'images');
  return images.map((img, i) => ({
    url: httpUrl(img.url, `images[${i}].url`, MAX_URL),
    alt: text(img.alt, `images[${i}].alt`, 100, { optional: true }),
  }));
}

export function parseParameters(parameters: ProductParameterDoc[]): ProductParameterDoc[] {
  if (parameters.length > MAX_PARAMETERS) throw badInput(`At most ${MAX_PARAMETERS} parameters`, 'parameters');
  return parameters.map((p, i) => ({
    name: text(p.name, `parameters[${i}].name`, 30),
    value: text(p.value, `parameters[${i}].value`, 200),
  }));
}

export function parseStatus(status: string, field = 'status'): ProductStatus {
  if (!PRODUCT_STATUSES.includes(status as ProductStatus)) throw badInput(`Unknown product status ${status}`, field);
  return status as ProductStatus;
}

export function parseSkus(skus: SkuInput[]): Omit<SkuDoc, '_id' | 'productId' | 'createdAt'>[] {
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
    const weight = s.weightGrams == null ? {} : { weightGrams: parseWeight(s.weightGrams, `skus[${i}].weightGrams`) };
    return { name, specs, price, marketPrice, memberPrice, initialStock: s.stock, lowStockThreshold, position: i, ...weight };
  });
}

/** A parcel of one unit weighs at most 100 kg: beyond that it is freight, not a shop's parcel. */
export const MAX_WEIGHT_GRAMS = 100_000;
export const parseWeight = (grams: number, field: string) => wholeNumber(grams, field, 0, MAX_WEIGHT_GRAMS);

export function parseKeywords(raw: string[] | null | undefined): string[] {
  const keywords = [...new Set((raw ?? []).map((k, i) => text(k, `keywords[${i}]`, 30)))];
  if (keywords.length > MAX_KEYWORDS) throw badInput(`At most ${MAX_KEYWORDS} keywords`, 'keywords');
  return keywords;
}

/**
 * The description fields present in `input`, validated (before anything is written); absent
 * ones are left out, so applying the result to a description changes only what was given.
 */
export async function descriptionChanges(
  input: DescriptionInput,
  existingCategory: (id: string, field: string) => Promise<CategoryDoc>,
): Promise<Partial<ProductDescription>> {
  const next: Partial<ProductDescription> = {};
  if (input.name != null) next.name = text(input.name, 'name', 100);
  if (input.description != null) next.description = text(input.description, 'description', MAX_LONG_TEXT, { optional: true });
  if (input.keywords != null) next.keywords = parseKeywords(input.keywords);
  if (input.images != null) next.images = parseImages(input.images);
  if (input.parameters != null) next.parameters = parseParameters(input.parameters);
  if (input.afterSalesPolicy != null) {
    next.afterSalesPolicy = text(input.afterSalesPolicy, 'afterSalesPolicy', MAX_LONG_TEXT, { optional: true });
  }
  if (input.videoUrl !== undefined) next.videoUrl = input.videoUrl === null ? null : httpUrl(input.videoUrl, 'videoUrl', MAX_URL);
  if (input.categoryId !== undefined) {
    next.categoryId = input.categoryId ? (await existingCategory(input.categoryId, 'categoryId'))._id : null;
  }
  return next;
}
