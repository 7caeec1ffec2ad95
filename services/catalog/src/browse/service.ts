import type { QueryFilter, Types } from 'mongoose';
import { badInput, isStaff, MAX_PAGE, type Connection as Page, type PageArgs, type Viewer } from '@flywheel/service-kit';
import type { CategoryDoc, Models, ProductDoc, SpecValueDoc } from '../model';
import { money, type Money } from '../money';
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

/** The filter for "after this cursor" in the given sort; BAD_USER_INPUT for a foreign or forged cursor. */
export function afterCursor(sort: ProductSort, cursor: string): Record<string, unknown> {
  const invalid = () => badInput('invalid cursor (cursors belong to the sort they were issued for)', 'after');
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid();
  }
  if (!Array.isArray(parsed) || parsed.length !== 3 || parsed[0] !== sort) throw invalid();
  const [, value, id] = parsed as [string, unknown, unknown];
  if (typeof id !== 'string' || !/^[0-9a-f]{24}$/i.test(id)) throw invalid();
  const { key, dir } = ORDERS[sort];
  const past = dir === 1 ? '$gt' : '$lt';
  if (!key) return { _id: { [past]: id } };
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) throw invalid();
  return { $or: [{ [key]: { [past]: value } }, { [key]: value, _id: { [past]: id } }] };
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
  if (specs.length > MAX_SPEC_FILTERS) throw badInput(`At most ${MAX_SPEC_FILTERS} spec filters`, 'specs');
  const byName = new Map<string, Set<string>>();
  specs.forEach((s, i) => {
    const name = s.name.trim();
    const value = s.value.trim();
    if (!name || !value) throw badInput('A spec filter needs a name and a value', `specs[${i}]`);
    byName.set(name, (byName.get(name) ?? new Set()).add(specValueKey({ name, value })));
  });
  const every: string[] = [];
  const clauses: Record<string, unknown>[] = [];
  for (const keys of byName.values()) {
    if (keys.size === 1) every.push(...keys);
    else clauses.push({ specValues: { $in: [...keys] } });
  }
  return every.length ? [{ specValues: { $all: every } }, ...clauses] : clauses;
}

const byText = (a: string, b: string) => a.localeCompare(b, 'zh-Hans-CN', { numeric: true });

export function createBrowseService({ models }: { models: Models }) {
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
    const keyword = args.keyword?.trim();
    if (keyword) {
      if (keyword.length > MAX_KEYWORD_QUERY) throw badInput(`keyword is at most ${MAX_KEYWORD_QUERY} characters`, 'keyword');
      const pattern = keywordPattern(keyword);
      and.push({ $or: [{ name: pattern }, { keywords: pattern }] });
    }
    return and;
  }

  const where = (and: Record<string, unknown>[]): QueryFilter<ProductDoc> => (and.length ? { $and: and } : {}) as QueryFilter<ProductDoc>;

  return {
    /**
     * One page of products: filters combine with AND; every sort pages by keyset on (sort key,
     * _id), never by skip, so pages neither repeat nor miss products while the set is stable. A
     * product whose sort key changes between two page requests (a sale, a price edit) moves in
     * the order and may be seen twice or not at all across those pages, as in any live listing.
     */
    async listProducts(viewer: Viewer | null, args: ProductListArgs): Promise<Page<ProductDoc>> {
      const first = args.first ?? 20;
      if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be 1..${MAX_PAGE}`, 'first');
      const sort = args.sort ?? 'NEWEST';
      if (!PRODUCT_SORTS.includes(sort)) throw badInput(`Unknown sort ${String(sort)}`, 'sort');
      const minPrice = fen(args.minPrice, 'minPrice');
      const maxPrice = fen(args.maxPrice, 'maxPrice');
      if (minPrice !== null && maxPrice !== null && minPrice > maxPrice) throw badInput('minPrice is above maxPrice', 'minPrice');
      const and = await scope(viewer, args);
      if (minPrice !== null || maxPrice !== null) {
        and.push({ minPrice: { ...(minPrice !== null ? { $gte: minPrice } : {}), ...(maxPrice !== null ? { $lte: maxPrice } : {}) } });
      }
      if (args.specs?.length) and.push(...specFilter(args.specs));
      if (args.inStock != null) and.push({ inStock: args.inStock });
      if (args.after) and.push(afterCursor(sort, args.after));
      const docs = await models.Product.find(where(and))
        .sort(sortSpec(sort))
        .limit(first + 1)
        .lean<ProductDoc[]>();
      const edges = docs.slice(0, first).map((node) => ({ node, cursor: encodeCursor(sort, node) }));
      return { edges, pageInfo: { hasNextPage: docs.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
    },

    /**
     * Spec values and price range over the products a category page (and keyword) shows: one
     * `find` of their listing fields and a reduce in memory (no $facet on FerretDB), capped at
     * FACET_CAP products, newest first; `truncated` says the cap was hit.
     */
    async productFacets(viewer: Viewer | null, args: ProductFacetArgs): Promise<ProductFacets> {
      const docs = await models.Product.find(where(await scope(viewer, args)), { specValues: 1, minPrice: 1, maxPrice: 1 })
        .sort({ _id: -1 })
        .limit(FACET_CAP + 1)
        .lean<Pick<ProductDoc, 'specValues' | 'minPrice' | 'maxPrice'>[]>();
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
    },
  };
}

export type BrowseService = ReturnType<typeof createBrowseService>;
