// Shares (分享) through the gateway (real subgraphs, FerretDB and NATS): a member creates a share
// link carrying their invite code; membership's SHARE task is refused before the share and
// rewarded once the share's event arrives, once a day; visitors' clicks count once each, however
// concurrent; bad input is refused with a clear code and writes nothing.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { eventually, gql } from '@flywheel/testing';
import { asStaff, errorCode, newCustomer, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(180_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const code = errorCode;
const newId = () => new Types.ObjectId().toHexString();

const CREATE = 'mutation($i: CreateShareLinkInput!) { createShareLink(input: $i) { id code target { kind id } channel query } }';
const CLICK = 'mutation($s: ID!, $v: String!) { recordShareClick(shareId: $s, visitorId: $v) { counted } }';
const CLAIM = 'mutation { claimTaskReward(input: { task: SHARE }) { task points growth } }';
const ME = '{ me { id inviteCode { code } shareStats { shares clicks } } }';

const productShare = (headers: Record<string, string>) =>
  gql(url(), CREATE, { i: { target: { kind: 'PRODUCT', id: newId() }, channel: 'WECHAT_FRIEND' } }, headers);

test('a share link carries the invite code; SHARE is refused before it and rewarded once its event arrives, once a day', async () => {
  const member = await signUp(url());
  const before = await gql(url(), CLAIM, {}, member.headers);
  expect(before.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });

  const articleId = newId();
  const created = await gql(
    url(),
    CREATE,
    { i: { target: { kind: 'ARTICLE', id: articleId }, channel: 'WECHAT_MOMENTS' } },
    member.headers,
  );
  expect(created.errors).toBeUndefined();
  const link = created.data!.createShareLink;
  const me = await gql(url(), ME, {}, member.headers);
  expect(link).toMatchObject({ code: me.data!.me.inviteCode.code, target: { kind: 'ARTICLE', id: articleId }, channel: 'WECHAT_MOMENTS' });
  expect(link.query).toBe(`?share=${link.id}&invite=${link.code}`);

  // referral's outbox → NATS → membership's consumer records the evidence.
  const granted = await eventually(async () => {
    const res = await gql(url(), CLAIM, {}, member.headers);
    return res.errors ? null : res;
  }, 20_000);
  expect(granted.data!.claimTaskReward).toEqual({ task: 'SHARE', points: 5, growth: 2 });
  expect(code(await gql(url(), CLAIM, {}, member.headers))).toBe('CONFLICT');
  const second = await productShare(member.headers);
  expect(second.errors).toBeUndefined();
  expect(code(await gql(url(), CLAIM, {}, member.headers))).toBe('CONFLICT'); // once a day, however many shares
});

test('clicks count once per visitor, concurrent duplicates once, never the sharer; staff read the funnel', async () => {
  const sharer = newCustomer();
  const link = (await productShare(sharer.headers)).data!.createShareLink;
  const visitor = randomUUID();
  const burst = await Promise.all(Array.from({ length: 10 }, () => gql(url(), CLICK, { s: link.id, v: visitor })));
  expect(burst.every((r) => r.errors === undefined)).toBe(true);
  expect(burst.filter((r) => r.data!.recordShareClick.counted)).toHaveLength(1);
  expect((await gql(url(), CLICK, { s: link.id, v: randomUUID() })).data!.recordShareClick.counted).toBe(true);
  expect((await gql(url(), CLICK, { s: link.id, v: randomUUID() }, sharer.headers)).data!.recordShareClick.counted).toBe(false);

  const funnel = await gql(
    url(),
    'query($m: ID!) { shareFunnel(memberId: $m) { member { id } shares clicks visitors } }',
    { m: sharer.id },
    asStaff(),
  );
  expect(funnel.data!.shareFunnel).toEqual({ member: { id: sharer.id }, shares: 1, clicks: 2, visitors: 2 });
  expect(code(await gql(url(), 'query($m: ID!) { shareFunnel(memberId: $m) { shares } }', { m: sharer.id }, sharer.headers))).toBe(
    'FORBIDDEN',
  );
});

test('unknown kinds, overlong ids and the 51st share of the day are refused with clear codes and write nothing', async () => {
  const member = await signUp(url());
  const stats = async () => (await gql(url(), ME, {}, member.headers)).data!.me.shareStats;
  const create = (i: Record<string, unknown>) => gql(url(), CREATE, { i }, member.headers);

  expect(code(await create({ target: { kind: 'SHOP', id: newId() }, channel: 'COPY_LINK' }))).toBe('BAD_USER_INPUT');
  expect(code(await create({ target: { kind: 'PRODUCT', id: 'x'.repeat(101) }, channel: 'COPY_LINK' }))).toBe('BAD_USER_INPUT');
  expect(code(await create({ target: { kind: 'PAGE', id: 'p'.repeat(65) }, channel: 'COPY_LINK' }))).toBe('BAD_USER_INPUT');
  expect(code(await create({ target: { kind: 'LIVE_ROOM', id: 'room-1' }, channel: 'COPY_LINK' }))).toBe('BAD_USER_INPUT');
  expect(code(await gql(url(), CLICK, { s: newId(), v: 'v'.repeat(300) }))).toBe('BAD_USER_INPUT');
  expect(await stats()).toEqual({ shares: 0, clicks: 0 });

  for (let n = 0; n < 50; n++)
    expect((await create({ target: { kind: 'PAGE', id: `about-${n}` }, channel: 'OTHER' })).errors).toBeUndefined();
  const over = await create({ target: { kind: 'PAGE', id: 'about-51' }, channel: 'OTHER' });
  expect(over.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', reason: 'DAILY_SHARE_LIMIT' });
  expect(await stats()).toEqual({ shares: 50, clicks: 0 });
});
