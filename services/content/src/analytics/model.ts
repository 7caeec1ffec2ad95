import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type OpLedgerEntry } from '@flywheel/service-kit';
import type { ArticleType } from '../model';

/**
 * One entry of a per-day stats ledger (`appendOnce`: at most one entry per `op`). Accounts:
 * `views:<kind>:<id>:<day>` (op = the flush `<replica>:<flushSeq>:<item>`), `article:<id>:<day>`,
 * `content:<day>` and `all:<day>` (ops `<account>|paid:<orderId>`, `<account>|refund:<refundId>`).
 * Each entry carries the running totals, so the head is the day's figure. `<day>` is the China
 * (UTC+8) calendar day; paid orders and their refunds count on the day the order was paid.
 */
export interface StatEntry extends OpLedgerEntry {
  /** Views in this flush (views accounts), or 1 / 0 orders and ± fen (order accounts). */
  views: number;
  orders: number;
  /** Fen, net of refunds. */
  gmv: number;
  at: Date;
}

/** A paid order as content saw it (`_id` = order id, claimed once): what a refund is credited against. */
export interface OrderFactDoc {
  _id: string;
  /** The crediting article when the order's source was CONTENT, else null. */
  articleId: string | null;
  total: number;
  /** The China day it was paid: its refunds count there too. */
  day: string;
  paidAt: Date;
}

/**
 * The ranking's read model (`_id` = `<articleId>:<day>`): an article's figures of one China day,
 * copied from the heads of its views ledger and its sales ledger (whose seqs it records, so a copy
 * never replaces a newer one). A projection: it may lag, the ledgers decide.
 */
export interface ArticleDayDoc {
  _id: string;
  articleId: string;
  type: ArticleType;
  day: string;
  views: number;
  orders: number;
  gmv: number;
  viewsSeq: number;
  salesSeq: number;
}

export function createAnalyticsModels(db: Connection) {
  const statSchema = new Schema<StatEntry>(
    { _id: String, accountId: String, seq: Number, op: String, views: Number, orders: Number, gmv: Number, at: Date },
    { versionKey: false },
  );
  statSchema.index({ ...ledgerIndexes[0] });
  statSchema.index({ op: 1 }, { unique: true });
  const factSchema = new Schema<OrderFactDoc>(
    { _id: String, articleId: String, total: Number, day: String, paidAt: Date },
    { versionKey: false },
  );
  const daySchema = new Schema<ArticleDayDoc>(
    {
      _id: String,
      articleId: String,
      type: String,
      day: String,
      views: Number,
      orders: Number,
      gmv: Number,
      viewsSeq: Number,
      salesSeq: Number,
    },
    { versionKey: false },
  );
  daySchema.index({ day: 1, type: 1 });
  return {
    ArticleDay: db.model<ArticleDayDoc>('ContentArticleDay', daySchema, 'content_article_days'),
    Stat: db.model<StatEntry>('ContentStat', statSchema, 'content_stats'),
    OrderFact: db.model<OrderFactDoc>('ContentOrderFact', factSchema, 'content_order_facts'),
  };
}
export type AnalyticsModels = ReturnType<typeof createAnalyticsModels>;
