// A live room's real-time feed through the gateway (real subgraphs, FerretDB and NATS, graphql-ws
// over a real WebSocket): comments, the pinned product with its catalog price, likes, viewers and
// removals reach viewers on two gateway replicas; bad comments, like floods and bad subscriptions
// are refused with their codes and write nothing.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import type { RunningGateway } from '../main';
import { closeFeedClients, feedClient as client, seen, watch } from './feed-client';
import { asStaff, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
let second: RunningGateway;
beforeAll(async () => {
  stack = await startInProcessStack();
  second = await stack.extraGateway();
}, 60_000);
afterAll(async () => {
  await closeFeedClients();
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

async function liveRoom(): Promise<{ roomId: string; productId: string }> {
  const product = await gql(
    url(),
    'mutation($i: CreateProductInput!) { createProduct(input: $i) { id } }',
    {
      i: {
        name: `直播爆款 ${randomUUID().slice(0, 6)}`,
        status: 'ON_SALE',
        skus: [{ name: '标准', price: 3990, stock: 50, weightGrams: 300 }],
      },
    },
    staff,
  );
  expect(product.errors).toBeUndefined();
  const productId = product.data!.createProduct.id;
  const room = await gql(
    url(),
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    { i: { title: '周三上新', hostName: '小林', scheduledAt: new Date(Date.now() + 3600_000).toISOString(), productIds: [productId] } },
    staff,
  );
  const roomId = room.data!.scheduleLiveRoom.id;
  expect((await gql(url(), 'mutation($id: ID!) { startLiveRoom(id: $id) { status } }', { id: roomId }, staff)).errors).toBeUndefined();
  return { roomId, productId };
}

const COMMENT = 'mutation($r: ID!, $b: String!) { postLiveComment(roomId: $r, body: $b) { id body } }';
const comments = async (roomId: string) =>
  (await gql(url(), 'query($id: ID!) { liveRoom(id: $id) { comments(first: 50) { edges { node { id body } } } } }', { id: roomId })).data!
    .liveRoom.comments.edges;

test('viewers on two gateway replicas get comments, the pinned product with its catalog price, likes, viewers and removals', async () => {
  const { roomId, productId } = await liveRoom();
  const [alice, bob, carol] = [await signUp(url()), await signUp(url()), await signUp(url())];
  const onFirst = watch(client(stack.gateway, alice.token), roomId);
  const onSecond = watch(client(second, bob.token), roomId);
  // Both subscriptions are in place once each replica counts its viewer.
  await eventually(async () => stack.gateway.hub!.stats().rooms[roomId] === 1 && second.hub!.stats().rooms[roomId] === 1);

  const posted = await gql(url(), COMMENT, { r: roomId, b: '这个颜色好看吗？' }, carol.headers);
  expect(posted.errors).toBeUndefined();
  const commentId = posted.data!.postLiveComment.id;
  for (const v of [onFirst, onSecond]) {
    const c = await seen(v, (e) => e.__typename === 'LiveComment' && e.id === commentId, 'the comment');
    expect(c).toMatchObject({ body: '这个颜色好看吗？', author: { id: carol.id, nickname: expect.any(String) } });
  }

  const pinned = await gql(
    url(),
    'mutation($r: ID!, $p: ID!) { pinLiveProduct(roomId: $r, productId: $p) { pin { product { id } } } }',
    { r: roomId, p: productId },
    staff,
  );
  expect(pinned.errors).toBeUndefined();
  for (const v of [onFirst, onSecond]) {
    const pin = await seen(v, (e) => e.__typename === 'LivePinChange', 'the pin');
    expect(pin.pin.product).toEqual({
      id: productId,
      name: expect.stringContaining('直播爆款'),
      price: { amount: 3990, currency: 'CNY' },
      inStock: true,
    });
  }

  const liked = await gql(url(), 'mutation($r: ID!) { likeLiveRoom(roomId: $r, count: 7) { total } }', { r: roomId }, carol.headers);
  expect(liked.data!.likeLiveRoom.total).toBe(7);
  await gql(url(), 'mutation($r: ID!) { likeLiveRoom(roomId: $r, count: 5) { total } }', { r: roomId }, alice.headers);
  for (const v of [onFirst, onSecond]) await seen(v, (e) => e.__typename === 'LiveLikes' && e.total === 12, 'the like total 12');
  // Two viewers, one on each replica: each replica counts both from the presence reports.
  for (const v of [onFirst, onSecond]) await seen(v, (e) => e.__typename === 'LiveViewers' && e.count === 2, 'two viewers');
  const room = await gql(url(), 'query($id: ID!) { liveRoom(id: $id) { likes watching pinned { product { id } } } }', { id: roomId });
  expect(room.data!.liveRoom).toEqual({ likes: 12, watching: 2, pinned: { product: { id: productId } } });

  const removed = await gql(
    url(),
    'mutation($id: ID!) { removeLiveComment(id: $id, reason: "广告") { commentId } }',
    { id: commentId },
    staff,
  );
  expect(removed.data!.removeLiveComment.commentId).toBe(commentId);
  for (const v of [onFirst, onSecond])
    await seen(v, (e) => e.__typename === 'LiveCommentRemoved' && e.commentId === commentId, 'the removal');
  expect(await comments(roomId)).toEqual([]);

  await gql(url(), 'mutation($id: ID!) { endLiveRoom(id: $id) { status } }', { id: roomId }, staff);
  for (const v of [onFirst, onSecond])
    await seen(v, (e) => e.__typename === 'LiveRoomChange' && e.room.status === 'ENDED', 'the room ending');
  expect(onFirst.errors).toEqual([]);
  // The comment arrived before the pin, the pin before the removal: one room's feed keeps its order.
  const order = onFirst.events.map((e) => e.__typename).filter((t) => t !== 'LiveViewers' && t !== 'LiveLikes');
  expect(order).toEqual(['LiveComment', 'LivePinChange', 'LiveCommentRemoved', 'LiveRoomChange']);
});

test('bad comments, like floods and bad subscriptions get their codes and write nothing', async () => {
  const { roomId } = await liveRoom();
  const dave = await signUp(url());

  expect(code(await gql(url(), COMMENT, { r: roomId, b: '好' }))).toBe('UNAUTHENTICATED');
  expect(code(await gql(url(), COMMENT, { r: roomId, b: 'x'.repeat(201) }, dave.headers))).toBe('BAD_USER_INPUT');
  const words = await gql(
    url(),
    'mutation { setLiveBannedWords(words: ["微信", "加V"], expectedVersion: 0) { words version } }',
    {},
    staff,
  );
  const banned = await gql(url(), COMMENT, { r: roomId, b: '加我微 信领券' }, dave.headers);
  // Another test file may have saved the list first: then this save is a stale one.
  expect(words.errors ? code(words) : words.data!.setLiveBannedWords.version).toEqual(words.errors ? 'CONFLICT' : 1);
  if (!words.errors) expect(code(banned)).toBe('BAD_USER_INPUT');
  expect(code(await gql(url(), 'mutation { setLiveBannedWords(words: [], expectedVersion: 0) { version } }', {}, dave.headers))).toBe(
    'FORBIDDEN',
  );

  expect((await gql(url(), COMMENT, { r: roomId, b: '第一条' }, dave.headers)).errors).toBeUndefined();
  const again = await gql(url(), COMMENT, { r: roomId, b: '第二条' }, dave.headers);
  // Unless the 3-second slot turned between the two calls, the second is refused.
  if (again.errors) expect(again.errors[0]!.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: expect.any(Number) });
  expect((await comments(roomId)).map((e: { node: { body: string } }) => e.node.body)).toEqual(
    again.errors ? ['第一条'] : ['第二条', '第一条'],
  );

  const flood = await gql(url(), 'mutation($r: ID!) { likeLiveRoom(roomId: $r, count: 51) { total } }', { r: roomId }, dave.headers);
  expect(code(flood)).toBe('BAD_USER_INPUT');
  let limited = null;
  for (let i = 0; i < 7 && !limited; i++) {
    const r = await gql(url(), 'mutation($r: ID!) { likeLiveRoom(roomId: $r, count: 50) { total } }', { r: roomId }, dave.headers);
    if (r.errors) limited = r;
  }
  expect(code(limited!)).toBe('RATE_LIMITED');

  // Subscriptions: none without a token, a bad token closes the connection, an unknown room is NOT_FOUND.
  const anonymous = watch(client(stack.gateway), roomId);
  await anonymous.done;
  expect(JSON.stringify(anonymous.errors)).toContain('UNAUTHENTICATED');
  const forged = watch(client(stack.gateway, 'not-a-token'), roomId);
  await forged.done;
  expect(JSON.stringify(forged.errors)).toMatch(/4403|Forbidden/);
  const unknown = watch(client(stack.gateway, dave.token), '0123456789abcdef01234567');
  await unknown.done;
  expect(JSON.stringify(unknown.errors)).toContain('NOT_FOUND');
  const query = watch(client(stack.gateway, dave.token), roomId, 'query { liveRooms { edges { node { id } } } }');
  await query.done;
  expect(JSON.stringify(query.errors)).toContain('Only subscriptions');

  // Over HTTP a subscription is refused with a clear error (it is served over WebSocket only).
  const overHttp = await gql(url(), 'subscription($r: ID!) { liveRoomFeed(roomId: $r) { __typename } }', { r: roomId }, dave.headers);
  expect(overHttp.errors?.[0]).toMatchObject({ message: expect.stringContaining('WebSocket'), extensions: { code: 'BAD_USER_INPUT' } });

  // A comment on a room that is not live is CONFLICT and written nowhere.
  await gql(url(), 'mutation($id: ID!) { endLiveRoom(id: $id) { status } }', { id: roomId }, staff);
  const late = await gql(url(), COMMENT, { r: roomId, b: '还在吗' }, (await signUp(url())).headers);
  expect(code(late)).toBe('CONFLICT');
  expect(await comments(roomId)).toHaveLength(again.errors ? 1 : 2);
});
