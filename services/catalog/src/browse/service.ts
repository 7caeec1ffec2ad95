import type { QueryFilter, Types } from 'mongoose';
import { badInput, isObjectId, isStaff, MAX_PAGE, type Connection as Page, type PageArgs, type Viewer } from '@flywheel/service-kit';
import type { CategoryDoc, Models, ProductDoc, SpecValueDoc } from '../model';
import { money, type Money } from '../money';
import type { ReadModel } from '../storefront/service';
import { parseSpecValueKey, specValueKey } from './projection';

// What a shop frontend browses: the product listing (filters, sorts, keyset pages) and the
// facets of a category page. Everything here reads the product documents' listing fields
// (ProductListing, kept by projection.ts), so one indexed `find` answers a page: FerretDB has no
// $lookup or $facet, and the same query runs unchanged on MongoDB.
//
// Keyword search is a case-insensitive substring match over the name and keywords, with the
// user's text escaped (FerretDB has no $text). It scans the products the other filters leave,
// which is fine for a brand's catalogue of thousands. If it ever is not, production (MongoDB
// Atlas) would move it to an Atlas Search index on name + keywords (a `$search` stage with the
// `lucene.smartcn` analyzer for Chinese, listing filters as `filter` clauses, the same keyset
// cursors over `searchAfter`), or to a `$text` index where segmentation matters less; this
// module would then pick the search stage when a keyword is given and keep `find` otherwise.

export type ProductSort = 'NEWEST' | 'PRICE_ASC' | 'PRICE_DESC' | 'SALES_DESC';
export const PRODUCT_SORTS: readonly ProductSort[] = ['NEWEST', 'PRICE_ASC', 'PRICE_DESC', 'SALES_DESC'];

export interface ProductListArgs extends PageArgs {
  categoryId?: string | null;
  keyword?: string | null;
  /** Integer fen, on the product's lowest SKU price (inclusive). */
  minPrice?: number | null;
  maxPrice?: number | null;
  specs?: SpecValueDoc[] | null;
  inStock?: boolean | null;
  sort?: ProductSort | null;
}

export interface ProductFacetArgs {
  categoryId?: string | null;
  keyword?: string | null;
}

export interface PriceRange {
  min: Money;
  max: Money;
}

export interface ProductFacets {
  specs: { name: string; values: string[] }[];
  priceRange: PriceRange | null;
  truncated: boolean;
}

const MAX_KEYWORD_QUERY = 50;
const MAX_SPEC_FILTERS = 20;
/** Products a facet computation reads at most (newest first). */
export const FACET_CAP = 2_000;

/** A user's search text as a literal, case-insensitive pattern (no regex injection, no $text). */
export function keywordPattern(keyword: string): RegExp {
  return new RegExp(keyword.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i');
}

/**
 * Keyset order of each sort: the sort key, then `_id` in the same direction as a tiebreak, so
 * every (key, _id) pair is unique and a cursor names an exact position. Same direction on both
 * lets PRICE_ASC and PRICE_DESC scan one index forwards and backwards.
 */
const ORDERS: Record<ProductSort, { key: 'minPrice' | 'salesCount' | null; dir: 1 | -1 }> = {
  NEWEST: { key: null, dir: -1 },
  PRICE_ASC: { key: 'minPrice', dir: 1 },
  PRICE_DESC: { key: 'minPrice', dir: -1 },
  SALES_DESC: { key: 'salesCount', dir: -1 },
};

export function sortSpec(sort: ProductSort): Record<string, 1 | -1> {
  const { key, dir } = ORDERS[sort];
  return key ? { [key]: dir, _id: dir } : { _id: dir };
}

/** Opaque cursor: the sort it belongs to, the node's sort key and its id. */
export function encodeCursor(sort: ProductSort, doc: Pick<ProductDoc, '_id' | 'minPrice' | 'salesCount'>): string {
  const { key } = ORDERS[sort];
  return Buffer.from(JSON.stringify([sort, key ? doc[key] : null, doc._id.toHexString()])).toString('base64url');
}

/** The position a cursor names in the given sort; BAD_USER_INPUT for a foreign or forged cursor. */
export function parseCursor(sort: ProductSort, cursor: string): { value: number | null; id: string } {
  const invalid = () => badInput('invalid cursor (cursors belong to the sort they were issued for)', 'after');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== sort) throw invalid();
  const [, value, id] = parsed as [string, unknown, unknown];
  if (!isObjectId(id)) throw invalid();
  if (!ORDERS[sort].key) return { value: null, id };
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid();
  return { value, id };
}

/** The filter for "after this cursor" in the given sort; BAD_USER_INPUT for a foreign or forged cursor. */
export function afterCursor(sort: ProductSort, cursor: string): Record<string, unknown> {
  const { value, id } = parseCursor(sort, cursor);
  const { key, dir } = ORDERS[sort];
  const past = dir === 1 ? '$gt' : '$lt';
  if (!key) return { _id: { [past]: id } };
  return { $or: [{ [key]: { [past]: value } }, { [key]: value, _id: { [past]: id } }] };
}

/** The same order as `sortSpec` over documents in memory (ObjectIds compare as their hex). */
export function compareIn(sort: ProductSort): (a: Pick<ProductDoc, '_id' | 'minPrice' | 'salesCount'>, b: typeof a) => number {
  const { key, dir } = ORDERS[sort];
  return (a, b) => {
    // A missing number sorts first ascending, as null does in MongoDB.
    const byKey = key ? (a[key] ?? -Infinity) - (b[key] ?? -Infinity) : 0;
    if (byKey) return byKey * dir;
    const [x, y] = [a._id.toHexString(), b._id.toHexString()];
    return (x < y ? -1 : x > y ? 1 : 0) * dir;
  };
}

function fen(value: number | null | undefined, field: string): number | null {
  if (value == null) return null;
  if (!Number.isSafeInteger(value) || value < 0) throw badInput(`${field} is a whole number of fen, zero or more`, field);
  return value;
}

/**
 * Spec filters: values of one spec name are alternatives (红 or 蓝), different names must all
 * match (红 and L). A product matches on the union of its SKUs' spec values, so 红 + L also
 * matches a product selling a red S and a blue L; the SKU picker on the detail page resolves that.
 */
export function specFilter(specs: SpecValueDoc[]): Record<string, unknown>[] {
  const { every, anyOf } = specClauses(specs);
  const clauses = anyOf.map((keys) => ({ specValues: { $in: keys } }));
  return every.length ? [{ specValues: { $all: every } }, ...clauses] : clauses;
}

/** Spec filters as keys every product must have (`every`) and groups it needs one of (`anyOf`). */
function specClauses(specs: SpecValueDoc[]): { every: string[]; anyOf: string[][] } {
  if (specs.length > MAX_SPEC_FILTERS) throw badInput(`At most ${MAX_SPEC_FILTERS} spec filters`, 'specs');
  const byName = new Map<string, Set<string>>();
  specs.forEach((s, i) => {
    const name = s.name.trim();
    const value = s.value.trim();
    if (!name || !value) throw badInput('A spec filter needs a name and a value', `specs[${i}]`);
    byName.set(name, (byName.get(name) ?? new Set()).add(specValueKey({ name, value })));
  });
  const every: string[] = [];
  const anyOf: string[][] = [];
  for (const keys of byName.values()) {
    if (keys.size === 1) every.push(...keys);
    else anyOf.push([...keys]);
  }
  return { every, anyOf };
}

const byText = (a: string, b: string) => a.localeCompare(b, 'zh-Hans-CN', { numeric: true });

/** A listing request, validated: what both the database and the read model answer. */
interface ListQuery {
  first: number;
  sort: ProductSort;
  minPrice: number | null;
  maxPrice: number | null;
  specs: SpecValueDoc[];
  inStock: boolean | null;
  after: string | null;
}

function listQuery(args: ProductListArgs): ListQuery {
  const first = args.first ?? 20;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be 1..${MAX_PAGE}`, 'first');
  const sort = args.sort ?? 'NEWEST';
  if (!PRODUCT_SORTS.includes(sort)) throw badInput(`Unknown sort ${String(sort)}`, 'sort');
  const minPrice = fen(args.minPrice, 'minPrice');
  const maxPrice = fen(args.maxPrice, 'maxPrice');
  if (minPrice !== null && maxPrice !== null && minPrice > maxPrice) throw badInput('minPrice is above maxPrice', 'minPrice');
  return { first, sort, minPrice, maxPrice, specs: args.specs ?? [], inStock: args.inStock ?? null, after: args.after ?? null };
}

function keywordOf(args: ProductFacetArgs): RegExp | null {
  const keyword = args.keyword?.trim();
  if (!keyword) return null;
  if (keyword.length > MAX_KEYWORD_QUERY) throw badInput(`keyword is at most ${MAX_KEYWORD_QUERY} characters`, 'keyword');
  return keywordPattern(keyword);
}

function page(sort: ProductSort, first: number, docs: ProductDoc[]): Page<ProductDoc> {
  const edges = docs.slice(0, first).map((node) => ({ node, cursor: encodeCursor(sort, node) }));
  return { edges, pageInfo: { hasNextPage: docs.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

function facetsOf(docs: Pick<ProductDoc, 'specValues' | 'minPrice' | 'maxPrice'>[]): ProductFacets {
  const used = docs.slice(0, FACET_CAP);
  const values = new Map<string, Set<string>>();
  let min = Infinity;
  let max = -Infinity;
  for (const d of used) {
    for (const key of d.specValues ?? []) {
      const spec = parseSpecValueKey(key);
      if (spec) values.set(spec.name, (values.get(spec.name) ?? new Set()).add(spec.value));
    }
    if (typeof d.minPrice === 'number') min = Math.min(min, d.minPrice);
    if (typeof d.maxPrice === 'number') max = Math.max(max, d.maxPrice);
  }
  return {
    specs: [...values.keys()].sort(byText).map((name) => ({ name, values: [...values.get(name)!].sort(byText) })),
    priceRange: min <= max ? { min: money(min), max: money(max) } : null,
    truncated: docs.length > FACET_CAP,
  };
}

export interface BrowseDeps {
  models: Models;
  /** When given and ready, customers' listings are answered from it (storefront/service.ts). */
  readModel?: ReadModel | null;
}

export function createBrowseService({ models, readModel }: BrowseDeps) {
  /** The read model answers customers only: staff see drafts, which it does not hold. */
  const fromMemory = (viewer: Viewer | null): ReadModel | null => (readModel && !isStaff(viewer) && readModel.ready() ? readModel : null);

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

  /** Visibility, category and keyword: what the listing and its facets share. */
  async function scope(viewer: Viewer | null, args: ProductFacetArgs): Promise<Record<string, unknown>[]> {
    const and: Record<string, unknown>[] = [];
    if (!isStaff(viewer)) and.push({ status: 'ON_SALE' });
    if (args.categoryId) and.push({ categoryId: { $in: await withDescendants(args.categoryId) } });
    const pattern = keywordOf(args);
    if (pattern) and.push({ $or: [{ name: pattern }, { keywords: pattern }] });
    return and;
  }

  const where = (and: Record<string, unknown>[]): QueryFilter<ProductDoc> => (and.length ? { $and: and } : {}) as QueryFilter<ProductDoc>;

  /**
   * The same scope as `scope` over the read model's products on sale: a predicate that matches
   * exactly what the database filter matches.
   */
  function scopeIn(model: ReadModel, args: ProductFacetArgs): (d: ProductDoc) => boolean {
    const categories = args.categoryId ? model.withDescendants(args.categoryId) : null;
    const pattern = keywordOf(args);
    return (d) =>
      (!categories || (d.categoryId != null && categories.has(d.categoryId.toHexString()))) &&
      (!pattern || pattern.test(d.name) || (d.keywords ?? []).some((k) => pattern.test(k)));
  }

  function listInMemory(model: ReadModel, args: ProductListArgs, q: ListQuery): ProductDoc[] {
    const inScope = scopeIn(model, args);
    const { every, anyOf } = specClauses(q.specs);
    const compare = compareIn(q.sort);
    const after = q.after ? parseCursor(q.sort, q.after) : null;
    // The cursor as a document: "after" it is what sorts after it, exactly as the keyset filter.
    const mark =
      after && ({ _id: { toHexString: () => after.id.toLowerCase() }, minPrice: after.value, salesCount: after.value } as ProductDoc);
    const out: ProductDoc[] = [];
    for (const d of model.onSale(q.sort, compare)) {
      if (mark && compare(d, mark) <= 0) continue;
      if (q.minPrice !== null || q.maxPrice !== null) {
        if (typeof d.minPrice !== 'number') continue;
        if ((q.minPrice !== null && d.minPrice < q.minPrice) || (q.maxPrice !== null && d.minPrice > q.maxPrice)) continue;
      }
      if (every.length || anyOf.length) {
        const has = new Set(d.specValues ?? []);
        if (!every.every((k) => has.has(k)) || !anyOf.every((keys) => keys.some((k) => has.has(k)))) continue;
      }
      if (q.inStock !== null && d.inStock !== q.inStock) continue;
      if (!inScope(d)) continue;
      out.push(d);
      if (out.length > q.first) break;
    }
    return out;
  }

  return {
    /**
     * One page of products: filters combine with AND; every sort pages by keyset on (sort key,
     * _id), never by skip, so pages neither repeat nor miss products while the set is stable. A
     * product whose sort key changes between two page requests (a sale, a price edit) moves in
     * the order and may be seen twice or not at all across those pages, as in any live listing.
     * Customers are answered from the read model when it is ready; the cursors are the same.
     */
    async listProducts(viewer: Viewer | null, args: ProductListArgs): Promise<Page<ProductDoc>> {
      const q = listQuery(args);
      const model = fromMemory(viewer);
      if (model) return page(q.sort, q.first, listInMemory(model, args, q));
      const and = await scope(viewer, args);
      if (q.minPrice !== null || q.maxPrice !== null) {
        and.push({
          minPrice: { ...(q.minPrice !== null ? { $gte: q.minPrice } : {}), ...(q.maxPrice !== null ? { $lte: q.maxPrice } : {}) },
        });
      }
      if (q.specs.length) and.push(...specFilter(q.specs));
      if (q.inStock !== null) and.push({ inStock: q.inStock });
      if (q.after) and.push(afterCursor(q.sort, q.after));
      const docs = await models.Product.find(where(and))
        .sort(sortSpec(q.sort))
        .limit(q.first + 1)
        .lean<ProductDoc[]>();
      return page(q.sort, q.first, docs);
    },

    /**
     * Spec values and price range over the products a category page (and keyword) shows: one
     * `find` of their listing fields and a reduce in memory (no $facet on FerretDB), capped at
     * FACET_CAP products, newest first; `truncated` says the cap was hit.
     */
    async productFacets(viewer: Viewer | null, args: ProductFacetArgs): Promise<ProductFacets> {
      const model = fromMemory(viewer);
      if (model) {
        const inScope = scopeIn(model, args);
        const docs: ProductDoc[] = [];
        for (const d of model.onSale('NEWEST', compareIn('NEWEST'))) {
          if (!inScope(d)) continue;
          docs.push(d);
          if (docs.length > FACET_CAP) break;
        }
        return facetsOf(docs);
      }
      const docs = await models.Product.find(where(await scope(viewer, args)), { specValues: 1, minPrice: 1, maxPrice: 1 })
        .sort({ _id: -1 })
        .limit(FACET_CAP + 1)
        .lean<Pick<ProductDoc, 'specValues' | 'minPrice' | 'maxPrice'>[]>();
      return facetsOf(docs);
    },
  };
}

export type BrowseService = ReturnType<typeof createBrowseService>;
