import type { Model, QueryFilter } from 'mongoose';
import { badInput } from './errors';

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}
export interface Connection<N> {
  edges: { node: N; cursor: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
}

export const MAX_PAGE = 100;

const invalidCursor = () => badInput('invalid cursor', 'after');

/**
 * Relay connection over a collection, newest first. By default ordered by `_id` (time-ordered
 * ObjectIds); with `by`, ordered by that Date field then `_id` (for ids that are not
 * time-ordered, such as hashes used as claims). Cursors are opaque base64url.
 */
export async function paginate<T extends { _id: unknown }>(
  model: Model<T>,
  filter: QueryFilter<T>,
  args: PageArgs,
  opts: { by?: keyof T & string } = {},
): Promise<Connection<T>> {
  const first = args.first ?? 20;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be 1..${MAX_PAGE}`, 'first');
  const by = opts.by;
  let query: QueryFilter<T> = filter;
  if (args.after) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(args.after, 'base64url').toString('utf8'));
    } catch {
      throw invalidCursor();
    }
    if (!Array.isArray(parsed) || typeof parsed[0] !== 'string') throw invalidCursor();
    const id = castId(model, parsed[0]);
    if (by) {
      if (typeof parsed[1] !== 'number') throw invalidCursor();
      const at = new Date(parsed[1]);
      query = { $and: [filter, { $or: [{ [by]: { $lt: at } }, { [by]: at, _id: { $lt: id } }] }] } as QueryFilter<T>;
    } else {
      query = { $and: [filter, { _id: { $lt: id } }] } as QueryFilter<T>;
    }
  }
  const sort: Record<string, -1> = by ? { [by]: -1, _id: -1 } : { _id: -1 };
  const docs = (await model
    .find(query)
    .sort(sort)
    .limit(first + 1)
    .lean()) as T[];
  const cursor = (d: T) =>
    Buffer.from(JSON.stringify(by ? [String(d._id), (d[by] as unknown as Date).getTime()] : [String(d._id)])).toString('base64url');
  const edges = docs.slice(0, first).map((node) => ({ node, cursor: cursor(node) }));
  return { edges, pageInfo: { hasNextPage: docs.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

function castId<T>(model: Model<T>, raw: string): unknown {
  try {
    return model.schema.path('_id').cast(raw, undefined, false);
  } catch {
    throw invalidCursor();
  }
}
