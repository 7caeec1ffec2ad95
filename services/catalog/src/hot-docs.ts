import { findByIds } from '@flywheel/service-kit';
import type { Model } from 'mongoose';

/** How long a replica keeps a hot document it read. */
export const HOT_DOC_MS = 1_000;

/**
 * "Cache the hot item" (docs/concurrency.md, "Hot items") for quotes: in a rush every buyer is quoted the same SKU and
 * product. Each replica keeps the documents it read for `ttlMs`; a write made by this replica
 * drops them at once, another replica's write shows within `ttlMs`. The reservation and the
 * order still check what they must against the database.
 */
export function createHotDocs<T extends { _id: { toHexString(): string } }>(model: Model<T>, ttlMs: number, maxEntries = 10_000) {
  const cache = new Map<string, { at: number; doc: T | null }>();
  // A rush asks for the same documents all at once: one read in flight per id, shared by all.
  const inflight = new Map<string, Promise<Map<string, T>>>();
  // Bumped by drop(): a read that started before this replica's write must not cache what it saw.
  const epochs = new Map<string, number>();
  return {
    async get(ids: string[]): Promise<Map<string, T>> {
      const nowMs = Date.now();
      const out = new Map<string, T>();
      const waits = new Set<Promise<Map<string, T>>>();
      const missing: string[] = [];
      for (const id of ids) {
        const c = cache.get(id);
        if (c && nowMs - c.at < ttlMs) {
          if (c.doc) out.set(id, c.doc);
        } else if (inflight.has(id)) {
          waits.add(inflight.get(id)!);
        } else {
          missing.push(id);
        }
      }
      if (missing.length) {
        const started = missing.map((id) => epochs.get(id) ?? 0);
        const read = findByIds<T>(model, missing).then((docs) => {
          const found = new Map(docs.map((d) => [d._id.toHexString(), d]));
          if (cache.size > maxEntries) cache.clear();
          missing.forEach((id, i) => {
            if ((epochs.get(id) ?? 0) === started[i]) cache.set(id, { at: nowMs, doc: found.get(id) ?? null });
          });
          return found;
        });
        const shared = read.finally(() => {
          for (const id of missing) if (inflight.get(id) === shared) inflight.delete(id);
        });
        for (const id of missing) inflight.set(id, shared);
        waits.add(shared);
      }
      for (const found of await Promise.all(waits)) {
        for (const id of ids) {
          const doc = found.get(id);
          if (doc && !out.has(id)) out.set(id, doc);
        }
      }
      return out;
    },
    drop(id: string) {
      cache.delete(id);
      inflight.delete(id);
      if (epochs.size > maxEntries) epochs.clear();
      epochs.set(id, (epochs.get(id) ?? 0) + 1);
    },
  };
}
