// Demo data for the local stack, created through the gateway exactly as an operator would:
// a staff session, the brand story, categories, a dozen products with SKUs, an article, a
// scheduled live room, a room live now (a pinned product, a comment, likes), a weekly live series,
// community groups of each type and a running check-in challenge, and a demo member with a post and
// a paid order's verified showcase (seed-member.ts), and the growth layer: an invite campaign, a
// group-buy and a bargain offer, a distributor (seed-growth.ts). A second run finds it and stops.

import { call } from './seed-gql';
import { seedGrowth } from './seed-growth';
import { DEMO_PHONE, seedDemoMember } from './seed-member';

export { DEMO_PHONE };

const PRODUCTS: { name: string; category: string; keywords: string[]; skus: [string, [string, string][], number, number][] }[] = [
  {
    name: '有机燕麦片 1kg',
    category: '健康食品',
    keywords: ['燕麦', '早餐'],
    skus: [
      ['原味', [['口味', '原味']], 4990, 300],
      ['坚果', [['口味', '坚果']], 5990, 200],
    ],
  },
  { name: '冷萃咖啡液 12 支', category: '健康食品', keywords: ['咖啡'], skus: [['经典', [['风味', '经典']], 6900, 500]] },
  { name: '低糖坚果礼盒', category: '健康食品', keywords: ['坚果', '礼盒'], skus: [['标准装', [['规格', '750g']], 12800, 150]] },
  { name: '胶原蛋白肽饮', category: '健康食品', keywords: ['美容'], skus: [['10 瓶', [['规格', '10瓶']], 19900, 120]] },
  { name: '氨基酸洁面乳', category: '美妆护肤', keywords: ['洁面'], skus: [['120g', [['规格', '120g']], 8900, 400]] },
  {
    name: '玻尿酸保湿精华',
    category: '美妆护肤',
    keywords: ['精华', '保湿'],
    skus: [
      ['30ml', [['规格', '30ml']], 22900, 220],
      ['50ml', [['规格', '50ml']], 32900, 90],
    ],
  },
  { name: '防晒霜 SPF50+', category: '美妆护肤', keywords: ['防晒'], skus: [['50ml', [['规格', '50ml']], 15900, 260]] },
  { name: '修护面膜 10 片', category: '美妆护肤', keywords: ['面膜'], skus: [['10 片', [['规格', '10片']], 9900, 310]] },
  {
    name: '纯棉圆领 T 恤',
    category: '服饰',
    keywords: ['T恤', '纯棉'],
    skus: [
      [
        '白 M',
        [
          ['颜色', '白'],
          ['尺码', 'M'],
        ],
        9900,
        80,
      ],
      [
        '白 L',
        [
          ['颜色', '白'],
          ['尺码', 'L'],
        ],
        9900,
        80,
      ],
      [
        '黑 M',
        [
          ['颜色', '黑'],
          ['尺码', 'M'],
        ],
        9900,
        60,
      ],
    ],
  },
  {
    name: '轻量羽绒服',
    category: '服饰',
    keywords: ['羽绒'],
    skus: [
      [
        '藏青 M',
        [
          ['颜色', '藏青'],
          ['尺码', 'M'],
        ],
        59900,
        40,
      ],
      [
        '藏青 L',
        [
          ['颜色', '藏青'],
          ['尺码', 'L'],
        ],
        59900,
        40,
      ],
    ],
  },
  { name: '羊毛围巾', category: '服饰', keywords: ['围巾', '羊毛'], skus: [['驼色', [['颜色', '驼色']], 29900, 70]] },
  { name: '帆布托特包', category: '服饰', keywords: ['包'], skus: [['米白', [['颜色', '米白']], 12900, 110]] },
];

export async function seedDemo(
  gatewayUrl: string,
  opts: {
    staffEmail: string;
    staffPassword: string;
    /** Orders' development payment route (`/payments/test/simulate`): with it, the demo member's order is paid. */
    paymentsUrl?: string;
  },
): Promise<{ created: boolean; demoPhone: string }> {
  const { staffLogin } = await call<{ staffLogin: { accessToken: string } }>(
    gatewayUrl,
    'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { accessToken } }',
    { e: opts.staffEmail, p: opts.staffPassword },
  );
  const staff = staffLogin.accessToken;
  const existing = await call<{ products: { edges: unknown[] } }>(gatewayUrl, '{ products(first: 1) { edges { cursor } } }', {}, staff);
  if (existing.products.edges.length) return { created: false, demoPhone: DEMO_PHONE };

  const categoryIds = new Map<string, string>();
  for (const name of ['健康食品', '美妆护肤', '服饰']) {
    const { createCategory } = await call<{ createCategory: { id: string } }>(
      gatewayUrl,
      'mutation($i: CreateCategoryInput!) { createCategory(input: $i) { id } }',
      { i: { name } },
      staff,
    );
    categoryIds.set(name, createCategory.id);
  }
  const productIds: string[] = [];
  for (const p of PRODUCTS) {
    const { createProduct } = await call<{ createProduct: { id: string } }>(
      gatewayUrl,
      'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }',
      {
        i: {
          name: p.name,
          description: `${p.name}：品牌自营，正品保障。`,
          categoryId: categoryIds.get(p.category),
          keywords: p.keywords,
          status: 'ON_SALE',
          skus: p.skus.map(([name, specs, price, stock]) => ({
            name,
            specs: specs.map(([n, v]) => ({ name: n, value: v })),
            price,
            stock,
          })),
        },
      },
      staff,
    );
    productIds.push(createProduct.id);
  }

  const articles = [
    {
      title: '我们的品牌故事',
      type: 'STORY',
      summary: '从一间小厨房到十万会员',
      body: '品牌创立于 2016 年，坚持用好原料做好产品。',
      relatedProductIds: [],
    },
    {
      title: '燕麦怎么吃更健康',
      type: 'KNOWLEDGE',
      summary: '营养师的三个建议',
      body: '燕麦富含膳食纤维……',
      relatedProductIds: productIds.slice(0, 2),
      tags: ['营养', '早餐'],
      blocks: [
        { kind: 'TEXT', text: '燕麦富含膳食纤维，早餐一碗刚刚好。' },
        { kind: 'PRODUCT_CARD', refId: productIds[0] },
      ],
    },
    {
      title: '新品上市：有机燕麦片',
      type: 'PRODUCT',
      summary: '产地直采，零添加',
      body: '每一粒燕麦都来自高原有机农场。',
      relatedProductIds: productIds.slice(0, 1),
      blocks: [{ kind: 'PRODUCT_CARD', refId: productIds[0] }],
    },
    {
      title: '会员日活动：满 199 减 30',
      type: 'ACTIVITY',
      summary: '每月 18 日，会员专享',
      body: '活动期间全场满 199 减 30，金卡会员再享包邮。',
      relatedProductIds: productIds.slice(2, 4),
    },
  ];
  // The brand site's pages (官网): the brand story, published.
  const { createPage } = await call<{ createPage: { id: string } }>(
    gatewayUrl,
    'mutation($i: CreatePageInput!) { createPage(input: $i) { id } }',
    {
      i: {
        kind: 'BRAND_STORY',
        title: '品牌故事',
        slug: 'brand-story',
        summary: '从一间小厨房到十万会员',
        blocks: [
          { kind: 'TEXT', text: '品牌创立于 2016 年，坚持用好原料做好产品。' },
          { kind: 'TEXT', text: '今天，我们的产品通过官网、直播和社群陪伴十万会员。' },
        ],
      },
    },
    staff,
  );
  await call(gatewayUrl, 'mutation($i: PageMoveInput!) { publishPage(input: $i) { id } }', { i: { pageId: createPage.id } }, staff);

  for (const a of articles) {
    const { createArticle } = await call<{ createArticle: { id: string } }>(
      gatewayUrl,
      'mutation($i: CreateArticleInput!) { createArticle(input: $i) { id } }',
      { i: { ...a, seo: { title: a.title, description: a.summary } } },
      staff,
    );
    await call(
      gatewayUrl,
      'mutation($i: PublishArticleInput!) { publishArticle(input: $i) { id } }',
      { i: { articleId: createArticle.id } },
      staff,
    );
  }

  const { scheduleLiveRoom: friday } = await call<{ scheduleLiveRoom: { id: string } }>(
    gatewayUrl,
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    {
      i: {
        title: '周五护肤专场直播',
        description: '主播现场试用，直播间专享价',
        hostName: '品牌主理人',
        scheduledAt: new Date(Date.now() + 3 * 24 * 3600_000).toISOString(),
        productIds: productIds.slice(4, 8),
      },
    },
    staff,
  );
  // 首页装修 and 活动中心: the main menu, a home banner to the brand story, and an activity two days
  // out with its products and the Friday live room (its countdown runs on every read).
  await call(
    gatewayUrl,
    'mutation($i: SaveMenuInput!) { saveMenu(input: $i) { version } }',
    {
      i: {
        name: 'MAIN',
        expectedVersion: 0,
        items: [
          { label: '品牌故事', link: { kind: 'PAGE', refId: createPage.id } },
          { label: '新品推荐', link: { kind: 'PRODUCT', refId: productIds[0] } },
          { label: '周五直播', link: { kind: 'LIVE_ROOM', refId: friday.id } },
        ],
      },
    },
    staff,
  );
  const { createActivity } = await call<{ createActivity: { id: string } }>(
    gatewayUrl,
    'mutation($i: ActivityInput!) { createActivity(input: $i) { id } }',
    {
      i: {
        title: '夏日护肤节',
        summary: '直播间专享价，满 99 元包邮',
        startsAt: new Date(Date.now() + 2 * 24 * 3600_000).toISOString(),
        endsAt: new Date(Date.now() + 9 * 24 * 3600_000).toISOString(),
        productIds: productIds.slice(4, 8),
        liveRoomIds: [friday.id],
      },
    },
    staff,
  );
  await call(
    gatewayUrl,
    'mutation($i: SaveHomeBannersInput!) { saveHomeBanners(input: $i) { version } }',
    {
      i: {
        expectedVersion: 0,
        banners: [
          {
            title: '夏日护肤节 · 即将开始',
            imageUrl: 'https://cdn.example.com/banners/summer.jpg',
            link: { kind: 'ACTIVITY', refId: createActivity.id },
          },
        ],
      },
    },
    staff,
  );
  // A room that is live in the demo (scheduled a moment ahead, started at once by its host), and
  // a weekly series (every Wednesday 20:00 Asia/Shanghai) whose rooms of the next weeks exist.
  const { scheduleLiveRoom: liveNow } = await call<{ scheduleLiveRoom: { id: string } }>(
    gatewayUrl,
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    {
      i: {
        title: '新品首发 · 正在直播',
        description: '主播带你逛新品，直播间专享价',
        hostName: '小林',
        scheduledAt: new Date(Date.now() + 10 * 60_000).toISOString(),
        productIds: productIds.slice(0, 4),
      },
    },
    staff,
  );
  await call(gatewayUrl, 'mutation($id: ID!) { startLiveRoom(id: $id) { id } }', { id: liveNow.id }, staff);
  // The host pins the first product (viewers of the feed see it with its price), and the brand's
  // banned words keep contact details out of the comments.
  await call(
    gatewayUrl,
    'mutation($r: ID!, $p: ID!) { pinLiveProduct(roomId: $r, productId: $p) { at } }',
    { r: liveNow.id, p: productIds[0] },
    staff,
  );
  await call(
    gatewayUrl,
    'mutation($w: [String!]!) { setLiveBannedWords(words: $w, expectedVersion: 0) { version } }',
    { w: ['微信', '加V', 'VX', '私聊'] },
    staff,
  );
  await call(
    gatewayUrl,
    'mutation($i: CreateLiveSeriesInput!) { createLiveSeries(input: $i) { id } }',
    {
      i: {
        title: '每周三护肤课堂',
        description: '成分党主播每周三晚八点讲护肤',
        hostName: '品牌主理人',
        weekday: 3,
        time: '20:00',
        timeZone: 'Asia/Shanghai',
        weeksAhead: 4,
        productIds: productIds.slice(4, 8),
      },
    },
    staff,
  );
  // Community: a group of each type, with its join rule as data (the new-member group is the
  // welcome group every registration joins; it exists once a member registers).
  const groups: [string, string, Record<string, unknown>][] = [
    ['护肤交流群', '分享护肤心得', { type: 'PRODUCT_INTEREST', joinPolicy: 'OPEN', capacity: 500, rules: '只聊护肤，不发广告' }],
    ['金卡会员群', '金卡及以上会员的专属群', { type: 'VIP', joinPolicy: 'BY_TIER', minTier: 'GOLD', autoLeave: true }],
    ['周三直播福利群', '直播预告与直播专享福利', { type: 'ACTIVITY', joinPolicy: 'OPEN', capacity: 200 }],
    ['上海同城群', '上海会员线下活动', { type: 'REGION', joinPolicy: 'OPEN', capacity: 300 }],
  ];
  for (const [name, description, rule] of groups) {
    const { createGroup } = await call<{ createGroup: { id: string } }>(
      gatewayUrl,
      'mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }',
      { i: { name, description, tags: [], welcome: false } },
      staff,
    );
    await call(
      gatewayUrl,
      'mutation($id: ID!, $i: ConfigureGroupInput!) { configureGroup(id: $id, input: $i) { id } }',
      { id: createGroup.id, i: rule },
      staff,
    );
    if (rule.type === 'ACTIVITY') {
      await call(
        gatewayUrl,
        'mutation($g: ID!, $b: String!) { pinGroupAnnouncement(groupId: $g, body: $b) { id } }',
        { g: createGroup.id, b: '本周三 20:00 新品直播，群内专享券开播即发！' },
        staff,
      );
    }
  }

  // Membership: a coupon for the coupon centre (满100减10), and a welcome coupon every new member
  // receives on registration (the demo member included, below).
  const { createCouponTemplate: centre } = await call<{ createCouponTemplate: { id: string } }>(
    gatewayUrl,
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '满100减10', kind: 'FIXED', amount: 1000, threshold: 10000, validDaysAfterClaim: 30, totalQuota: 1000 } },
    staff,
  );
  // A running check-in challenge (打卡): 7 days of the next 14, the coupon-centre coupon on completion.
  await call(
    gatewayUrl,
    'mutation($i: CreateChallengeInput!) { createChallenge(input: $i) { id } }',
    {
      i: {
        title: '7天早餐打卡',
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 14 * 86_400_000).toISOString(),
        requiredDays: 7,
        rewardTemplateId: centre.id,
      },
    },
    staff,
  );
  const { createCouponTemplate: welcome } = await call<{ createCouponTemplate: { id: string } }>(
    gatewayUrl,
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '新人券 5元', kind: 'FIXED', amount: 500, validDaysAfterClaim: 14, claimable: false } },
    staff,
  );
  await call(
    gatewayUrl,
    'mutation($i: UpdateCouponCampaignsInput!) { updateCouponCampaigns(input: $i) { welcomeTemplateId } }',
    { i: { welcomeTemplateId: welcome.id } },
    staff,
  );

  // 运费模板: 首件 8 元, 续件 2 元; 江浙沪 首件 5 元; 新疆 and 西藏 not delivered to; 满 99 元包邮.
  await call(
    gatewayUrl,
    'mutation($i: SetShippingTemplateInput!) { setShippingTemplate(input: $i) { template { version } } }',
    {
      i: {
        name: '全国包邮线 99 元',
        method: 'COUNT',
        defaultRule: { first: 1, firstFee: 800, additional: 1, additionalFee: 200 },
        regionRules: [{ provinceCodes: ['310000', '320000', '330000'], first: 1, firstFee: 500, additional: 1, additionalFee: 100 }],
        undeliverable: ['650000', '540000'],
        freeThreshold: 9900,
      },
    },
    staff,
  );

  // The demo member: signs up, an address, favourites, a post, a paid order with its verified
  // showcase (晒单), and a comment and likes in the room that is live (seed-member.ts).
  const member = await seedDemoMember(gatewayUrl, { productIds, liveRoomId: liveNow.id, paymentsUrl: opts.paymentsUrl });
  // Growth (裂变): an invite campaign, a group-buy and a bargain offer, the demo member as a distributor (seed-growth.ts).
  await seedGrowth(gatewayUrl, staff, { productIds, welcomeTemplateId: welcome.id, member });
  return { created: true, demoPhone: DEMO_PHONE };
}
