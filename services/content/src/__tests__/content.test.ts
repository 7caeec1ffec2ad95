import { asGateway, customer, recordIdReads, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import type { ContentService } from '../service';

let nats: InfraProcess;
let svc: RunningService & { service: ContentService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('content', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const asStaff = () => asGateway('content', staff());
const asCustomer = () => asGateway('content', customer('member-1'));
const anon = () => asGateway('content', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);

const CREATE = `mutation($input: CreateArticleInput!) {
  createArticle(input: $input) { id title type status publishedAt seo { title description } relatedProducts { id } }
}`;
const PUBLISH = 'mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id status publishedAt } }';
const ARTICLE = 'query($id: ID!) { article(id: $id) { id status } }';

const input = (over: Record<string, unknown> = {}) => ({
  title: '秋季护肤指南',
  type: 'KNOWLEDGE',
  summary: '换季时皮肤屏障最需要什么',
  body: '正文……',
  relatedProductIds: ['p1', 'p2', 'p1'],
  ...over,
});

async function createArticle(over: Record<string, unknown> = {}): Promise<string> {
  const res = await call(CREATE, { input: input(over) }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createArticle.id;
}
async function publish(id: string) {
  const res = await call(PUBLISH, { id }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.publishArticle;
}

describe('writing articles', () => {
  test('staff create a draft with product stubs and SEO defaulted from title and summary', async () => {
    const res = await call(CREATE, { input: input() }, asStaff());
    expect(res.errors).toBeUndefined();
    expect(res.data?.createArticle).toMatchObject({
      title: '秋季护肤指南',
      type: 'KNOWLEDGE',
      status: 'DRAFT',
      publishedAt: null,
      seo: { title: '秋季护肤指南', description: '换季时皮肤屏障最需要什么' },
      relatedProducts: [{ id: 'p1' }, { id: 'p2' }],
    });
  });

  test('a customer or an anonymous visitor cannot create or publish: FORBIDDEN / UNAUTHENTICATED', async () => {
    const id = await createArticle();
    const before = await svc.db.collection('articles').countDocuments();
    expect((await call(CREATE, { input: input() }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(CREATE, { input: input() }, anon())).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect((await call(PUBLISH, { id }, asCustomer())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(await svc.db.collection('articles').countDocuments()).toBe(before);
    expect((await call(ARTICLE, { id }, asStaff())).data?.article.status).toBe('DRAFT');
  });

  test('bad input is BAD_USER_INPUT and writes nothing', async () => {
    const before = await svc.db.collection('articles').countDocuments();
    const bad = [
      { title: '   ' },
      { title: 'x'.repeat(121) },
      { summary: '' },
      { body: '' },
      { seo: { title: 't'.repeat(71) } },
      { relatedProductIds: Array.from({ length: 21 }, (_, i) => `p${i}`) },
    ];
    for (const over of bad) {
      const res = await call(CREATE, { input: input(over) }, asStaff());
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect((await call(PUBLISH, { id: 'not-an-id' }, asStaff())).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await svc.db.collection('articles').countDocuments()).toBe(before);
  });

  test('a 120-character Chinese title is accepted (lengths count characters)', async () => {
    await createArticle({ title: '文'.repeat(120) });
  });

  test('publishing is idempotent: racing publishes agree on one publishedAt', async () => {
    const id = await createArticle();
    const results = await Promise.all([publish(id), publish(id), publish(id)]);
    expect(results.map((r) => r.status)).toEqual(['PUBLISHED', 'PUBLISHED', 'PUBLISHED']);
    expect(new Set(results.map((r) => r.publishedAt)).size).toBe(1);
    const again = await publish(id);
    expect(again.publishedAt).toBe(results[0]!.publishedAt);
  });

  test('publishing an unknown article is NOT_FOUND', async () => {
    const res = await call(PUBLISH, { id: '0123456789abcdef01234567' }, asStaff());
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });
});

describe('reading articles', () => {
  test('a draft is null to customers and visitors, visible to staff; once published, to everyone', async () => {
    const id = await createArticle();
    expect((await call(ARTICLE, { id }, anon())).data?.article).toBeNull();
    expect((await call(ARTICLE, { id }, asCustomer())).data?.article).toBeNull();
    expect((await call(ARTICLE, { id }, asStaff())).data?.article).toEqual({ id, status: 'DRAFT' });
    await publish(id);
    expect((await call(ARTICLE, { id }, anon())).data?.article).toEqual({ id, status: 'PUBLISHED' });
  });

  test('an unknown or malformed id is null', async () => {
    expect((await call(ARTICLE, { id: '0123456789abcdef01234567' })).data?.article).toBeNull();
    expect((await call(ARTICLE, { id: 'nope' })).data?.article).toBeNull();
  });

  test('articles lists published only for visitors, drafts too for staff, filtered by type, paginated newest first', async () => {
    const type = 'STORY';
    const published: string[] = [];
    for (let i = 0; i < 5; i++) {
      const id = await createArticle({ type, title: `故事 ${i}` });
      await publish(id);
      published.unshift(id);
    }
    const draft = await createArticle({ type });
    const q =
      'query($after: String) { articles(first: 2, after: $after, type: STORY) { edges { node { id type } cursor } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (let page = 0; page < 5; page++) {
      const res = await call(q, { after });
      expect(res.errors).toBeUndefined();
      const conn = res.data!.articles;
      expect(conn.edges.length).toBeLessThanOrEqual(2);
      seen.push(...conn.edges.map((e: { node: { id: string; type: string } }) => e.node.id));
      expect(conn.edges.every((e: { node: { type: string } }) => e.node.type === 'STORY')).toBe(true);
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen).toEqual(published);
    const all = await call('{ articles(first: 100, type: STORY) { edges { node { id } } } }', {}, asStaff());
    expect(all.data?.articles.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([draft, ...published]);
    expect((await call('{ articles(first: 0) { edges { cursor } } }')).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });
});

describe('federation', () => {
  test('_entities resolves articles in one batch; unknown ids and drafts (for non-staff) are null', async () => {
    const a = await createArticle();
    await publish(a);
    const b = await createArticle();
    await publish(b);
    const draft = await createArticle();
    const q = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Article { id title relatedProducts { id } } } }';
    const r = [a, 'nope', '0123456789abcdef01234567', b, draft].map((id) => ({ __typename: 'Article', id }));

    const reads = recordIdReads(svc.db, 'articles');
    const res = await call(q, { r }, anon());
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e: { id: string } | null) => e?.id ?? null)).toEqual([a, null, null, b, null]);
    // One batch: each well-formed id read once, by id ('nope' is never asked).
    expect(reads.stop()).toEqual([a, '0123456789abcdef01234567', b, draft].sort());

    const asStaffRes = await call(q, { r }, asStaff());
    expect(asStaffRes.data?._entities.map((e: { id: string } | null) => e?.id ?? null)).toEqual([a, null, null, b, draft]);
  });
});
