// Live rooms through the gateway (real subgraphs, FerretDB and NATS): a host's lifecycle, a
// member's reminder (预约提醒) delivered by the test channel, a weekly series, and the refusals.
import { eventually, gql } from '@flywheel/testing';
import type { RunningLive } from '../../../services/live/src/main';
import type { TestChannel } from '../../../services/live/src/reminders/channel';
import { asStaff, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const live = () => stack.subgraphs.live as RunningLive;
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const ROOM = 'id title status scheduledAt startedAt endedAt replayUrl highlights { offsetSeconds title product { id } } reminderSubscribed';

test('schedule → a member subscribes → reminded → the host starts, ends and publishes the replay', async () => {
  const staff = asStaff();
  const member = newCustomer();
  const startsAt = new Date(Date.now() + 2 * 3600_000);
  const scheduled = await gql(
    url(),
    'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
    { i: { title: '周年庆直播', hostName: '小林', scheduledAt: startsAt.toISOString() } },
    staff,
  );
  expect(scheduled.errors).toBeUndefined();
  const id = scheduled.data!.scheduleLiveRoom.id as string;

  const sub = await gql(
    url(),
    'mutation($id: ID!) { subscribeLiveRoomReminder(roomId: $id) { id reminderSubscribed } }',
    { id },
    member.headers,
  );
  expect(sub.errors).toBeUndefined();
  expect(sub.data!.subscribeLiveRoomReminder).toEqual({ id, reminderSubscribed: true });

  // A member cannot start the room; nor can a visitor.
  const START = `mutation($id: ID!) { startLiveRoom(id: $id) { ${ROOM} } }`;
  expect(code(await gql(url(), START, { id }, member.headers))).toBe('FORBIDDEN');
  expect(code(await gql(url(), START, { id }))).toBe('UNAUTHENTICATED');

  // The sweeper (driven with a clock) sends the hour-before reminder; the test channel delivers it.
  await live().sweep(new Date(startsAt.getTime() - 59 * 60_000));
  const channel = live().channel as TestChannel;
  const first = await eventually(async () => {
    const d = await channel.sent({ roomId: id, memberId: member.id });
    return d.length ? d : null;
  }, 15_000);
  expect(first.map((n) => n.stage)).toEqual(['H1']);

  const started = await gql(url(), START, { id }, staff);
  expect(started.errors).toBeUndefined();
  expect(started.data!.startLiveRoom).toMatchObject({ id, status: 'LIVE', endedAt: null });
  await eventually(async () => (await channel.sent({ roomId: id, memberId: member.id })).length === 2, 15_000);
  expect((await channel.sent({ roomId: id, memberId: member.id })).map((n) => n.stage)).toEqual(['H1', 'START']);

  const ended = await gql(url(), `mutation($id: ID!) { endLiveRoom(id: $id) { ${ROOM} } }`, { id }, staff);
  expect(ended.data!.endLiveRoom.status).toBe('ENDED');
  expect(code(await gql(url(), START, { id }, staff))).toBe('CONFLICT');
  const replay = await gql(
    url(),
    `mutation($i: PublishLiveReplayInput!) { publishLiveReplay(input: $i) { ${ROOM} } }`,
    { i: { roomId: id, url: 'https://cdn.example.com/replay.m3u8', highlights: [{ offsetSeconds: 90, title: '开场福利' }] } },
    staff,
  );
  expect(replay.errors).toBeUndefined();

  // Anyone reads the room (the home page's fields included).
  const read = await gql(url(), `query($id: ID!) { liveRoom(id: $id) { ${ROOM} hostName products { id } } }`, { id });
  expect(read.errors).toBeUndefined();
  expect(read.data!.liveRoom).toMatchObject({
    status: 'REPLAY',
    replayUrl: 'https://cdn.example.com/replay.m3u8',
    highlights: [{ offsetSeconds: 90, title: '开场福利', product: null }],
    reminderSubscribed: null,
    hostName: '小林',
    products: [],
  });
  const home = await gql(url(), '{ liveRooms(first: 5) { edges { node { id title hostName status scheduledAt products { id } } } } }');
  expect(home.errors).toBeUndefined();
});

test('a weekly series through the gateway: its rooms of the coming weeks, once', async () => {
  const res = await gql(
    url(),
    'mutation($i: CreateLiveSeriesInput!) { createLiveSeries(input: $i) { id time upcomingRooms { id scheduledAt series { id title } } } }',
    { i: { title: '每周三护肤课', hostName: '品牌主理人', weekday: 3, time: '20:00', weeksAhead: 2 } },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  const s = res.data!.createLiveSeries;
  expect(s.time).toBe('20:00');
  expect(s.upcomingRooms).toHaveLength(2);
  await live().sweep();
  const again = await gql(url(), 'query($id: ID!) { liveSeries(id: $id) { upcomingRooms { id } } }', { id: s.id });
  expect(again.data!.liveSeries.upcomingRooms.map((r: { id: string }) => r.id)).toEqual(s.upcomingRooms.map((r: { id: string }) => r.id));
  expect(code(await gql(url(), 'mutation { stopLiveSeries(id: "0123456789abcdef01234567") { id } }', {}, asStaff()))).toBe('NOT_FOUND');
});
