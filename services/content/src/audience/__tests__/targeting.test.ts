import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData, EventSubject } from '@flywheel/events';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningContent } from '../../main';

// Home banners targeted at members' tiers and RFM segments, learnt from membership's events on the
// real NATS and FerretDB: a member sees their banners, another member doesn't, and a redelivered or
// older event changes nothing.

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

const oid = () => new Types.ObjectId().toHexString();
const code = (res: { errors?: { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const t = (s: number) => new Date(Date.UTC(2025, 5, 18, 12, 0, s)).toISOString();
const BANNERS = 'query($all: Boolean) { homeBanners(allAudiences: $all) { title } }';
const shown = async (headers: Record<string, string>, all = false) => {
  const res = await gql(svc.url, BANNERS, { all }, headers);
  expect(res.errors).toBeUndefined();
  return (res.data!.homeBanners as { title: string }[]).map((b) => b.title);
};
const asMember = (id: string) => asGateway('content', customer(id));

/** Publishes an event (under a new id unless given) and waits until content's consumer has processed it. */
async function deliver<S extends EventSubject>(subject: S, data: EventData<S>): Promise<void> {
  const env = await svc.bus.publish(subject, data, { id: randomUUID() });
  const key = `content_${subject.replace(/\./g, '-')}:${env.id}`;
  await eventually(() => svc.db.collection('processed_events').findOne({ _id: key as never }), 20_000);
}
const tier = (memberId: string, from: string, to: string, at: string) =>
  ({ memberId, from, to, direction: 'UP', growth: 100, changedAt: at }) as EventData<'membership.tier.changed'>;
const segment = (memberId: string, to: string, at: string) =>
  ({ memberId, from: null, to, recencyDays: 3, frequency: 2, monetary: 9900, changedAt: at }) as EventData<'membership.segment.changed'>;
const entries = (memberId: string) => svc.db.collection('content_audience_entries').countDocuments({ accountId: `audience:${memberId}` });

beforeAll(async () => {
  const link = { kind: 'EXTERNAL', url: 'https://example.com/sale' };
  const image = 'https://cdn.example.com/b.jpg';
  const banners = [
    { title: 'everyone', imageUrl: image, link },
    { title: 'gold', imageUrl: image, link, audience: { kind: 'TIER', tier: 'GOLD' } },
    { title: 'vip', imageUrl: image, link, audience: { kind: 'SEGMENT', segment: 'IMPORTANT_VALUE' } },
    { title: 'regular', imageUrl: image, link, audience: { kind: 'TIER', tier: 'REGULAR' } },
  ];
  const res = await gql(
    svc.url,
    'mutation($i: SaveHomeBannersInput!) { saveHomeBanners(input: $i) { version } }',
    { i: { expectedVersion: 0, banners } },
    asGateway('content', staff()),
  );
  expect(res.errors).toBeUndefined();
});

test('a member sees the banners of the tier and segment membership reported, another member does not', async () => {
  const a = oid();
  const b = oid();
  expect(await shown(asGateway('content', null))).toEqual(['everyone']);
  // Never reported: REGULAR, in no segment.
  expect(await shown(asMember(a))).toEqual(['everyone', 'regular']);

  await deliver('membership.tier.changed', tier(a, 'REGULAR', 'GOLD', t(10)));
  expect(await shown(asMember(a))).toEqual(['everyone', 'gold']);
  await deliver('membership.segment.changed', segment(a, 'IMPORTANT_VALUE', t(10)));
  expect(await shown(asMember(a))).toEqual(['everyone', 'gold', 'vip']);
  expect(await shown(asMember(b))).toEqual(['everyone', 'regular']);
  expect(await shown(asGateway('content', null))).toEqual(['everyone']);
  expect(await entries(a)).toBe(2);

  // The same change redelivered (a new event id), and an older one arriving late: nothing changes.
  await deliver('membership.tier.changed', tier(a, 'REGULAR', 'GOLD', t(10)));
  await deliver('membership.tier.changed', tier(a, 'REGULAR', 'SILVER', t(5)));
  await deliver('membership.segment.changed', segment(a, 'DORMANT', t(9)));
  expect(await shown(asMember(a))).toEqual(['everyone', 'gold', 'vip']);
  expect(await entries(a)).toBe(2);
  expect(await svc.db.collection('content_member_audiences').findOne({ _id: a as never })).toMatchObject({
    tier: 'GOLD',
    segment: 'IMPORTANT_VALUE',
    seq: 2,
  });

  // A newer change moves the member off the banner.
  await deliver('membership.tier.changed', tier(a, 'GOLD', 'SILVER', t(20)));
  expect(await shown(asMember(a))).toEqual(['everyone', 'vip']);
});

test('out of order: the newest change wins whichever arrives last', async () => {
  const c = oid();
  await deliver('membership.tier.changed', tier(c, 'SILVER', 'GOLD', t(30)));
  await deliver('membership.tier.changed', tier(c, 'REGULAR', 'SILVER', t(20)));
  expect(await shown(asMember(c))).toEqual(['everyone', 'gold']);
  expect(await entries(c)).toBe(1);
});

test('a tier change and a segment change racing (twice each) both land, once each', async () => {
  const d = oid();
  const tierChange = tier(d, 'REGULAR', 'GOLD', t(40));
  const segmentChange = segment(d, 'IMPORTANT_VALUE', t(40));
  await Promise.all([
    svc.audience.tierChanged(tierChange),
    svc.audience.segmentChanged(segmentChange),
    svc.audience.tierChanged(tierChange),
    svc.audience.segmentChanged(segmentChange),
  ]);
  expect(await entries(d)).toBe(2);
  expect(await svc.audience.audienceOf(d)).toEqual({ tier: 'GOLD', segment: 'IMPORTANT_VALUE' });
  expect(await shown(asMember(d))).toEqual(['everyone', 'gold', 'vip']);
});

test('staff preview every audience; anyone else asking is refused', async () => {
  expect(await shown(asGateway('content', staff()), true)).toEqual(['everyone', 'gold', 'vip', 'regular']);
  expect(await shown(asGateway('content', staff()))).toEqual(['everyone']);
  expect(code(await gql(svc.url, BANNERS, { all: true }, asMember(oid())))).toBe('FORBIDDEN');
  expect(code(await gql(svc.url, BANNERS, { all: true }, asGateway('content', null)))).toBe('UNAUTHENTICATED');
});

test("a member's banners are private to them; an anonymous answer may be shared", async () => {
  const cacheControl = async (headers: Record<string, string>) => {
    const res = await fetch(svc.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify({ query: '{ homeBanners { title } }' }),
    });
    return res.headers.get('cache-control');
  };
  expect(await cacheControl(asMember(oid()))).toBe('max-age=30, private');
  expect(await cacheControl(asGateway('content', null))).toBe('max-age=30, public');
});
