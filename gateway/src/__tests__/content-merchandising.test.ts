// 首页装修 and 活动中心 through the gateway: menus saved as versions (two staff saving against the
// same version: one wins, the other gets CONFLICT), home banners filtered by window and audience
// for an anonymous viewer and targeted at a member's tier (from `membership.tier.changed`),
// activities by status with a countdown, and upcoming-live teasers fed by `live.room.scheduled`
// events (a redelivery counted once). Members are refused every write.
// Real subgraphs, real FerretDB and NATS.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { gql } from '@flywheel/testing';
import type { RunningContent } from '../../../services/content/src/main';
import { asStaff, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
let staff: Record<string, string>;
beforeAll(async () => {
  stack = await startInProcessStack();
  staff = asStaff();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const content = () => stack.subgraphs.content as RunningContent;
const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const field = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.field;
const oid = () => new Types.ObjectId().toHexString();
const SAVE_MENU = 'mutation($i: SaveMenuInput!) { saveMenu(input: $i) { name version items { label link { kind refId url } } } }';
const NAV = 'query($m: String!) { navigation(menu: $m) { version items { label link { kind refId url } } } }';
const SAVE_BANNERS = 'mutation($i: SaveHomeBannersInput!) { saveHomeBanners(input: $i) { version banners { id title } } }';
const ACTIVITY = 'mutation($i: ActivityInput!) { createActivity(input: $i) { id status countdown version } }';

async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v) || Date.now() > deadline) return v;
    await new Promise((r) => setTimeout(r, 100));
  }
}

test('a menu is saved in order as versions; two saves against one version: one wins, the other CONFLICT; a member is refused', async () => {
  const menu = `MAIN_${randomUUID().slice(0, 6).toUpperCase().replace(/-/g, '')}`;
  const articleId = oid();
  const items = [
    { label: '首页', link: { kind: 'EXTERNAL', url: 'https://shop.example.com/' } },
    { label: '品牌故事', link: { kind: 'ARTICLE', refId: articleId } },
    { label: '直播', link: { kind: 'LIVE_ROOM', refId: oid() } },
  ];
  const first = await gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 0, items } }, staff);
  expect(first.errors).toBeUndefined();
  expect(first.data!.saveMenu.version).toBe(1);
  const read = await gql(url(), NAV, { m: menu });
  expect(read.data!.navigation.version).toBe(1);
  expect(read.data!.navigation.items.map((i: { label: string }) => i.label)).toEqual(['首页', '品牌故事', '直播']);
  expect(read.data!.navigation.items[1].link).toEqual({ kind: 'ARTICLE', refId: articleId, url: null });

  // Two staff edit version 1 at once: exactly one lands as version 2.
  const a = [...items.slice(2), ...items.slice(0, 1)];
  const b = items.slice(1, 2);
  const [ra, rb] = await Promise.all([
    gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 1, items: a } }, staff),
    gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 1, items: b } }, asStaff()),
  ]);
  const codes = [code(ra), code(rb)].sort();
  expect(codes).toEqual(['CONFLICT', undefined].sort());
  const winner = ra.errors ? b : a;
  // Signed in, so not the gateway's cached anonymous answer (public menus are cached for a minute).
  const now = (await gql(url(), NAV, { m: menu }, staff)).data!.navigation;
  expect(now.version).toBe(2);
  expect(now.items.map((i: { label: string }) => i.label)).toEqual(winner.map((i) => i.label));

  // Bounds, and a member: refused, nothing written.
  const tooMany = Array.from({ length: 31 }, () => items[0]);
  expect(field(await gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 2, items: tooMany } }, staff))).toBe('items');
  const httpLink = [{ label: 'x', link: { kind: 'EXTERNAL', url: 'http://shop.example.com/' } }];
  expect(field(await gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 2, items: httpLink } }, staff))).toBe('items[0].link.url');
  const badId = [{ label: 'x', link: { kind: 'PRODUCT', refId: 'nope' } }];
  expect(field(await gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 2, items: badId } }, staff))).toBe('items[0].link.refId');
  const member = newCustomer();
  expect(code(await gql(url(), SAVE_MENU, { i: { name: menu, expectedVersion: 2, items } }, member.headers))).toBe('FORBIDDEN');
  expect(code(await gql(url(), SAVE_BANNERS, { i: { expectedVersion: 0, banners: [] } }, member.headers))).toBe('FORBIDDEN');
  expect(code(await gql(url(), 'query { homeBannerSet { version } }', {}, member.headers))).toBe('FORBIDDEN');
  expect((await gql(url(), NAV, { m: menu }, staff)).data!.navigation.version).toBe(2);
});

test('home banners: only those in their window and for ALL are shown to an anonymous viewer, in order', async () => {
  const current = (await gql(url(), 'query { homeBannerSet { version } }', {}, staff)).data!.homeBannerSet.version as number;
  const hour = 3_600_000;
  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  const link = { kind: 'ACTIVITY', refId: oid() };
  const image = 'https://cdn.example.com/b.jpg';
  const banners = [
    { title: '进行中 B', imageUrl: image, link, startsAt: at(-hour), endsAt: at(hour) },
    { title: '未开始', imageUrl: image, link, startsAt: at(hour), endsAt: at(2 * hour) },
    { title: '已结束', imageUrl: image, link, startsAt: at(-2 * hour), endsAt: at(-hour) },
    { title: '金卡专享', imageUrl: image, link, audience: { kind: 'TIER', tier: 'GOLD' } },
    { title: '新客专享', imageUrl: image, link, audience: { kind: 'SEGMENT', segment: 'NEW' } },
    { title: '常驻 A', imageUrl: image, link: { kind: 'EXTERNAL', url: 'https://example.com/sale' } },
  ];
  const saved = await gql(url(), SAVE_BANNERS, { i: { expectedVersion: current, banners } }, staff);
  expect(saved.errors).toBeUndefined();
  expect(saved.data!.saveHomeBanners.version).toBe(current + 1);
  const shown = await gql(url(), 'query { homeBanners { title link { kind url } } }', {});
  expect(shown.data!.homeBanners.map((b: { title: string }) => b.title)).toEqual(['进行中 B', '常驻 A']);

  // A stale version, a window that ends before it starts, an unknown tier, too many banners.
  expect(code(await gql(url(), SAVE_BANNERS, { i: { expectedVersion: current, banners: [] } }, staff))).toBe('CONFLICT');
  const v = current + 1;
  const backwards = [{ title: 'x', imageUrl: image, link, startsAt: at(hour), endsAt: at(-hour) }];
  expect(field(await gql(url(), SAVE_BANNERS, { i: { expectedVersion: v, banners: backwards } }, staff))).toBe('banners[0].endsAt');
  const tier = [{ title: 'x', imageUrl: image, link, audience: { kind: 'TIER', tier: 'PLATINUM' } }];
  expect(field(await gql(url(), SAVE_BANNERS, { i: { expectedVersion: v, banners: tier } }, staff))).toBe('banners[0].audience.tier');
  const many = Array.from({ length: 21 }, () => ({ title: 'x', imageUrl: image, link }));
  expect(field(await gql(url(), SAVE_BANNERS, { i: { expectedVersion: v, banners: many } }, staff))).toBe('banners');
  expect((await gql(url(), 'query { homeBannerSet { version } }', {}, staff)).data!.homeBannerSet.version).toBe(v);
});

test('activities by status with a countdown; a window ending before it starts is refused', async () => {
  const minute = 60_000;
  const at = (ms: number) => new Date(Date.now() + ms).toISOString();
  const upcoming = await gql(
    url(),
    ACTIVITY,
    { i: { title: '618 预热', startsAt: at(10 * minute), endsAt: at(60 * minute), productIds: [oid()] } },
    staff,
  );
  expect(upcoming.errors).toBeUndefined();
  const u = upcoming.data!.createActivity;
  expect(u.status).toBe('UPCOMING');
  expect(u.countdown).toBeGreaterThan(595);
  expect(u.countdown).toBeLessThanOrEqual(600);
  const ongoing = (await gql(url(), ACTIVITY, { i: { title: '会员日', startsAt: at(-minute), endsAt: at(5 * minute) } }, staff)).data!
    .createActivity;
  expect(ongoing.status).toBe('ONGOING');
  expect(ongoing.countdown).toBeLessThanOrEqual(300);
  const ended = (await gql(url(), ACTIVITY, { i: { title: '年货节', startsAt: at(-10 * minute), endsAt: at(-minute) } }, staff)).data!
    .createActivity;
  expect(ended).toMatchObject({ status: 'ENDED', countdown: 0 });

  const list = async (status: string) =>
    (await gql(url(), 'query($s: ActivityStatus) { activities(status: $s) { id } }', { s: status })).data!.activities.map(
      (a: { id: string }) => a.id,
    );
  expect(await list('UPCOMING')).toContain(u.id);
  expect(await list('UPCOMING')).not.toContain(ongoing.id);
  expect(await list('ONGOING')).toContain(ongoing.id);
  expect(await list('ENDED')).toContain(ended.id);

  const one = await gql(url(), 'query($id: ID!) { activity(id: $id) { title productIds version } }', { id: u.id });
  expect(one.data!.activity).toMatchObject({ title: '618 预热', version: 1 });
  const update = 'mutation($i: UpdateActivityInput!) { updateActivity(input: $i) { title version } }';
  const edit = { title: '618 大促', startsAt: at(10 * minute), endsAt: at(60 * minute) };
  expect((await gql(url(), update, { i: { activityId: u.id, expectedVersion: 1, activity: edit } }, staff)).data!.updateActivity).toEqual({
    title: '618 大促',
    version: 2,
  });
  expect(code(await gql(url(), update, { i: { activityId: u.id, expectedVersion: 1, activity: edit } }, staff))).toBe('CONFLICT');

  const backwards = await gql(url(), ACTIVITY, { i: { title: 'x', startsAt: at(minute), endsAt: at(-minute) } }, staff);
  expect(field(backwards)).toBe('activity.endsAt');
  expect(field(await gql(url(), ACTIVITY, { i: { title: 'x', startsAt: at(0), endsAt: at(minute), articleIds: ['x'] } }, staff))).toBe(
    'activity.articleIds[0]',
  );
  expect(code(await gql(url(), ACTIVITY, { i: { title: 'x', startsAt: at(0), endsAt: at(minute) } }, newCustomer().headers))).toBe(
    'FORBIDDEN',
  );
});

test('upcoming live teasers come from live.room.scheduled events, a redelivery counted once, a started room dropped', async () => {
  const bus = stack.orders.bus;
  const soon = oid();
  const later = oid();
  const hour = 3_600_000;
  await bus.publish('live.room.scheduled', { roomId: soon, scheduledAt: new Date(Date.now() + hour).toISOString() });
  const data = { roomId: later, scheduledAt: new Date(Date.now() + 2 * hour).toISOString() };
  await bus.publish('live.room.scheduled', data);
  // The same schedule again under a new event id (a re-publish past the stream's duplicate window).
  await bus.publish('live.room.scheduled', data, { id: randomUUID() });

  // Signed in: the gateway caches the anonymous answer (its max-age cap), which would only slow the test.
  const read = () =>
    gql(url(), 'query { upcomingLiveRooms(first: 50) { roomId scheduledAt } }', {}, staff).then(
      (r) => r.data!.upcomingLiveRooms as { roomId: string; scheduledAt: string }[],
    );
  const ours = (rooms: { roomId: string }[]) => rooms.filter((r) => r.roomId === soon || r.roomId === later).map((r) => r.roomId);
  const rooms = await until(read, (v) => ours(v).length >= 2);
  expect(ours(rooms)).toEqual([later, soon]);
  expect(
    await content()
      .db.collection('content_live_room_entries')
      .countDocuments({ accountId: `room:${later}` }),
  ).toBe(1);

  await bus.publish('live.room.started', {
    roomId: soon,
    scheduledAt: new Date(Date.now() + hour).toISOString(),
    startedAt: new Date().toISOString(),
  });
  const after = await until(read, (v) => !ours(v).includes(soon));
  expect(ours(after)).toEqual([later]);
  expect(code(await gql(url(), 'query { upcomingLiveRooms(first: 51) { roomId } }', {}))).toBe('BAD_USER_INPUT');
});

test("a member sees the banner of the tier membership reported, through the gateway; others and the shared cache don't", async () => {
  const current = (await gql(url(), 'query { homeBannerSet { version } }', {}, staff)).data!.homeBannerSet.version as number;
  const link = { kind: 'EXTERNAL', url: 'https://example.com/vip' };
  const banners = [
    { title: '全员', imageUrl: 'https://cdn.example.com/a.jpg', link },
    { title: '钻石专享', imageUrl: 'https://cdn.example.com/d.jpg', link, audience: { kind: 'TIER', tier: 'DIAMOND' } },
  ];
  expect((await gql(url(), SAVE_BANNERS, { i: { expectedVersion: current, banners } }, staff)).errors).toBeUndefined();
  const diamond = newCustomer();
  const other = newCustomer();
  await stack.orders.bus.publish('membership.tier.changed', {
    memberId: diamond.id,
    from: 'GOLD',
    to: 'DIAMOND',
    direction: 'UP',
    growth: 50_000,
    changedAt: new Date().toISOString(),
  });
  const titles = (headers: Record<string, string> = {}) =>
    gql(url(), 'query { homeBanners { title } }', {}, headers).then((r) =>
      (r.data!.homeBanners as { title: string }[]).map((b) => b.title),
    );
  expect(
    await until(
      () => titles(diamond.headers),
      (v) => v.length === 2,
    ),
  ).toEqual(['全员', '钻石专享']);
  expect(await titles(other.headers)).toEqual(['全员']);
  // The member's answer was not cached for anyone else (an anonymous answer may be an earlier cached one).
  expect(await titles()).not.toContain('钻石专享');
});
