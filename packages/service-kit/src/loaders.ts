import DataLoader from 'dataloader';
import type { Model } from 'mongoose';

/**
 * Batches by-id loads into one `$in` query per tick (entity resolution for `_entities` and
 * per-request lookups). Missing or malformed ids resolve to null, in the order asked.
 */
export function byIdLoader<T>(model: Model<T>): DataLoader<string, T | null> {
  const idPath = model.schema.path('_id');
  const valid = (id: string) => {
    try {
      idPath.cast(id, undefined, false);
      return true;
    } catch {
      return false;
    }
  };
  return new DataLoader<string, T | null>(async (ids) => {
    const wanted = ids.filter(valid);
    const docs = wanted.length ? ((await model.find({ _id: { $in: wanted } }).lean()) as T[]) : [];
    const byId = new Map(docs.map((d) => [String((d as { _id: unknown })._id), d]));
    return ids.map((id) => byId.get(id) ?? null);
  });
}
