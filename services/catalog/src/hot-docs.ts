import { findByIds } from '@flywheel/service-kit';
import type { Model } from 'mongoose';

/** How long a replica keeps a hot document it read. */
export const HOT_DOC_MS = 1_000;

/**
 * The seeds' "cache the hot item" for quotes: in a rush every buyer is quoted the same SKU and
 * product. Each replica keeps the documents it read for `ttlMs`; a write made by this replica
 * drops them at once, another replica's write shows within `ttlMs`. The reservation and the
 * order still check what they must against the database.
 */
export function createHotDocs<T extends { _id: { toHexString(): string } }>(model: Model<T>, ttlMs: number, maxEntries = 10_000) {
  const cache = new Map<string, { at: number; doc: T | null }>();
  return {
    async get(ids: string[]): Promise<Map<string, T>> {
      const nowMs = Date.now();
      const missing = ids.filter((id) => {
        const c = cache.get(id);
        return !c || nowMs - c.at >= ttlMs;
      });
      if (missing.length) {
        const found = new Map((await findByIds<T>(model, missing)).map((d) => [d._id.toHexString(), d]));
        if (cache.size > maxEntries) cache.clear();
        for (const id of missing) cache.set(id, { at: nowMs, doc: found.get(id) ?? null });
      }
      const out = new Map<string, T>();
      for (const id of ids) {
        const doc = cache.get(id)?.doc;
        if (doc) out.set(id, doc);
      }
      return out;
    },
    drop(id: string) {
      cache.delete(id);
    },
  };
}
