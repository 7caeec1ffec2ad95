import { Schema, type Connection } from 'mongoose';
import { modelOn, replaceById } from '@flywheel/service-kit';

interface SettingDoc {
  _id: string;
  value: Record<string, unknown>;
  updatedAt: Date;
  updatedBy: string | null;
}

/** How long a replica trusts its copy of a program setting (staff edits show within this). */
const SETTINGS_TTL_MS = 5_000;

/**
 * The program's rules (points rates, tier thresholds, member day, RFM thresholds, …) are data
 * that shop operators edit, not deployment configuration: one document per module, overlaid on
 * the module's defaults. A staff edit is last-writer-wins (no value moves with it).
 */
export function createSettings(db: Connection) {
  const Setting = modelOn<SettingDoc>(
    db,
    'Setting',
    new Schema<SettingDoc>({ _id: String, value: Schema.Types.Mixed, updatedAt: Date, updatedBy: String }, { versionKey: false }),
    'settings',
  );
  const cache = new Map<string, { value: Record<string, unknown>; at: number }>();

  return {
    /** The module's settings: its defaults overlaid with what staff saved. */
    async get<T extends object>(key: string, defaults: T): Promise<T> {
      const hit = cache.get(key);
      let stored = hit && Date.now() - hit.at < SETTINGS_TTL_MS ? hit.value : undefined;
      if (!stored) {
        const doc = await Setting.findById(key).lean();
        stored = doc?.value ?? {};
        cache.set(key, { value: stored, at: Date.now() });
      }
      return { ...defaults, ...stored } as T;
    },
    /** Saves the whole validated value (the caller merges and validates first). */
    async set<T extends object>(key: string, value: T, by: string | null): Promise<T> {
      const plain = JSON.parse(JSON.stringify(value)) as Record<string, unknown>;
      await replaceById(Setting, { _id: key, value: plain, updatedAt: new Date(), updatedBy: by });
      cache.set(key, { value: plain, at: Date.now() });
      return value;
    },
    forget(): void {
      cache.clear();
    },
  };
}
export type Settings = ReturnType<typeof createSettings>;
