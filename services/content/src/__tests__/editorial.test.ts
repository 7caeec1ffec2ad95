import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../config';
import { start, type RunningContent } from '../main';

// Pages and articles on the editorial core: revisions, lifecycle with scheduled publishing (two
// replicas), slugs with redirects, the sitemap, rich bodies and bounds.

let nats: InfraProcess;
let a: RunningContent;
let b: RunningContent;

beforeAll(async () => {
  nats = await privateNats();
  const env = serviceEnv('content', nats.url);
  a = await start(loadServiceConfig(env), { sweepers: false });
  // A second replica on the same database.
  b = await start(loadServiceConfig({ ...serviceEnv('content', nats.url), MONGO_DB: env.MONGO_DB }), { sweepers: false });
});
afterAll(async () => {
  await a.db.dropDatabase();
  await b.stop();
  await a.stop();
  await nats.stop();
});

const asStaff = () => asGateway('content', staff());
const asMember = () => asGateway('content', customer('member-1'));
const anon = () => asGateway('content', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(a.url, query, variables, headers);
const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const FIELDS = 'id slug status publishAt publishedAt revision seo { title canonicalUrl keywords ogImageUrl }';
async function createArticle(over: Record<string, unknown> = {}) {
  const res = await call(
    `mutation($i: CreateArticleInput!) { createArticle(input: $i) { ${FIELDS} } }`,
    { i: { title: '燕麦的故事', type: 'STORY', summary: '一粒燕麦', body: '正文', ...over } },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createArticle;
}
const schedule = (id: string, publishAt: string, headers = asStaff()) =>
  call(`mutation($i: ScheduleArticleInput!) { scheduleArticle(input: $i) { ${FIELDS} } }`, { i: { articleId: id, publishAt } }, headers);
const lifecycle = () => a.db.collection('content_lifecycle');

describe('lifecycle', () => {
  test('scheduled publishing fires once with two replicas sweeping at the same time, with one event', async () => {
    const art = await createArticle();
    const at = new Date(Date.now() + 60_000);
    const res = await schedule(art.id, at.toISOString());
    expect(res.data?.scheduleArticle).toMatchObject({ status: 'SCHEDULED', publishAt: at.toISOString() });
    expect((await call('query($id: ID!) { article(id: $id) { id } }', { id: art.id })).data?.article).toBeNull();

    // Not due yet: nothing happens.
    expect((await a.sweep(new Date()))['article']).toBe(0);
    const later = new Date(at.getTime() + 1000);
    const counts = await Promise.all([a.sweep(later), b.sweep(later), a.sweep(later), b.sweep(later)]);
    expect(counts.reduce((n, c) => n + (c['article'] ?? 0), 0)).toBe(1);
    const entries = await lifecycle()
      .find({ accountId: `article:${art.id}` })
      .toArray();
    expect(entries.map((e) => e['status'])).toEqual(['SCHEDULED', 'PUBLISHED']);
    expect(entries.filter((e) => e['outbox']?.subject === 'content.article.published')).toHaveLength(1);
    const published = await call('query($id: ID!) { article(id: $id) { id status publishedAt } }', { id: art.id });
    expect(published.data?.article).toMatchObject({ id: art.id, status: 'PUBLISHED' });
    // Another pass, on either replica, publishes nothing more.
    expect((await b.sweep(new Date(later.getTime() + 60_000)))['article']).toBe(0);
  });

  test('a schedule in the past is BAD_USER_INPUT naming publishAt; scheduling a published article is CONFLICT', async () => {
    const art = await createArticle();
    const res = await schedule(art.id, new Date(Date.now() - 1000).toISOString());
    expect(code(res)).toBe('BAD_USER_INPUT');
    expect(res.errors?.[0]?.extensions?.['field']).toBe('publishAt');
    expect(await lifecycle().countDocuments({ accountId: `article:${art.id}` })).toBe(0);
    await call('mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id: art.id }, asStaff());
    expect(code(await schedule(art.id, new Date(Date.now() + 3600_000).toISOString()))).toBe('CONFLICT');
  });

  test('a member cannot publish, schedule, archive or edit: FORBIDDEN, nothing written', async () => {
    const art = await createArticle();
    const before = await lifecycle().countDocuments();
    const revisions = await a.db.collection('content_revisions').countDocuments();
    const id = art.id;
    expect(code(await call('mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id }, asMember()))).toBe(
      'FORBIDDEN',
    );
    expect(code(await schedule(id, new Date(Date.now() + 3600_000).toISOString(), asMember()))).toBe('FORBIDDEN');
    expect(code(await call('mutation($id: ID!) { archiveArticle(input: { articleId: $id }) { id } }', { id }, asMember()))).toBe(
      'FORBIDDEN',
    );
    expect(code(await call('mutation($id: ID!) { updateArticle(input: { articleId: $id, title: "x" }) { id } }', { id }, asMember()))).toBe(
      'FORBIDDEN',
    );
    expect(code(await call('mutation { createPage(input: { kind: ABOUT, title: "关于" }) { id } }', {}, asMember()))).toBe('FORBIDDEN');
    expect(await lifecycle().countDocuments()).toBe(before);
    expect(await a.db.collection('content_revisions').countDocuments()).toBe(revisions);
  });

  test('archiving takes a published article off the site; publishing it again brings it back', async () => {
    const art = await createArticle();
    const id = art.id;
    await call('mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id }, asStaff());
    const archived = await call(
      'mutation($id: ID!) { archiveArticle(input: { articleId: $id }) { status publishedAt } }',
      { id },
      asStaff(),
    );
    expect(archived.data?.archiveArticle.status).toBe('ARCHIVED');
    expect((await call('query($id: ID!) { article(id: $id) { id } }', { id })).data?.article).toBeNull();
    const again = await call('mutation($id: ID!) { publishArticle(input: { articleId: $id }) { status } }', { id }, asStaff());
    expect(again.data?.publishArticle.status).toBe('PUBLISHED');
  });
});

describe('slugs, revisions and SEO', () => {
  test('a slug is unique (CONFLICT), stable across edits, and an old one redirects', async () => {
    const art = await createArticle({
      slug: 'oat-story',
      seo: { keywords: ['燕麦', '早餐'] },
      coverUrl: 'https://cdn.example.com/oat.jpg',
    });
    expect(art.seo).toMatchObject({
      canonicalUrl: 'https://www.example.com/articles/oat-story',
      keywords: ['燕麦', '早餐'],
      ogImageUrl: 'https://cdn.example.com/oat.jpg',
    });
    const clash = await call(
      'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
      { i: { title: 't', type: 'STORY', summary: 's', body: 'b', slug: 'oat-story' } },
      asStaff(),
    );
    expect(code(clash)).toBe('CONFLICT');
    const upd = (i: Record<string, unknown>) =>
      call(
        `mutation($i: UpdateArticleInput!) { updateArticle(input: $i) { ${FIELDS} title } }`,
        { i: { articleId: art.id, ...i } },
        asStaff(),
      );
    expect((await upd({ title: '燕麦的新故事' })).data?.updateArticle).toMatchObject({
      slug: 'oat-story',
      title: '燕麦的新故事',
      revision: 2,
    });
    expect((await upd({ slug: 'oat-story-2024' })).data?.updateArticle.slug).toBe('oat-story-2024');
    await call('mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id: art.id }, asStaff());

    const bySlug = 'query($s: String!) { articleBySlug(slug: $s) { article { id title } canonicalSlug redirected } }';
    expect((await call(bySlug, { s: 'oat-story' })).data?.articleBySlug).toEqual({
      article: { id: art.id, title: '燕麦的新故事' },
      canonicalSlug: 'oat-story-2024',
      redirected: true,
    });
    expect((await call(bySlug, { s: 'oat-story-2024' })).data?.articleBySlug.redirected).toBe(false);
    expect((await call(bySlug, { s: 'no-such-slug' })).data?.articleBySlug).toBeNull();
    // Another article cannot take the old slug: it keeps redirecting.
    const other = await createArticle();
    expect(
      code(
        await call(
          'mutation($i: UpdateArticleInput!) { updateArticle(input: $i) { id } }',
          { i: { articleId: other.id, slug: 'oat-story' } },
          asStaff(),
        ),
      ),
    ).toBe('CONFLICT');

    const revs =
      'query($id: ID!, $after: String) { article(id: $id) { revisions(first: 2, after: $after) { edges { node { number title slug editedBy } } pageInfo { hasNextPage endCursor } } } }';
    const page1 = await call(revs, { id: art.id }, asStaff());
    expect(page1.errors).toBeUndefined();
    expect(page1.data?.article.revisions.edges.map((e: { node: { number: number } }) => e.node.number)).toEqual([3, 2]);
    const page2 = await call(revs, { id: art.id, after: page1.data?.article.revisions.pageInfo.endCursor }, asStaff());
    expect(
      page2.data?.article.revisions.edges.map((e: { node: { number: number; title: string } }) => [e.node.number, e.node.title]),
    ).toEqual([[1, '燕麦的故事']]);
    expect(page2.data?.article.revisions.pageInfo.hasNextPage).toBe(false);
    expect(code(await call(revs, { id: art.id }, asMember()))).toBe('FORBIDDEN');
  });

  test('rich bodies: blocks round-trip, the product card is a federated Product; bounds name the field', async () => {
    const blocks = [
      { kind: 'TEXT', text: '第一段' },
      { kind: 'IMAGE', url: 'https://cdn.example.com/a.jpg', alt: '图' },
      { kind: 'VIDEO', url: 'https://cdn.example.com/a.mp4' },
      { kind: 'PRODUCT_CARD', refId: 'p1' },
      { kind: 'LIVE_ROOM_CARD', refId: 'r1' },
      { kind: 'COUPON_CARD', refId: 'c1' },
    ];
    const art = await createArticle({ blocks, tags: ['早餐', '早餐', '健康'], author: '营养师小王' });
    const q = `query($id: ID!) { article(id: $id) { tags author blocks { kind ... on TextBlock { text } ... on ImageBlock { url alt }
      ... on ProductCardBlock { product { id } } ... on LiveRoomCardBlock { roomId } ... on CouponCardBlock { couponTemplateId } } } }`;
    const res = await call(q, { id: art.id }, asStaff());
    expect(res.errors).toBeUndefined();
    expect(res.data?.article).toMatchObject({ tags: ['早餐', '健康'], author: '营养师小王' });
    expect(res.data?.article.blocks).toEqual([
      { kind: 'TEXT', text: '第一段' },
      { kind: 'IMAGE', url: 'https://cdn.example.com/a.jpg', alt: '图' },
      { kind: 'VIDEO' },
      { kind: 'PRODUCT_CARD', product: { id: 'p1' } },
      { kind: 'LIVE_ROOM_CARD', roomId: 'r1' },
      { kind: 'COUPON_CARD', couponTemplateId: 'c1' },
    ]);
    const before = await a.db.collection('articles').countDocuments();
    const bad: [Record<string, unknown>, string][] = [
      [{ blocks: [{ kind: 'IMAGE', url: 'ftp://x' }] }, 'blocks[0].url'],
      [{ blocks: [{ kind: 'TEXT', text: '' }] }, 'blocks[0].text'],
      [{ blocks: [{ kind: 'PRODUCT_CARD' }] }, 'blocks[0].refId'],
      [{ tags: Array.from({ length: 21 }, (_, i) => `t${i}`) }, 'tags'],
      [{ slug: 'Not A Slug' }, 'slug'],
      [{ seo: { keywords: ['k'.repeat(41)] } }, 'seo.keywords[0]'],
    ];
    for (const [over, field] of bad) {
      const r = await call(
        'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
        { i: { title: 't', type: 'STORY', summary: 's', body: 'b', ...over } },
        asStaff(),
      );
      expect([code(r), r.errors?.[0]?.extensions?.['field']]).toEqual(['BAD_USER_INPUT', field]);
    }
    expect(await a.db.collection('articles').countDocuments()).toBe(before);
  });
});

describe('pages and the sitemap', () => {
  test('a brand story page: draft, published, found by slug; the sitemap lists published pages and articles only', async () => {
    const created = await call(
      'mutation($i: CreatePageInput!) { createPage(input: $i) { id kind status slug } }',
      { i: { kind: 'BRAND_STORY', title: '我们的品牌故事', slug: 'brand-story', blocks: [{ kind: 'TEXT', text: '2016 年……' }] } },
      asStaff(),
    );
    expect(created.errors).toBeUndefined();
    const page = created.data!.createPage;
    expect(page).toMatchObject({ kind: 'BRAND_STORY', status: 'DRAFT', slug: 'brand-story' });
    const bySlug = 'query { pageBySlug(slug: "brand-story") { page { id title } canonicalSlug redirected } }';
    expect((await call(bySlug)).data?.pageBySlug).toBeNull();
    const draft = await createArticle();

    const pub = await call('mutation($id: ID!) { publishPage(input: { pageId: $id }) { status } }', { id: page.id }, asStaff());
    expect(pub.data?.publishPage.status).toBe('PUBLISHED');
    expect((await call(bySlug)).data?.pageBySlug).toEqual({
      page: { id: page.id, title: '我们的品牌故事' },
      canonicalSlug: 'brand-story',
      redirected: false,
    });
    expect((await call('{ pages(kind: BRAND_STORY) { id } }')).data?.pages).toEqual([{ id: page.id }]);

    const map = await call('{ sitemap { kind id slug url lastModified } }');
    expect(map.errors).toBeUndefined();
    const entries: { kind: string; id: string; url: string; lastModified: string }[] = map.data!.sitemap;
    expect(entries).toContainEqual(
      expect.objectContaining({ kind: 'PAGE', id: page.id, url: 'https://www.example.com/pages/brand-story' }),
    );
    expect(entries.some((e) => e.id === draft.id)).toBe(false);
    expect(entries.every((e) => !Number.isNaN(Date.parse(e.lastModified)))).toBe(true);
    expect(entries.filter((e) => e.kind === 'ARTICLE').length).toBeGreaterThan(0);
  });
});
