// Content views and order attribution through the gateway: views counted in memory by two content
// replicas and flushed exactly, `orders.order.paid` with a CONTENT source credited to the article
// once (a re-published event changes nothing), a refund lowering its GMV, the content share of all
// GMV, and a member refused the report. Real subgraphs, real FerretDB and NATS.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData } from '@flywheel/events';
import { gql, serviceEnv } from '@flywheel/testing';
import { loadServiceConfig } from '../../../services/content/src/config';
import { start as startContent, type RunningContent } from '../../../services/content/src/main';
import { asStaff, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
let second: RunningContent;
let staff: Record<string, string>;
beforeAll(async () => {
  stack = await startInProcessStack();
  staff = asStaff();
  second = await startContent(loadServiceConfig({ ...serviceEnv('content', stack.nats.url), MONGO_DB: stack.subgraphs.content!.db.name }), {
    sweepers: false,
  });
}, 60_000);
afterAll(async () => {
  await second?.stop();
  await stack?.stop();
});

const url = () => stack.gateway.url;
const content = () => stack.subgraphs.content as RunningContent;
const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const VIEW = 'mutation($i: RecordContentViewInput!) { recordContentView(input: $i) }';
const PERF = `query($id: ID!, $from: DateTime!, $to: DateTime!) {
  article(id: $id) { performance(from: $from, to: $to) { views orders gmv { amount currency } conversion } }
}`;
const SHARE = `query($from: DateTime!, $to: DateTime!) {
  contentGmvShare(from: $from, to: $to) { contentGmv { amount } totalGmv { amount } share }
}`;
const range = () => ({ from: new Date(Date.now() - 86_400_000).toISOString(), to: new Date(Date.now() + 86_400_000).toISOString() });

async function article(publish: boolean): Promise<string> {
  const created = await gql(
    url(),
    'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
    { i: { title: `燕麦食谱 ${randomUUID().slice(0, 8)}`, type: 'KNOWLEDGE', summary: '早餐', body: '燕麦粥的做法。' } },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const id: string = created.data!.createArticle.id;
  if (publish) {
    const res = await gql(url(), 'mutation($id: ID!) { publishArticle(input: { articleId: $id }) { status } }', { id }, staff);
    expect(res.data?.publishArticle.status).toBe('PUBLISHED');
  }
  return id;
}

function paid(orderId: string, total: number, source: EventData<'orders.order.paid'>['source']): EventData<'orders.order.paid'> {
  return {
    orderId,
    memberId: new Types.ObjectId().toHexString(),
    total,
    currency: 'CNY',
    lines: [{ skuId: 'sku-1', productId: 'product-1', quantity: 1, unitPrice: total, priceKind: 'LIST' }],
    source,
    paymentId: `pay-${orderId}`,
    paidAt: new Date().toISOString(),
  };
}

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const end = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('views from two replicas are flushed and summed exactly; unknown and unpublished items are NOT_FOUND', async () => {
  const id = await article(true);
  for (let i = 0; i < 7; i++) expect((await gql(url(), VIEW, { i: { kind: 'ARTICLE', id } })).data?.recordContentView).toBe(true);
  for (let i = 0; i < 5; i++) await second.analytics.recordView('article', id);

  // Nothing is written per view: before the flush the report sees none.
  const perf = () => gql(url(), PERF, { id, ...range() }, staff);
  expect((await perf()).data?.article.performance).toEqual({ views: 0, orders: 0, gmv: { amount: 0, currency: 'CNY' }, conversion: null });

  const written = await Promise.all([content().analytics.flush(), second.analytics.flush()]);
  expect(written).toEqual([7, 5]);
  expect(await Promise.all([content().analytics.flush(), second.analytics.flush()])).toEqual([0, 0]);
  expect((await perf()).data?.article.performance.views).toBe(12);

  expect(code(await gql(url(), VIEW, { i: { kind: 'ARTICLE', id: new Types.ObjectId().toHexString() } }))).toBe('NOT_FOUND');
  expect(code(await gql(url(), VIEW, { i: { kind: 'ARTICLE', id: await article(false) } }))).toBe('NOT_FOUND');
  expect(code(await gql(url(), VIEW, { i: { kind: 'PAGE', id: 'not-an-id' } }))).toBe('NOT_FOUND');
});

test('a CONTENT-sourced paid order credits the article once, a refund lowers its GMV, and the GMV share counts every order', async () => {
  const id = await article(true);
  for (let i = 0; i < 4; i++) await gql(url(), VIEW, { i: { kind: 'ARTICLE', id } });
  await content().analytics.flush();
  const share0 = (await gql(url(), SHARE, range(), staff)).data!.contentGmvShare;

  const bus = stack.orders.bus;
  const contentOrder = randomUUID();
  const data = paid(contentOrder, 5000, { kind: 'CONTENT', articleId: id });
  await bus.publish('orders.order.paid', data);
  await bus.publish('orders.order.paid', paid(randomUUID(), 3000, { kind: 'DIRECT' }));
  // The same order again under a new event id (a re-publish past the stream's duplicate window).
  await bus.publish('orders.order.paid', data, { id: randomUUID() });

  const perf = () => gql(url(), PERF, { id, ...range() }, staff).then((r) => r.data?.article.performance);
  let p = await until(perf, (v) => v?.orders === 1);
  expect(p).toEqual({ views: 4, orders: 1, gmv: { amount: 5000, currency: 'CNY' }, conversion: 0.25 });

  await bus.publish('orders.order.refunded', {
    orderId: contentOrder,
    memberId: data.memberId,
    refundId: randomUUID(),
    amount: 1000,
    currency: 'CNY',
    restock: [],
    refundedAt: new Date().toISOString(),
  });
  p = await until(perf, (v) => v?.gmv.amount === 4000);
  expect(p).toEqual({ views: 4, orders: 1, gmv: { amount: 4000, currency: 'CNY' }, conversion: 0.25 });

  const share = await until(
    () => gql(url(), SHARE, range(), staff).then((r) => r.data!.contentGmvShare),
    (s) => s.totalGmv.amount === share0.totalGmv.amount + 7000,
  );
  expect(share.contentGmv.amount - share0.contentGmv.amount).toBe(4000);
  expect(share.totalGmv.amount - share0.totalGmv.amount).toBe(7000);
  expect(share.share).toBeCloseTo(share.contentGmv.amount / share.totalGmv.amount);
  // The re-published event changed nothing: one fact per order in the day ledgers.
  expect(
    await content()
      .db.collection('content_stats')
      .countDocuments({ op: { $regex: `paid:${contentOrder}$` } }),
  ).toBe(3);

  // A member is refused the reports; signed out is UNAUTHENTICATED.
  const member = newCustomer();
  expect(code(await gql(url(), SHARE, range(), member.headers))).toBe('FORBIDDEN');
  const asMember = await gql(url(), PERF, { id, ...range() }, member.headers);
  expect(code(asMember)).toBe('FORBIDDEN');
  expect(code(await gql(url(), SHARE, range()))).toBe('UNAUTHENTICATED');
  // A range over 92 days is refused.
  const wide = { from: new Date(Date.now() - 100 * 86_400_000).toISOString(), to: new Date().toISOString() };
  expect(code(await gql(url(), SHARE, wide, staff))).toBe('BAD_USER_INPUT');
});
