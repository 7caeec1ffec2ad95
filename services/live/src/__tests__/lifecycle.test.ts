import { connect, StringCodec } from 'nats';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { NOTIFICATIONS_STREAM, streamName } from '@flywheel/events';
import { loadServiceConfig } from '../config';
import { start, type RunningLive } from '../main';
import type { TestChannel } from '../reminders/channel';

let nats: InfraProcess;
/** Two replicas of live on one database and one NATS, as in production. */
const replicas: RunningLive[] = [];

beforeAll(async () => {
  nats = await privateNats();
  const env = serviceEnv('live', nats.url);
  for (let i = 0; i < 2; i++) replicas.push(await start(loadServiceConfig(env), { sweepers: false }));
});
afterAll(async () => {
  await replicas[0]?.db.dropDatabase();
  for (const r of replicas) await r.stop();
  await nats.stop();
});

const A = () => replicas[0]!;
const B = () => replicas[1]!;
const call = (r: RunningLive, query: string, variables: Record<string, unknown> = {}, headers = asGateway('live', staff())) =>
  gql(r.url, query, variables, headers);
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const field = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.field;

const ROOM = 'id status startedAt endedAt replayUrl highlights { offsetSeconds title product { id } }';
const SCHEDULE = `mutation($input: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $input) { id } }`;
const START = `mutation($id: ID!) { startLiveRoom(id: $id) { ${ROOM} } }`;
const END = `mutation($id: ID!) { endLiveRoom(id: $id) { ${ROOM} } }`;
const REPLAY = `mutation($input: PublishLiveReplayInput!) { publishLiveReplay(input: $input) { ${ROOM} } }`;
const SUBSCRIBE = `mutation($roomId: ID!) { subscribeLiveRoomReminder(roomId: $roomId) { id reminderSubscribed } }`;
const UNSUBSCRIBE = `mutation($roomId: ID!) { unsubscribeLiveRoomReminder(roomId: $roomId) { id reminderSubscribed } }`;

async function schedule(scheduledAt: Date, title = '新品首发'): Promise<string> {
  const res = await call(A(), SCHEDULE, { input: { title, hostName: '小林', scheduledAt: scheduledAt.toISOString() } });
  expect(res.errors).toBeUndefined();
  return res.data!.scheduleLiveRoom.id;
}

/** Every event about a room on a stream (live's own unless named), in stream order. */
async function eventsOf(
  roomId: string,
  stream = streamName('live'),
): Promise<{ id: string; type: string; data: Record<string, unknown> }[]> {
  const nc = await connect({ servers: nats.url });
  try {
    const jsm = await nc.jetstreamManager();
    const info = await jsm.streams.info(stream);
    const out = [];
    for (let seq = info.state.first_seq; seq <= info.state.last_seq; seq++) {
      const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
      const e = m ? JSON.parse(StringCodec().decode(m.data)) : null;
      if (e?.data?.roomId === roomId) out.push(e);
    }
    return out;
  } finally {
    await nc.close();
  }
}

describe('room lifecycle', () => {
  test('SCHEDULED → LIVE → ENDED → REPLAY, each step an entry of the room ledger with its event', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    const live = await call(A(), START, { id });
    expect(live.errors).toBeUndefined();
    expect(live.data!.startLiveRoom).toMatchObject({ id, status: 'LIVE', endedAt: null, replayUrl: null, highlights: [] });
    expect(live.data!.startLiveRoom.startedAt).toEqual(expect.any(String));
    const ended = await call(B(), END, { id });
    expect(ended.data!.endLiveRoom).toMatchObject({ status: 'ENDED', endedAt: expect.any(String) });
    const replay = await call(A(), REPLAY, {
      input: {
        roomId: id,
        url: 'https://cdn.example.com/replay/1.m3u8',
        highlights: [
          { offsetSeconds: 600, title: '面霜试用', productId: 'p2' },
          { offsetSeconds: 30, title: '开场福利' },
        ],
      },
    });
    expect(replay.errors).toBeUndefined();
    expect(replay.data!.publishLiveReplay).toMatchObject({
      status: 'REPLAY',
      replayUrl: 'https://cdn.example.com/replay/1.m3u8',
      highlights: [
        { offsetSeconds: 30, title: '开场福利', product: null },
        { offsetSeconds: 600, title: '面霜试用', product: { id: 'p2' } },
      ],
    });
    const steps = await A().db.collection('live_room_transitions').find({ accountId: id }).sort({ seq: 1 }).toArray();
    expect(steps.map((s) => [s.seq, s.from, s.status])).toEqual([
      [1, 'SCHEDULED', 'LIVE'],
      [2, 'LIVE', 'ENDED'],
      [3, 'ENDED', 'REPLAY'],
    ]);
    const events = await eventually(async () => {
      const e = await eventsOf(id);
      return e.length === 3 ? e : null;
    });
    expect(events.map((e) => e.type)).toEqual(['live.room.scheduled', 'live.room.started', 'live.room.ended']);
    expect(events[1]!.data).toMatchObject({ roomId: id, startedAt: live.data!.startLiveRoom.startedAt });
    // Listed by its new status.
    const listed = await call(A(), '{ liveRooms(first: 50, status: REPLAY) { edges { node { id } } } }');
    expect(listed.data!.liveRooms.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(id);
  });

  test('refusals: an ended room does not start again, a scheduled one does not end, a live one has no replay; nothing is written', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    expect(code(await call(A(), END, { id }))).toBe('CONFLICT');
    expect(code(await call(A(), REPLAY, { input: { roomId: id, url: 'https://cdn.example.com/r.mp4' } }))).toBe('CONFLICT');
    await call(A(), START, { id });
    expect(code(await call(A(), REPLAY, { input: { roomId: id, url: 'https://cdn.example.com/r.mp4' } }))).toBe('CONFLICT');
    await call(A(), END, { id });
    expect(code(await call(A(), START, { id }))).toBe('CONFLICT');
    expect(code(await call(B(), START, { id }))).toBe('CONFLICT');
    // Ending again is a no-op that answers the room.
    expect((await call(A(), END, { id })).data!.endLiveRoom.status).toBe('ENDED');
    expect(await A().db.collection('live_room_transitions').countDocuments({ accountId: id })).toBe(2);
    expect(code(await call(A(), START, { id: '0123456789abcdef01234567' }))).toBe('NOT_FOUND');
    expect(code(await call(A(), START, { id: 'nope' }))).toBe('NOT_FOUND');
  });

  test('bad replay input is BAD_USER_INPUT naming the field', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    await call(A(), START, { id });
    await call(A(), END, { id });
    const bad: [Record<string, unknown>, string][] = [
      [{ url: 'ftp://x/y' }, 'url'],
      [{ url: 'not a url' }, 'url'],
      [{ url: 'https://x.cn/r', highlights: [{ offsetSeconds: -1, title: 'a' }] }, 'highlights.offsetSeconds'],
      [{ url: 'https://x.cn/r', highlights: [{ offsetSeconds: 1, title: 'x'.repeat(41) }] }, 'highlights.title'],
      [{ url: 'https://x.cn/r', highlights: Array.from({ length: 51 }, (_, i) => ({ offsetSeconds: i, title: 't' })) }, 'highlights'],
    ];
    for (const [over, name] of bad) {
      const res = await call(A(), REPLAY, { input: { roomId: id, ...over } });
      expect([code(res), field(res)]).toEqual(['BAD_USER_INPUT', name]);
    }
    expect(await A().db.collection('live_room_transitions').countDocuments({ accountId: id })).toBe(2);
  });

  test('a member cannot start or end a room (FORBIDDEN), a visitor is UNAUTHENTICATED', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    expect(code(await call(A(), START, { id }, asGateway('live', customer('m1'))))).toBe('FORBIDDEN');
    expect(code(await call(A(), END, { id }, asGateway('live', customer('m1'))))).toBe('FORBIDDEN');
    expect(code(await call(A(), START, { id }, asGateway('live', null)))).toBe('UNAUTHENTICATED');
    expect(await A().db.collection('live_room_transitions').countDocuments({ accountId: id })).toBe(0);
  });

  test('concurrent starts on two replicas: one LIVE entry, one live.room.started, every caller sees it LIVE', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    const results = await Promise.all(Array.from({ length: 8 }, (_, i) => call(i % 2 ? B() : A(), START, { id })));
    for (const r of results) {
      expect(r.errors).toBeUndefined();
      expect(r.data!.startLiveRoom.status).toBe('LIVE');
    }
    expect(await A().db.collection('live_room_transitions').countDocuments({ accountId: id })).toBe(1);
    await eventually(async () => (await eventsOf(id)).some((e) => e.type === 'live.room.started'));
    await Promise.all(replicas.map((r) => r.relay!.flush()));
    expect((await eventsOf(id)).filter((e) => e.type === 'live.room.started')).toHaveLength(1);
  });
});

describe('recurring series', () => {
  const CREATE = `mutation($input: CreateLiveSeriesInput!) {
    createLiveSeries(input: $input) { id weekday time timeZone weeksAhead active upcomingRooms { id title scheduledAt status series { id } } }
  }`;

  test('every Wednesday 20:00 Asia/Shanghai: the next weeks created once by two replicas sweeping together', async () => {
    const res = await call(A(), CREATE, {
      input: { title: '周三护肤课', hostName: '品牌主理人', weekday: 3, time: '20:00', weeksAhead: 3 },
    });
    expect(res.errors).toBeUndefined();
    const s = res.data!.createLiveSeries;
    expect(s).toMatchObject({ weekday: 3, time: '20:00', timeZone: 'Asia/Shanghai', weeksAhead: 3, active: true });
    expect(s.upcomingRooms).toHaveLength(3);
    for (const r of s.upcomingRooms) {
      const at = new Date(r.scheduledAt);
      // 20:00 in Shanghai is 12:00 UTC, on the same Wednesday.
      expect([at.getUTCDay(), at.getUTCHours(), at.getUTCMinutes()]).toEqual([3, 12, 0]);
      expect(r).toMatchObject({ title: '周三护肤课', status: 'SCHEDULED', series: { id: s.id } });
    }
    // Both replicas sweep, several times, now and a week on: each occurrence exists once.
    const weekOn = new Date(Date.now() + 7 * 86_400_000);
    await Promise.all([A().sweep(), B().sweep(), A().sweep(), B().sweep()]);
    await Promise.all([A().sweep(weekOn), B().sweep(weekOn)]);
    const rooms = await A().db.collection('live_rooms').find({ seriesId: s.id }).toArray();
    const times = rooms.map((r) => r.scheduledAt.getTime());
    expect(new Set(times).size).toBe(times.length);
    expect(rooms).toHaveLength(4);
    // And one live.room.scheduled per room.
    await Promise.all(replicas.map((r) => r.relay!.flush()));
    for (const r of rooms) {
      const events = await eventually(async () => {
        const e = await eventsOf(r._id.toHexString());
        return e.length ? e : null;
      });
      expect(events.map((e) => e.type)).toEqual(['live.room.scheduled']);
    }
  });

  test('a stopped series creates no more rooms', async () => {
    const res = await call(A(), CREATE, { input: { title: '周五穿搭', hostName: '小林', weekday: 5, time: '19:30', weeksAhead: 1 } });
    const id = res.data!.createLiveSeries.id;
    const stopped = await call(A(), 'mutation($id: ID!) { stopLiveSeries(id: $id) { active } }', { id });
    expect(stopped.data!.stopLiveSeries.active).toBe(false);
    await A().sweep(new Date(Date.now() + 21 * 86_400_000));
    expect(await A().db.collection('live_rooms').countDocuments({ seriesId: id })).toBe(1);
  });

  test('bad rules are BAD_USER_INPUT naming the field; members are FORBIDDEN', async () => {
    const ok = { title: '周三', hostName: '小林', weekday: 3, time: '20:00' };
    const bad: [Record<string, unknown>, string][] = [
      [{ weekday: 0 }, 'weekday'],
      [{ weekday: 8 }, 'weekday'],
      [{ time: '24:00' }, 'time'],
      [{ time: '8pm' }, 'time'],
      [{ timeZone: 'Europe/Paris' }, 'timeZone'],
      [{ weeksAhead: 13 }, 'weeksAhead'],
      [{ title: '' }, 'title'],
    ];
    const before = await A().db.collection('live_series').countDocuments();
    for (const [over, name] of bad) {
      const res = await call(A(), CREATE, { input: { ...ok, ...over } });
      expect([code(res), field(res)]).toEqual(['BAD_USER_INPUT', name]);
    }
    expect(code(await call(A(), CREATE, { input: ok }, asGateway('live', customer('m1'))))).toBe('FORBIDDEN');
    expect(await A().db.collection('live_series').countDocuments()).toBe(before);
  });
});

describe('reminders (预约提醒)', () => {
  const channel = () => A().channel as TestChannel;
  const member = (id: string) => asGateway('live', customer(id));
  const sent = async (roomId: string) =>
    (await A().db.collection('live_reminder_notifications').find({ roomId }).toArray()).map((n) => `${n.memberId}:${n.stage}`).sort();

  test('each stage once per member with two replicas sweeping side by side; an unsubscribed member gets nothing more', async () => {
    const startsAt = new Date(Date.now() + 2 * 3600_000);
    const id = await schedule(startsAt, '周年庆直播');
    for (const m of ['m1', 'm2', 'm3']) {
      const res = await call(A(), SUBSCRIBE, { roomId: id }, member(m));
      expect(res.data!.subscribeLiveRoomReminder).toEqual({ id, reminderSubscribed: true });
    }
    // Subscribing twice is one subscription.
    await call(B(), SUBSCRIBE, { roomId: id }, member('m1'));
    const at = (minutesBefore: number) => new Date(startsAt.getTime() - minutesBefore * 60_000);
    const both = async (when: Date) => Promise.all([A().sweep(when), B().sweep(when), A().sweep(when), B().sweep(when)]);

    await both(at(90)); // too early
    expect(await sent(id)).toEqual([]);
    await both(at(59));
    expect(await sent(id)).toEqual(['m1:H1', 'm2:H1', 'm3:H1']);
    // m3 unsubscribes: no more stages for them.
    expect((await call(B(), UNSUBSCRIBE, { roomId: id }, member('m3'))).data!.unsubscribeLiveRoomReminder.reminderSubscribed).toBe(false);
    await both(at(29));
    await both(at(20));
    await both(at(4));
    await both(at(1));
    expect(await sent(id)).toEqual(['m1:H1', 'm1:M30', 'm1:M5', 'm2:H1', 'm2:M30', 'm2:M5', 'm3:H1']);
    // The host starts on both replicas at once: START goes out once per member.
    await Promise.all([call(A(), START, { id }), call(B(), START, { id })]);
    await both(new Date());
    const expected = ['m1:H1', 'm1:M30', 'm1:M5', 'm1:START', 'm2:H1', 'm2:M30', 'm2:M5', 'm2:START', 'm3:H1'];
    await eventually(async () => (await sent(id)).length === expected.length);
    expect(await sent(id)).toEqual(expected);

    // Published through the outbox and delivered by the channel exactly once each.
    const delivered = await eventually(async () => {
      const d = await channel().sent({ roomId: id });
      return d.length >= expected.length ? d : null;
    }, 15_000);
    expect(delivered.map((n) => `${n.memberId}:${n.stage}`).sort()).toEqual(expected);
    expect(delivered[0]).toMatchObject({ roomId: id, title: '周年庆直播', startsAt: startsAt.toISOString() });
    await Promise.all(replicas.map((r) => r.relay!.flush()));
    await new Promise((r) => setTimeout(r, 500));
    expect(await channel().sent({ roomId: id })).toHaveLength(expected.length);
    // In the shared NOTIFICATIONS stream, not in live's own.
    expect((await eventsOf(id, NOTIFICATIONS_STREAM)).filter((e) => e.type === 'notifications.live.reminder')).toHaveLength(
      expected.length,
    );
    expect((await eventsOf(id)).filter((e) => e.type.includes('reminder'))).toEqual([]);
  });

  test('a room that starts early: START at once, the stages not yet sent are skipped', async () => {
    const startsAt = new Date(Date.now() + 3 * 3600_000);
    const id = await schedule(startsAt);
    await call(A(), SUBSCRIBE, { roomId: id }, member('m1'));
    await call(A(), START, { id });
    await eventually(async () => (await sent(id)).length === 1);
    for (const minutes of [59, 29, 4]) await Promise.all([A().sweep(new Date(startsAt.getTime() - minutes * 60_000)), B().sweep()]);
    expect(await sent(id)).toEqual(['m1:START']);
  });

  test('who may subscribe: members only, to rooms not yet started; unknown rooms NOT_FOUND', async () => {
    const id = await schedule(new Date(Date.now() + 3600_000));
    expect(code(await call(A(), SUBSCRIBE, { roomId: id }, asGateway('live', null)))).toBe('UNAUTHENTICATED');
    expect(code(await call(A(), SUBSCRIBE, { roomId: id }, asGateway('live', staff())))).toBe('FORBIDDEN');
    expect(code(await call(A(), SUBSCRIBE, { roomId: '0123456789abcdef01234567' }, member('m1')))).toBe('NOT_FOUND');
    await call(A(), START, { id });
    expect(code(await call(A(), SUBSCRIBE, { roomId: id }, member('m1')))).toBe('CONFLICT');
    expect(await A().db.collection('live_reminder_subscriptions').countDocuments({ roomId: id })).toBe(0);
    // Read back: a member sees whether they subscribed, anyone else null.
    const other = await schedule(new Date(Date.now() + 3600_000));
    await call(A(), SUBSCRIBE, { roomId: other }, member('m9'));
    const q = 'query($id: ID!) { liveRoom(id: $id) { reminderSubscribed } }';
    expect((await call(A(), q, { id: other }, member('m9'))).data!.liveRoom.reminderSubscribed).toBe(true);
    expect((await call(A(), q, { id: other }, member('m8'))).data!.liveRoom.reminderSubscribed).toBe(false);
    expect((await call(A(), q, { id: other }, asGateway('live', null))).data!.liveRoom.reminderSubscribed).toBeNull();
  });
});
