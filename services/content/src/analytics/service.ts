import { randomUUID } from 'node:crypto';
import type { EventData } from '@flywheel/events';
import {
  appendOnce,
  badInput,
  claimOnce,
  isObjectId,
  ledgerHead,
  notFound,
  replaceById,
  requireRole,
  wholeNumber,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { ArticleType, ContentKind, ContentStatus } from '../model';
import type { AnalyticsModels, ArticleDayDoc, StatEntry } from './model';

// Views and content → order attribution (docs/concurrency.md): a view is a tally in memory,
// appended once per flush and item as a ledger entry whose op is the flush's unique id; an order
// is claimed once by its id, a refund by its id, and both land in per-day ledgers (`appendOnce`),
// so a redelivered event, or a handler retried after a crash halfway, changes nothing. Reports read
// ledger heads by `_id` only; the article ranking reads a per-article-day projection of those heads
// (`ArticleDayDoc`), refreshed after every append to an article's views or sales ledger.

export const ANALYTICS_LIMITS = {
  /** Distinct (item, day) pairs one replica tallies between flushes; views of new ones beyond it are dropped. */
  tally: 10_000,
  /** How long a replica trusts that an item is published (saves the read per view). */
  publishedCacheMs: 30_000,
  /** Days one report may span. */
  reportDays: 92,
  /** Items appended at once by a flush. */
  flushConcurrency: 8,
  /** Most articles one ranking lists. */
  ranking: 100,
  /** Copies of an article's day tried when other writers keep overtaking them. */
  syncAttempts: 5,
} as const;

const DAY_MS = 86_400_000;
const CHINA_OFFSET_MS = 8 * 3_600_000;
/** The China (UTC+8) calendar day of an instant, `YYYY-MM-DD`. */
export const dayOf = (at: Date) => new Date(at.getTime() + CHINA_OFFSET_MS).toISOString().slice(0, 10);

/** Every China day from the one containing `from` to the one containing `to`, bounded. */
export function daysBetween(from: Date, to: Date): string[] {
  if (from.getTime() > to.getTime()) throw badInput('from must not be after to', 'from');
  const first = Date.parse(`${dayOf(from)}T00:00:00Z`);
  const last = Date.parse(`${dayOf(to)}T00:00:00Z`);
  const n = Math.round((last - first) / DAY_MS) + 1;
  if (n > ANALYTICS_LIMITS.reportDays) throw badInput(`A report spans at most ${ANALYTICS_LIMITS.reportDays} days`, 'to');
  return Array.from({ length: n }, (_, i) => new Date(first + i * DAY_MS).toISOString().slice(0, 10));
}

export interface MoneyShape {
  amount: number;
  currency: 'CNY';
}
export interface PerformanceShape {
  views: number;
  orders: number;
  gmv: MoneyShape;
  conversion: number | null;
}
export interface GmvShareShape {
  contentGmv: MoneyShape;
  totalGmv: MoneyShape;
  share: number | null;
}
const cny = (amount: number): MoneyShape => ({ amount, currency: 'CNY' });

export type RankingMeasure = 'VIEWS' | 'ORDERS' | 'GMV' | 'CONVERSION';
export interface RankingEntryShape extends PerformanceShape {
  rank: number;
  articleId: string;
}
interface Totals {
  articleId: string;
  views: number;
  orders: number;
  gmv: number;
}
const conversionOf = (t: Totals) => (t.views > 0 ? t.orders / t.views : null);
const measureOf = (t: Totals, by: RankingMeasure): number =>
  by === 'VIEWS' ? t.views : by === 'ORDERS' ? t.orders : by === 'GMV' ? t.gmv : (conversionOf(t) ?? -1);

/** Sums an article's days and ranks the articles by `by`, highest first (then views, then id); no conversion ranks last. */
export function rankArticles(days: Pick<ArticleDayDoc, 'articleId' | 'views' | 'orders' | 'gmv'>[], by: RankingMeasure, first: number) {
  const totals = new Map<string, Totals>();
  for (const d of days) {
    const t = totals.get(d.articleId) ?? { articleId: d.articleId, views: 0, orders: 0, gmv: 0 };
    t.views += d.views ?? 0;
    t.orders += d.orders ?? 0;
    t.gmv += d.gmv ?? 0;
    totals.set(d.articleId, t);
  }
  return [...totals.values()]
    .filter((t) => t.views !== 0 || t.orders !== 0 || t.gmv !== 0)
    .sort((a, b) => measureOf(b, by) - measureOf(a, by) || b.views - a.views || (a.articleId < b.articleId ? -1 : 1))
    .slice(0, first)
    .map((t, i): RankingEntryShape => ({
      rank: i + 1,
      articleId: t.articleId,
      views: t.views,
      orders: t.orders,
      gmv: cny(t.gmv),
      conversion: conversionOf(t),
    }));
}

export interface AnalyticsDeps {
  models: AnalyticsModels;
  /** An item's status in its read model (by `_id`), null when unknown: a view is checked against it. */
  statusOf: (kind: ContentKind, id: string) => Promise<ContentStatus | null>;
  /** An article's type (by `_id`; it never changes), null when unknown: the ranking filters on it. */
  articleType: (id: string) => Promise<ArticleType | null>;
  logger: Logger;
  now: () => Date;
}

export function createAnalyticsService(deps: AnalyticsDeps) {
  const { models, statusOf, articleType, logger, now } = deps;
  /** This process's name in flush ids: a restart is a new replica, so its flushSeq may restart. */
  const replica = randomUUID();
  let flushSeq = 0;
  /** `<kind>:<id>:<day>` → views not yet flushed. */
  let tally = new Map<string, number>();
  /** Appends that failed, retried under their own op at the next flush (never re-counted). */
  let pending: { key: string; op: string; count: number }[] = [];
  /** `<kind>:<id>` → until when it is known to be published. */
  const published = new Map<string, number>();
  let dropped = 0;
  /** `<articleId>|<day>` whose ranking copy failed after a flush: tried again at the next one. */
  let resync = new Set<string>();
  /** Article types seen (immutable), saving a read per copy. */
  const types = new Map<string, ArticleType>();

  async function typeOf(id: string): Promise<ArticleType | null> {
    const known = types.get(id);
    if (known) return known;
    const type = isObjectId(id) ? await articleType(id) : null;
    if (type) {
      if (types.size >= ANALYTICS_LIMITS.tally) types.clear();
      types.set(id, type);
    }
    return type;
  }

  /**
   * Copies an article's day from its two ledger heads to the ranking's read model, unless the copy
   * is already as new. Replacing is not atomic on FerretDB, so an older copy may land over a newer
   * one: every writer re-reads after its write, and the last one to write sees its copy current (or
   * writes the heads again). Orders credited to an id that is no article are not ranked.
   */
  async function syncArticleDay(articleId: string, day: string): Promise<void> {
    const type = await typeOf(articleId);
    if (!type) return;
    const _id = `${articleId}:${day}`;
    for (let attempt = 0; attempt < ANALYTICS_LIMITS.syncAttempts; attempt++) {
      const [views, sales, copy] = await Promise.all([
        ledgerHead(models.Stat, `views:article:${articleId}:${day}`),
        ledgerHead(models.Stat, `article:${articleId}:${day}`),
        models.ArticleDay.findById(_id).lean<ArticleDayDoc>(),
      ]);
      const viewsSeq = views?.seq ?? 0;
      const salesSeq = sales?.seq ?? 0;
      if (copy && copy.viewsSeq >= viewsSeq && copy.salesSeq >= salesSeq) return;
      await replaceById(models.ArticleDay, {
        _id,
        articleId,
        type,
        day,
        views: views?.views ?? 0,
        orders: sales?.orders ?? 0,
        gmv: sales?.gmv ?? 0,
        viewsSeq,
        salesSeq,
      } satisfies ArticleDayDoc);
    }
    throw new Error(`ranking copy of article ${articleId} on ${day} kept being overtaken`);
  }

  /** After a flush: copies the article days it appended (a failure is tried again at the next flush). */
  async function syncFlushed(keys: string[]): Promise<void> {
    const wanted = new Set(resync);
    for (const key of keys) {
      const [kind, id, day] = key.split(':');
      if (kind === 'article' && id && day) wanted.add(`${id}|${day}`);
    }
    resync = new Set();
    const list = [...wanted];
    for (let i = 0; i < list.length; i += ANALYTICS_LIMITS.flushConcurrency) {
      await Promise.all(
        list.slice(i, i + ANALYTICS_LIMITS.flushConcurrency).map(async (k) => {
          const [id, day] = k.split('|') as [string, string];
          try {
            await syncArticleDay(id, day);
          } catch (err) {
            logger.warn({ err, article: id, day }, 'ranking copy failed; tried again next flush');
            resync.add(k);
          }
        }),
      );
    }
  }

  async function isPublished(kind: ContentKind, id: string): Promise<boolean> {
    const key = `${kind}:${id}`;
    const t = now().getTime();
    const until = published.get(key);
    if (until !== undefined && until > t) return true;
    if (!isObjectId(id)) return false;
    if ((await statusOf(kind, id)) !== 'PUBLISHED') {
      published.delete(key);
      return false;
    }
    if (published.size >= ANALYTICS_LIMITS.tally) published.clear();
    published.set(key, t + ANALYTICS_LIMITS.publishedCacheMs);
    return true;
  }

  async function append(p: { key: string; op: string; count: number }): Promise<boolean> {
    try {
      await appendOnce(models.Stat, `views:${p.key}`, p.op, (head) => ({
        views: (head?.views ?? 0) + p.count,
        orders: 0,
        gmv: 0,
        at: now(),
      }));
      return true;
    } catch (err) {
      logger.warn({ err, item: p.key }, 'view flush append failed; retried next flush');
      return false;
    }
  }

  /** Figures of one ledger account per day: the heads, read by `_id`. */
  async function heads(accounts: string[]): Promise<StatEntry[]> {
    const found = await Promise.all(accounts.map((a) => ledgerHead(models.Stat, a)));
    return found.filter((h): h is StatEntry => h !== null);
  }
  const sum = (entries: StatEntry[], f: 'views' | 'orders' | 'gmv') => entries.reduce((n, e) => n + (e[f] ?? 0), 0);

  async function orderAppend(account: string, op: string, orders: number, gmv: number, at: Date) {
    await appendOnce(models.Stat, account, `${account}|${op}`, (head) => ({
      views: 0,
      orders: (head?.orders ?? 0) + orders,
      gmv: (head?.gmv ?? 0) + gmv,
      at,
    }));
  }

  return {
    /**
     * A view of a published item, counted in this replica's memory (no write). Unknown and
     * unpublished items are NOT_FOUND. False when the tally is full and the item is not in it yet
     * (the view is dropped, not queued).
     */
    async recordView(kind: ContentKind, id: string): Promise<boolean> {
      if (!(await isPublished(kind, id))) throw notFound(kind === 'article' ? 'Article' : 'Page');
      const key = `${kind}:${id}:${dayOf(now())}`;
      const n = tally.get(key);
      if (n === undefined && tally.size >= ANALYTICS_LIMITS.tally) {
        dropped++;
        return false;
      }
      tally.set(key, (n ?? 0) + 1);
      return true;
    },

    /**
     * Appends the tally: one `appendOnce` per item under the op `<replica>:<flushSeq>:<item>`, so a
     * retried append can never count twice. Returns the views written.
     */
    async flush(): Promise<number> {
      const seq = ++flushSeq;
      const batch = [...pending, ...[...tally].map(([key, count]) => ({ key, op: `${replica}:${seq}:${key}`, count }))];
      tally = new Map();
      pending = [];
      if (dropped > 0) logger.warn({ dropped }, 'views dropped: tally full');
      dropped = 0;
      let written = 0;
      const appended: string[] = [];
      for (let i = 0; i < batch.length; i += ANALYTICS_LIMITS.flushConcurrency) {
        const part = batch.slice(i, i + ANALYTICS_LIMITS.flushConcurrency);
        const ok = await Promise.all(part.map(append));
        part.forEach((p, j) => {
          if (ok[j]) {
            written += p.count;
            appended.push(p.key);
          } else pending.push(p);
        });
      }
      await syncFlushed(appended);
      return written;
    },

    /** Every paid order's total counts for all GMV; a CONTENT source also credits its article. */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      const paidAt = new Date(data.paidAt);
      const articleId = data.source.kind === 'CONTENT' ? data.source.articleId : null;
      const fact = { _id: data.orderId, articleId, total: data.total, day: dayOf(paidAt), paidAt };
      // The claim decides the fact once; the appends below are each at most once by their op, so a
      // redelivery after a crash between them completes what is missing and repeats nothing.
      if (!(await claimOnce(models.OrderFact, fact))) {
        const first = await models.OrderFact.findById(data.orderId).lean();
        if (first) Object.assign(fact, first);
      }
      const op = `paid:${fact._id}`;
      await orderAppend(`all:${fact.day}`, op, 1, fact.total, paidAt);
      if (fact.articleId) {
        await orderAppend(`content:${fact.day}`, op, 1, fact.total, paidAt);
        await orderAppend(`article:${fact.articleId}:${fact.day}`, op, 1, fact.total, paidAt);
        await syncArticleDay(fact.articleId, fact.day);
      }
    },

    /** A refund lowers the GMV of the day its order was paid (and its article's, when content sold it). */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const fact = await models.OrderFact.findById(data.orderId).lean();
      // Paid not seen yet (another subject, another consumer): fail so the bus retries later.
      if (!fact) throw new Error(`refund ${data.refundId} before order ${data.orderId} was seen paid`);
      const op = `refund:${data.refundId}`;
      const at = new Date(data.refundedAt);
      await orderAppend(`all:${fact.day}`, op, 0, -data.amount, at);
      if (fact.articleId) {
        await orderAppend(`content:${fact.day}`, op, 0, -data.amount, at);
        await orderAppend(`article:${fact.articleId}:${fact.day}`, op, 0, -data.amount, at);
        await syncArticleDay(fact.articleId, fact.day);
      }
    },

    /** Staff only: views, orders, GMV net of refunds and conversion of an item over whole China days. */
    async performance(viewer: Viewer | null, kind: ContentKind, id: string, from: Date, to: Date): Promise<PerformanceShape> {
      requireRole(viewer, 'STAFF');
      const days = daysBetween(from, to);
      const [views, sales] = await Promise.all([
        heads(days.map((d) => `views:${kind}:${id}:${d}`)),
        kind === 'article' ? heads(days.map((d) => `article:${id}:${d}`)) : Promise.resolve([]),
      ]);
      const v = sum(views, 'views');
      const orders = sum(sales, 'orders');
      return { views: v, orders, gmv: cny(sum(sales, 'gmv')), conversion: v > 0 ? orders / v : null };
    },

    /** Staff only: GMV of content-sourced orders against all GMV (both net of refunds). */
    async gmvShare(viewer: Viewer | null, from: Date, to: Date): Promise<GmvShareShape> {
      requireRole(viewer, 'STAFF');
      const days = daysBetween(from, to);
      const [content, all] = await Promise.all([heads(days.map((d) => `content:${d}`)), heads(days.map((d) => `all:${d}`))]);
      const contentGmv = sum(content, 'gmv');
      const totalGmv = sum(all, 'gmv');
      return { contentGmv: cny(contentGmv), totalGmv: cny(totalGmv), share: totalGmv > 0 ? contentGmv / totalGmv : null };
    },

    /**
     * Staff only: articles ranked by a measure over whole China days (at most 92), from the
     * per-article-day copies of the ledger heads (no per-view data); `first` 1 to 100.
     */
    async ranking(
      viewer: Viewer | null,
      args: { by: RankingMeasure; from: Date; to: Date; type?: ArticleType | null; first?: number | null },
    ): Promise<RankingEntryShape[]> {
      requireRole(viewer, 'STAFF');
      const first = wholeNumber(args.first ?? 20, 'first', 1, ANALYTICS_LIMITS.ranking);
      const days = daysBetween(args.from, args.to);
      const docs = await models.ArticleDay.find(
        { day: { $in: days }, ...(args.type ? { type: args.type } : {}) },
        { articleId: 1, views: 1, orders: 1, gmv: 1 },
      ).lean<Pick<ArticleDayDoc, 'articleId' | 'views' | 'orders' | 'gmv'>[]>();
      return rankArticles(docs, args.by, first);
    },

    /** Views in memory not yet flushed (tests and metrics). */
    unflushed: () => [...tally.values()].reduce((n, c) => n + c, 0),
  };
}
export type AnalyticsService = ReturnType<typeof createAnalyticsService>;
