import { Schema, type Connection } from 'mongoose';
import { itemDefinition, type ItemDoc } from '../model';

export type PageKind = 'BRAND_STORY' | 'ABOUT' | 'QUALIFICATIONS' | 'CONTACT';
export const PAGE_KINDS: readonly PageKind[] = ['BRAND_STORY', 'ABOUT', 'QUALIFICATIONS', 'CONTACT'];

/** A page's read model, rebuilt from its ledgers like an article's (service.ts `sync`). */
export interface PageDoc extends ItemDoc {
  kind: PageKind;
}

export function createPageModels(db: Connection) {
  const pageSchema = new Schema<PageDoc>({ ...itemDefinition, kind: { type: String, required: true } }, { versionKey: false });
  pageSchema.index({ status: 1, publishAt: 1 });
  return { Page: db.model<PageDoc>('Page', pageSchema, 'pages') };
}
export type PageModels = ReturnType<typeof createPageModels>;
