import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData } from '@flywheel/events';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningContent } from '../../main';

// The staff article ranking on the real FerretDB and NATS: views flushed, orders attributed by
// `orders.order.paid` (a redelivery counted once) and lowered by a refund, ranked by each measure
// from the per-article daily figures, filtered by type, bounded, refused to anyone but staff.

let nats: InfraProcess;
let svc: RunningContent;
beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('content', nats.url)), { sweepers: false });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const asStaff = () => asGateway('content', staff());
const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const RANKING = `query($by: ArticleRankingMeasure!, $from: DateTime!, $to: DateTime!, $type: ArticleType, $first: Int) {
  articleRanking(by: $by, from: $from, to: $to, type: $type, first: $first) {
    rank article { id type } views orders gmv { amount } conversion
  }
}`;
const window = { from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() };
type Row = {
  rank: number;
  article: { id: string; type: string };
  views: number;
  orders: number;
  gmv: { amount: number };
  conversion: number | null;
};
async function ranking(by: string, more: Record<string, unknown> = {}): Promise<Row[]> {
  const res = await gql(svc.url, RANKING, { by, ...window, ...more }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.articleRanking as Row[];
}

async function article(type: string): Promise<string> {
  const created = await gql(
    svc.url,
    'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
    { i: { title: `燕麦 ${randomUUID().slice(0, 8)}`, type, summary: '早餐', body: '燕麦粥的做法。' } },
    asStaff(),
  );
  expect(created.errors).toBeUndefined();
  const id: string = created.data!.createArticle.id;
  await gql(svc.url, 'mutation($id: ID!) { publishArticle(input: { articleId: $id }) { status } }', { id }, asStaff());
  return id;
}
async function views(id: string, n: number) {
  for (let i = 0; i < n; i++) {
    const res = await gql(
      svc.url,
      'mutation($i: RecordContentViewInput!) { recordContentView(input: $i) }',
      { i: { kind: 'ARTICLE', id } },
      asGateway('content', null),
    );
    expect(res.data?.recordContentView).toBe(true);
  }
}
const paid = (orderId: string, articleId: string, total: number): EventData<'orders.order.paid'> => ({
  orderId,
  memberId: new Types.ObjectId().toHexString(),
  total,
  currency: 'CNY',
  lines: [{ skuId: 'sku-1', productId: 'product-1', quantity: 1, unitPrice: total, priceKind: 'LIST' }],
  source: { kind: 'CONTENT', articleId },
  paymentId: `pay-${orderId}`,
  paidAt: new Date().toISOString(),
});
async function deliverPaid(data: EventData<'orders.order.paid'>) {
  const env = await svc.bus.publish('orders.order.paid', data, { id: randomUUID() });
  await eventually(() => svc.db.collection('processed_events').findOne({ _id: `content_orders-order-paid:${env.id}` as never }), 20_000);
}

test('articles ranked by views, orders, GMV and conversion, by type, bounded; staff only', async () => {
  const a = await article('KNOWLEDGE');
  const b = await article('KNOWLEDGE');
  const c = await article('STORY');
  await views(a, 6);
  await views(b, 2);
  await views(c, 4);
  await svc.analytics.flush();

  const bOrder = paid(randomUUID(), b, 12_000);
  await deliverPaid(bOrder);
  await deliverPaid(bOrder); // the same order again under a new event id: counted once
  await deliverPaid(paid(randomUUID(), a, 3_000));
  const refunded = paid(randomUUID(), c, 8_000);
  await deliverPaid(refunded);
  await svc.analytics.orderRefunded({
    orderId: refunded.orderId,
    memberId: refunded.memberId,
    refundId: randomUUID(),
    amount: 5_000,
    currency: 'CNY',
    restock: [],
    refundedAt: new Date().toISOString(),
  });

  const byViews = await ranking('VIEWS');
  expect(byViews.map((r) => [r.rank, r.article.id, r.views, r.orders, r.gmv.amount])).toEqual([
    [1, a, 6, 1, 3_000],
    [2, c, 4, 1, 3_000],
    [3, b, 2, 1, 12_000],
  ]);
  expect(byViews[0]!.conversion).toBeCloseTo(1 / 6);
  // Orders tie at 1: by views, then id.
  expect((await ranking('ORDERS')).map((r) => r.article.id)).toEqual([a, c, b]);
  expect((await ranking('GMV')).map((r) => r.article.id)).toEqual([b, a, c]);
  expect((await ranking('CONVERSION')).map((r) => r.article.id)).toEqual([b, c, a]);
  expect((await ranking('VIEWS', { type: 'KNOWLEDGE' })).map((r) => r.article.id)).toEqual([a, b]);
  expect((await ranking('VIEWS', { type: 'STORY', first: 1 })).map((r) => [r.rank, r.article.type])).toEqual([[1, 'STORY']]);
  expect((await ranking('GMV', { first: 1 })).map((r) => r.article.id)).toEqual([b]);
  // Days with nothing: an empty ranking.
  const past = { from: '2024-01-01T00:00:00Z', to: '2024-01-31T00:00:00Z' };
  expect(await ranking('VIEWS', past)).toEqual([]);

  // Bounds, and nobody but staff.
  expect(code(await gql(svc.url, RANKING, { by: 'VIEWS', ...window, first: 101 }, asStaff()))).toBe('BAD_USER_INPUT');
  expect(code(await gql(svc.url, RANKING, { by: 'VIEWS', ...window, first: 0 }, asStaff()))).toBe('BAD_USER_INPUT');
  const long = { from: '2024-01-01T00:00:00Z', to: '2024-06-01T00:00:00Z' };
  expect(code(await gql(svc.url, RANKING, { by: 'VIEWS', ...long }, asStaff()))).toBe('BAD_USER_INPUT');
  expect(code(await gql(svc.url, RANKING, { by: 'VIEWS', ...window }, asGateway('content', customer('member-1'))))).toBe('FORBIDDEN');
  expect(code(await gql(svc.url, RANKING, { by: 'VIEWS', ...window }, asGateway('content', null)))).toBe('UNAUTHENTICATED');
});

test('the daily figures follow the ledger heads: a second flush adds to them, a copy never goes back', async () => {
  const d = await article('ACTIVITY');
  await views(d, 3);
  await svc.analytics.flush();
  await views(d, 2);
  await svc.analytics.flush();
  expect((await ranking('VIEWS', { type: 'ACTIVITY' })).map((r) => [r.article.id, r.views])).toEqual([[d, 5]]);
  const copies = await svc.db.collection('content_article_days').find({ articleId: d }).toArray();
  expect(copies).toHaveLength(1);
  expect(copies[0]).toMatchObject({ views: 5, viewsSeq: 2, salesSeq: 0, type: 'ACTIVITY' });
});
