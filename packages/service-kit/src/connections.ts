import type { QueryFilter, Model } from 'mongoose';
import { badInput } from './errors';

export interface PageArgs {
  first?: number | null;
  after?: string | null;
}
export interface Connection<N> {
  edges: { node: N; cursor: string }[];
  pageInfo: { hasNextPage: boolean; endCursor: string | null };
  totalCount?: number;
}

export const MAX_PAGE = 100;

/**
 * Relay connection over a collection, newest first by `_id` (ids are time-ordered ObjectIds or
 * time-prefixed strings). The cursor is the opaque base64 of the last `_id`.
 */
export async function paginate<T extends { _id: unknown }>(
  model: Model<T>,
  filter: QueryFilter<T>,
  args: PageArgs,
): Promise<Connection<T>> {
  const first = args.first ?? 20;
  if (!Number.isInteger(first) || first < 1 || first > MAX_PAGE) throw badInput(`first must be 1..${MAX_PAGE}`, 'first');
  let query: QueryFilter<T> = filter;
  if (args.after) {
    const after = Buffer.from(args.after, 'base64url').toString('utf8');
    if (!after) throw badInput('invalid cursor', 'after');
    query = { $and: [filter, { _id: { $lt: castId(model, after) } }] } as QueryFilter<T>;
  }
  const docs = (await model.find(query).sort({ _id: -1 }).limit(first + 1).lean()) as T[];
  const page = docs.slice(0, first);
  const edges = page.map((node) => ({ node, cursor: Buffer.from(String(node._id)).toString('base64url') }));
  return { edges, pageInfo: { hasNextPage: docs.length > first, endCursor: edges.at(-1)?.cursor ?? null } };
}

function castId<T>(model: Model<T>, raw: string): unknown {
  const path = model.schema.path('_id');
  try {
    return path ? path.cast(raw) : raw;
  } catch {
    throw badInput('invalid cursor', 'after');
  }
}
