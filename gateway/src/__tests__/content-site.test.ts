// The brand site (官网) through the gateway: pages and articles with rich bodies whose product
// cards catalog resolves (live-room cards live, coupon cards membership), scheduled publishing swept by two content replicas, slugs and redirects,
// the sitemap, revisions for staff, a member refused. Real subgraphs, real FerretDB and NATS.
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
  // A second content replica on the first one's database (the gateway talks to the first).
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

async function product(): Promise<string> {
  const res = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }',
    { i: { name: '有机燕麦片', description: '高原燕麦', status: 'ON_SALE', skus: [{ name: '500g', specs: [], price: 3990, stock: 10 }] } },
    staff,
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createProduct.id;
}

test('an article scheduled with a product card goes out once (two replicas), then is found by its old slug, in the sitemap, with revisions', async () => {
  const productId = await product();
  const created = await gql(
    url(),
    'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id slug status } }',
    {
      i: {
        title: '新品：有机燕麦片',
        type: 'PRODUCT',
        summary: '产地直采',
        body: '每一粒燕麦都来自高原。',
        slug: 'organic-oats',
        blocks: [
          { kind: 'TEXT', text: '每一粒燕麦都来自高原。' },
          { kind: 'PRODUCT_CARD', refId: productId },
        ],
        tags: ['新品'],
      },
    },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const id: string = created.data!.createArticle.id;

  // A member cannot publish: FORBIDDEN, and the article stays a draft.
  const member = newCustomer();
  expect(code(await gql(url(), 'mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id }, member.headers))).toBe(
    'FORBIDDEN',
  );
  const schedule = 'mutation($i: ScheduleArticleInput!) { scheduleArticle(input: $i) { status publishAt } }';
  expect(code(await gql(url(), schedule, { i: { articleId: id, publishAt: new Date(Date.now() - 60_000).toISOString() } }, staff))).toBe(
    'BAD_USER_INPUT',
  );
  const at = new Date(Date.now() + 60_000);
  const scheduled = await gql(url(), schedule, { i: { articleId: id, publishAt: at.toISOString() } }, staff);
  expect(scheduled.data?.scheduleArticle).toEqual({ status: 'SCHEDULED', publishAt: at.toISOString() });

  const later = new Date(at.getTime() + 1000);
  const counts = await Promise.all([content().sweep(later), second.sweep(later)]);
  expect(counts.reduce((n, c) => n + (c['article'] ?? 0), 0)).toBe(1);
  const events = await content()
    .db.collection('content_lifecycle')
    .countDocuments({ 'outbox.subject': 'content.article.published', accountId: `article:${id}` });
  expect(events).toBe(1);

  const rename = await gql(
    url(),
    'mutation($i: UpdateArticleInput!) { updateArticle(input: $i) { slug revision } }',
    { i: { articleId: id, slug: 'organic-oats-500g' } },
    staff,
  );
  expect(rename.data?.updateArticle).toEqual({ slug: 'organic-oats-500g', revision: 2 });

  const read = await gql(
    url(),
    `query($s: String!) { articleBySlug(slug: $s) { canonicalSlug redirected article { id status seo { canonicalUrl }
      blocks { kind ... on ProductCardBlock { product { id name } } } } } }`,
    { s: 'organic-oats' },
  );
  expect(read.errors).toBeUndefined();
  expect(read.data?.articleBySlug).toMatchObject({
    canonicalSlug: 'organic-oats-500g',
    redirected: true,
    article: { id, status: 'PUBLISHED', seo: { canonicalUrl: 'https://www.example.com/articles/organic-oats-500g' } },
  });
  expect(read.data?.articleBySlug.article.blocks[1]).toEqual({ kind: 'PRODUCT_CARD', product: { id: productId, name: '有机燕麦片' } });

  const map = await gql(url(), '{ sitemap { kind id slug lastModified } }');
  expect(map.data?.sitemap).toContainEqual(expect.objectContaining({ kind: 'ARTICLE', id, slug: 'organic-oats-500g' }));

  const revs = 'query($id: ID!) { article(id: $id) { revisions { edges { node { number slug } } } } }';
  expect(
    (await gql(url(), revs, { id }, staff)).data?.article.revisions.edges.map((e: { node: { number: number } }) => e.node.number),
  ).toEqual([2, 1]);
  expect(code(await gql(url(), revs, { id }, member.headers))).toBe('FORBIDDEN');
});

test('a brand story page is published and read by slug by an anonymous visitor', async () => {
  const created = await gql(
    url(),
    'mutation($i: CreatePageInput!) { createPage(input: $i) { id } }',
    { i: { kind: 'BRAND_STORY', title: '品牌故事', slug: 'our-story', blocks: [{ kind: 'TEXT', text: '2016 年……' }] } },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const pageId = created.data!.createPage.id;
  await gql(url(), 'mutation($i: PageMoveInput!) { publishPage(input: $i) { id } }', { i: { pageId } }, staff);
  const res = await gql(url(), '{ pageBySlug(slug: "our-story") { redirected page { id kind title blocks { kind } } } }');
  expect(res.data?.pageBySlug).toEqual({
    redirected: false,
    page: { id: pageId, kind: 'BRAND_STORY', title: '品牌故事', blocks: [{ kind: 'TEXT' }] },
  });
});

test('live-room and coupon cards: the gateway resolves the room from live and the template from membership', async () => {
  const room = await gql(
    url(),
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    { i: { title: '燕麦溯源直播', hostName: '小林', scheduledAt: new Date(Date.now() + 2 * 3600_000).toISOString() } },
    staff,
  );
  expect(room.errors).toBeUndefined();
  const roomId: string = room.data!.scheduleLiveRoom.id;
  const template = (claimable: boolean) =>
    gql(
      url(),
      'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
      {
        i: {
          name: claimable ? '燕麦满减券' : '直播专享券',
          kind: 'FIXED',
          amount: 500,
          threshold: 3000,
          validDaysAfterClaim: 7,
          claimable,
        },
      },
      staff,
    ).then((r) => {
      expect(r.errors).toBeUndefined();
      return r.data!.createCouponTemplate.id as string;
    });
  const claimable = await template(true);
  const grantedOnly = await template(false);
  const unknownRoom = '0123456789abcdef01234567';

  const created = await gql(
    url(),
    'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
    {
      i: {
        title: '直播预告：燕麦溯源',
        type: 'ACTIVITY',
        summary: '产地直播',
        body: '跟着主播去高原。',
        blocks: [
          { kind: 'LIVE_ROOM_CARD', refId: roomId },
          { kind: 'COUPON_CARD', refId: claimable },
          { kind: 'COUPON_CARD', refId: grantedOnly },
          { kind: 'LIVE_ROOM_CARD', refId: unknownRoom },
        ],
      },
    },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const id: string = created.data!.createArticle.id;
  await gql(url(), 'mutation($id: ID!) { publishArticle(input: { articleId: $id }) { id } }', { id }, staff);

  const q = `query($id: ID!) { article(id: $id) { blocks { kind
    ... on LiveRoomCardBlock { roomId room { id title status } }
    ... on CouponCardBlock { couponTemplateId couponTemplate { id name amount } } } } }`;
  const read = await gql(url(), q, { id });
  expect(read.errors).toBeUndefined();
  expect(read.data?.article.blocks).toEqual([
    { kind: 'LIVE_ROOM_CARD', roomId, room: { id: roomId, title: '燕麦溯源直播', status: 'SCHEDULED' } },
    { kind: 'COUPON_CARD', couponTemplateId: claimable, couponTemplate: { id: claimable, name: '燕麦满减券', amount: 500 } },
    // Granted only: not shown to the public, as `couponTemplate(id)` would not.
    { kind: 'COUPON_CARD', couponTemplateId: grantedOnly, couponTemplate: null },
    { kind: 'LIVE_ROOM_CARD', roomId: unknownRoom, room: null },
  ]);
  const asStaffRead = await gql(url(), q, { id }, staff);
  expect(asStaffRead.data?.article.blocks[2].couponTemplate).toEqual({ id: grantedOnly, name: '直播专享券', amount: 500 });
});
