// Shares (分享) against the real FerretDB and NATS: the link and its event, the daily quota under
// concurrency, idempotent replays, visitors' clicks counted once each, and who may read the figures.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { EventEnvelope } from '@flywheel/events';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import type { ReferralService } from '../service';

jest.setTimeout(60_000);

let nats: InfraProcess;
let svc: RunningService & { service: ReferralService };
const published: EventEnvelope<'referral.share.created'>[] = [];

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)));
  await svc.bus.consume('referral.share.created', async (env) => {
    published.push(env);
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const newId = () => new Types.ObjectId().toHexString();
const as = (memberId: string) => asGateway('referral', customer(memberId));
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  gql(svc.url, query, variables, headers);
const sharesOf = (memberId: string) => svc.db.collection('shares').countDocuments({ memberId });
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const CREATE = 'mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id code target { kind id } channel query createdAt } }';
const CLICK = 'mutation($s: ID!, $v: String!) { recordShareClick(shareId: $s, visitorId: $v) { shareId counted } }';
const STATS = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id shareStats { shares clicks } } } }';
const FUNNEL = 'query($m: ID!) { shareFunnel(memberId: $m) { member { id } shares clicks visitors } }';

const share = (memberId: string, more: Record<string, unknown> = {}) =>
  call(CREATE, { i: { target: { kind: 'PRODUCT', id: newId() }, channel: 'WECHAT_FRIEND', ...more } }, as(memberId));

describe('createShareLink', () => {
  test("a share records the link with the sharer's invite code (issued on first share) and publishes referral.share.created", async () => {
    const memberId = newId();
    const productId = newId();
    const res = await call(CREATE, { i: { target: { kind: 'PRODUCT', id: productId }, channel: 'POSTER' } }, as(memberId));
    expect(res.errors).toBeUndefined();
    const link = res.data!.createShareLink;
    const [invite] = await svc.db.collection('invite_codes').find({ memberId }).toArray();
    expect(link).toMatchObject({ code: invite!.code, target: { kind: 'PRODUCT', id: productId }, channel: 'POSTER' });
    expect(link.query).toBe(`?share=${link.id}&invite=${invite!.code}`);
    const env = await eventually(async () => published.find((e) => e.data.shareId === link.id));
    expect(env.data).toEqual({
      shareId: link.id,
      memberId,
      targetKind: 'PRODUCT',
      targetId: productId,
      channel: 'POSTER',
      sharedAt: new Date(link.createdAt).toISOString(),
    });

    // A member with a code keeps it.
    const again = await call(CREATE, { i: { target: { kind: 'GROUP', id: 'welcome' }, channel: 'OTHER' } }, as(memberId));
    expect(again.data!.createShareLink.code).toBe(invite!.code);
    expect(await svc.db.collection('invite_codes').countDocuments({ memberId })).toBe(1);
  });

  test('an idempotency key replayed, also concurrently, returns the first share and publishes once', async () => {
    const memberId = newId();
    const idempotencyKey = randomUUID();
    const results = await Promise.all([1, 2, 3].map(() => share(memberId, { idempotencyKey })));
    expect(results.every((r) => r.errors === undefined)).toBe(true);
    const ids = new Set(results.map((r) => r.data!.createShareLink.id));
    expect(ids.size).toBe(1);
    expect(await sharesOf(memberId)).toBe(1);
    const replay = await share(memberId, { idempotencyKey });
    expect(replay.data!.createShareLink.id).toBe([...ids][0]);
    await svc.relay!.flush();
    await eventually(async () => published.some((e) => e.data.memberId === memberId));
    expect(published.filter((e) => e.data.memberId === memberId)).toHaveLength(1);
  });

  test('bad input is BAD_USER_INPUT and writes nothing; visitors and staff cannot share', async () => {
    const memberId = newId();
    const bad = [
      { target: { kind: 'PRODUCT', id: 'not-an-object-id' }, channel: 'COPY_LINK' },
      { target: { kind: 'GROUP', id: 'has spaces' }, channel: 'COPY_LINK' },
      { target: { kind: 'PAGE', id: 'x'.repeat(65) }, channel: 'COPY_LINK' },
      { target: { kind: 'PAGE', id: 'x'.repeat(101) }, channel: 'COPY_LINK' },
      { target: { kind: 'PRODUCT', id: newId() }, channel: 'COPY_LINK', idempotencyKey: 'k'.repeat(201) },
    ];
    for (const i of bad) expect(code(await call(CREATE, { i }, as(memberId)))).toBe('BAD_USER_INPUT');
    const unknownKind = await call(CREATE, { i: { target: { kind: 'SHOP', id: newId() }, channel: 'COPY_LINK' } }, as(memberId));
    expect(code(unknownKind)).toBe('BAD_USER_INPUT');
    expect(await sharesOf(memberId)).toBe(0);
    expect(await svc.db.collection('invite_codes').countDocuments({ memberId })).toBe(0);
    const good = { target: { kind: 'ARTICLE', id: newId() }, channel: 'WECHAT_MOMENTS' };
    expect(code(await call(CREATE, { i: good }, asGateway('referral', null)))).toBe('UNAUTHENTICATED');
    expect(code(await call(CREATE, { i: good }, asGateway('referral', staff())))).toBe('FORBIDDEN');
  });

  test('50 shares a day, raced: exactly 50 recorded and the rest RATE_LIMITED with reason DAILY_SHARE_LIMIT', async () => {
    const memberId = newId();
    const results = await Promise.all(Array.from({ length: 56 }, () => share(memberId)));
    const ok = results.filter((r) => r.errors === undefined);
    expect(ok).toHaveLength(50);
    const refused = results.filter((r) => r.errors);
    for (const r of refused) expect(r.errors![0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'DAILY_SHARE_LIMIT' });
    expect(await sharesOf(memberId)).toBe(50);
    const slots = await svc.db.collection('shares').distinct('slot', { memberId });
    expect(slots).toHaveLength(50);
  });
});

describe('recordShareClick and the figures', () => {
  test('each visitor counts once per share, concurrent duplicates once, the sharer never; stats for self and staff only', async () => {
    const sharer = newId();
    const link = (await share(sharer)).data!.createShareLink;
    const visitors = [randomUUID(), randomUUID(), randomUUID()];
    const anon = asGateway('referral', null);
    const burst = await Promise.all(Array.from({ length: 8 }, () => call(CLICK, { s: link.id, v: visitors[0] }, anon)));
    expect(burst.filter((r) => r.data?.recordShareClick.counted)).toHaveLength(1);
    expect((await call(CLICK, { s: link.id, v: visitors[1] }, anon)).data!.recordShareClick.counted).toBe(true);
    expect((await call(CLICK, { s: link.id, v: visitors[2] }, as(newId()))).data!.recordShareClick.counted).toBe(true);
    expect((await call(CLICK, { s: link.id, v: randomUUID() }, as(sharer))).data!.recordShareClick.counted).toBe(false);
    // A second share of the same member: visitor 0 counts again there, once.
    const other = (await share(sharer)).data!.createShareLink;
    expect((await call(CLICK, { s: other.id, v: visitors[0] }, anon)).data!.recordShareClick.counted).toBe(true);

    const r = [{ __typename: 'Member', id: sharer }];
    const self = await call(STATS, { r }, as(sharer));
    expect(self.data!._entities[0]).toEqual({ id: sharer, shareStats: { shares: 2, clicks: 4 } });
    expect(code(await call(STATS, { r }, as(newId())))).toBe('FORBIDDEN');
    const funnel = await call(FUNNEL, { m: sharer }, asGateway('referral', staff()));
    expect(funnel.data!.shareFunnel).toEqual({ member: { id: sharer }, shares: 2, clicks: 4, visitors: 3 });
    expect(code(await call(FUNNEL, { m: sharer }, as(sharer)))).toBe('FORBIDDEN');
  });

  test('an unknown share is NOT_FOUND; malformed ids and visitor ids are BAD_USER_INPUT; nothing is written', async () => {
    const anon = asGateway('referral', null);
    expect(code(await call(CLICK, { s: newId(), v: randomUUID() }, anon))).toBe('NOT_FOUND');
    const link = (await share(newId())).data!.createShareLink;
    for (const [s, v] of [
      ['nope', randomUUID()],
      [link.id, 'short'],
      [link.id, 'has:colon-0123'],
      [link.id, 'v'.repeat(65)],
      [link.id, 'v'.repeat(201)],
    ]) {
      expect(code(await call(CLICK, { s, v }, anon))).toBe('BAD_USER_INPUT');
    }
    expect(await svc.db.collection('share_clicks').countDocuments({ shareId: link.id })).toBe(0);
  });
});
