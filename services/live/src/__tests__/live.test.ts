import { connect, StringCodec } from 'nats';
import { asGateway, customer, recordIdReads, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { streamName } from '@flywheel/events';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import type { LiveService } from '../service';

let nats: InfraProcess;
let svc: RunningService & { service: LiveService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('live', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const asStaff = () => asGateway('live', staff());
const anon = () => asGateway('live', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);

const SCHEDULE = `mutation($input: ScheduleLiveRoomInput!) {
  scheduleLiveRoom(input: $input) { id title description hostName status scheduledAt products { id } }
}`;
const inAnHour = () => new Date(Date.now() + 3600_000).toISOString();
const input = (over: Record<string, unknown> = {}) => ({
  title: '双十一预热专场',
  description: '主播带你逛新品',
  hostName: '小林',
  scheduledAt: inAnHour(),
  productIds: ['p1', 'p2'],
  ...over,
});

async function schedule(over: Record<string, unknown> = {}): Promise<string> {
  const res = await call(SCHEDULE, { input: input(over) }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.scheduleLiveRoom.id;
}

describe('scheduling a live room', () => {
  test('staff schedule a room: SCHEDULED, with product stubs', async () => {
    const scheduledAt = inAnHour();
    const res = await call(SCHEDULE, { input: input({ scheduledAt }) }, asStaff());
    expect(res.errors).toBeUndefined();
    expect(res.data?.scheduleLiveRoom).toMatchObject({
      title: '双十一预热专场',
      hostName: '小林',
      status: 'SCHEDULED',
      scheduledAt,
      products: [{ id: 'p1' }, { id: 'p2' }],
    });
  });

  test('a customer is FORBIDDEN and an anonymous visitor UNAUTHENTICATED; nothing is written', async () => {
    const before = await svc.db.collection('live_rooms').countDocuments();
    expect((await call(SCHEDULE, { input: input() }, asGateway('live', customer('m1')))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(SCHEDULE, { input: input() }, anon())).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await svc.db.collection('live_rooms').countDocuments()).toBe(before);
  });

  test('a time in the past, an empty title or too many products is BAD_USER_INPUT and writes nothing', async () => {
    const before = await svc.db.collection('live_rooms').countDocuments();
    const bad = [
      { scheduledAt: new Date(Date.now() - 60_000).toISOString() },
      { scheduledAt: new Date(Date.now() + 400 * 24 * 3600_000).toISOString() },
      { title: ' ' },
      { hostName: 'x'.repeat(31) },
      { productIds: Array.from({ length: 51 }, (_, i) => `p${i}`) },
    ];
    for (const over of bad) {
      const res = await call(SCHEDULE, { input: input(over) }, asStaff());
      expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    }
    expect(await svc.db.collection('live_rooms').countDocuments()).toBe(before);
  });

  test('the live.room.scheduled event reaches JetStream once, from the outbox', async () => {
    const id = await schedule();
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const stream = streamName('live');
      const env = await eventually(async () => {
        const info = await jsm.streams.info(stream);
        for (let seq = 1; seq <= info.state.last_seq; seq++) {
          const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null);
          const e = m ? JSON.parse(StringCodec().decode(m.data)) : null;
          if (e?.data?.roomId === id) return e;
        }
        return null;
      });
      const room = await svc.db.collection('live_rooms').findOne({}, { sort: { _id: -1 } });
      expect(env).toMatchObject({
        type: 'live.room.scheduled',
        source: 'live',
        version: 1,
        data: { roomId: id, scheduledAt: room!.scheduledAt.toISOString() },
      });
      // Let the pass that published it finish (and record it sent) before asking for another.
      await svc.relay!.flush();
      const before = (await jsm.streams.info(stream)).state.messages;
      expect(await svc.relay!.flush()).toBe(0);
      expect((await jsm.streams.info(stream)).state.messages).toBe(before);
    } finally {
      await nc.close();
    }
  });
});

describe('reading live rooms', () => {
  test('liveRoom by id; unknown or malformed ids are null', async () => {
    const id = await schedule({ title: '新品首发' });
    expect((await call('query($id: ID!) { liveRoom(id: $id) { id title } }', { id })).data?.liveRoom).toEqual({ id, title: '新品首发' });
    expect((await call('{ liveRoom(id: "0123456789abcdef01234567") { id } }')).data?.liveRoom).toBeNull();
    expect((await call('{ liveRoom(id: "nope") { id } }')).data?.liveRoom).toBeNull();
  });

  test('liveRooms pages newest first and filters by status', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.unshift(await schedule({ title: `房间 ${i}` }));
    const q =
      'query($after: String) { liveRooms(first: 2, after: $after, status: SCHEDULED) { edges { node { id status } } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await call(q, { after });
      expect(res.errors).toBeUndefined();
      const conn = res.data!.liveRooms;
      seen.push(...conn.edges.map((e: { node: { id: string } }) => e.node.id));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen.slice(0, 5)).toEqual(ids);
    expect(new Set(seen).size).toBe(seen.length);
    expect(seen.length).toBe(await svc.db.collection('live_rooms').countDocuments());
    const ended = await call('{ liveRooms(status: ENDED) { edges { node { id } } pageInfo { hasNextPage } } }');
    expect(ended.data?.liveRooms).toEqual({ edges: [], pageInfo: { hasNextPage: false } });
  });
});

describe('room operators: staff, or the host (主播) assigned to the room', () => {
  const [HOST_A, HOST_B] = ['0123456789abcdef0123456a', '0123456789abcdef0123456b'];
  const host = (id: string) => asGateway('live', { id, roles: ['HOST'], scopes: [] });
  const member = () => asGateway('live', customer('m1'));
  const START = 'mutation($id: ID!) { startLiveRoom(id: $id) { id status } }';
  const END = 'mutation($id: ID!) { endLiveRoom(id: $id) { id status } }';
  const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
  const statusOf = async (id: string, q: string, headers: Record<string, string>) => {
    const res = await call(q, { id }, headers);
    return res.errors ? code(res) : Object.values(res.data!)[0].status;
  };

  test("a host starts and ends their own room; not another host's, nor one without a host; a customer never; staff any", async () => {
    const mine = await schedule({ hostAccountId: HOST_A.toUpperCase() });
    const theirs = await schedule({ hostAccountId: HOST_B });
    const unassigned = await schedule();
    expect(await statusOf(theirs, START, host(HOST_A))).toBe('FORBIDDEN');
    expect(await statusOf(unassigned, START, host(HOST_A))).toBe('FORBIDDEN');
    expect(await statusOf(mine, START, member())).toBe('FORBIDDEN');
    expect(await statusOf('0123456789abcdef01234567', START, member())).toBe('FORBIDDEN');
    expect(await statusOf(mine, START, anon())).toBe('UNAUTHENTICATED');
    expect(await svc.db.collection('live_room_transitions').countDocuments({ accountId: { $in: [mine, theirs, unassigned] } })).toBe(0);

    expect(await statusOf(mine, START, host(HOST_A))).toBe('LIVE');
    expect(await statusOf(mine, END, host(HOST_B))).toBe('FORBIDDEN');
    expect(await statusOf(mine, END, member())).toBe('FORBIDDEN');
    expect(await statusOf(mine, END, host(HOST_A))).toBe('ENDED');
    const by = await svc.db.collection('live_room_transitions').find({ accountId: mine }).sort({ seq: 1 }).toArray();
    expect(by.map((e) => [e.status, e.by])).toEqual([
      ['LIVE', HOST_A],
      ['ENDED', HOST_A],
    ]);
    // Staff operate every room, assigned or not.
    expect(await statusOf(theirs, START, asStaff())).toBe('LIVE');
    expect(await statusOf(unassigned, START, asStaff())).toBe('LIVE');
    expect(await statusOf(theirs, END, asStaff())).toBe('ENDED');
  });

  test('hostAccountId: set by staff only, an id; shown to staff and that host, null to anyone else', async () => {
    const bad = await call(SCHEDULE, { input: input({ hostAccountId: 'nope' }) }, asStaff());
    expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'hostAccountId' });
    expect(code(await call(SCHEDULE, { input: input({ hostAccountId: HOST_A }) }, host(HOST_A)))).toBe('FORBIDDEN');
    const id = await schedule({ hostAccountId: HOST_B });
    const q = 'query($id: ID!) { liveRoom(id: $id) { hostAccountId } }';
    const seen = async (headers: Record<string, string>) => (await call(q, { id }, headers)).data?.liveRoom.hostAccountId;
    expect(await seen(asStaff())).toBe(HOST_B);
    expect(await seen(host(HOST_B))).toBe(HOST_B);
    for (const other of [host(HOST_A), member(), anon()]) expect(await seen(other)).toBeNull();
  });
});

describe('federation', () => {
  test('_entities resolves rooms in one batch, unknown ids as null', async () => {
    const a = await schedule();
    const b = await schedule();
    const reads = recordIdReads(svc.db, 'live_rooms');
    const res = await call('query($r: [_Any!]!) { _entities(representations: $r) { ... on LiveRoom { id products { id } } } }', {
      r: [a, 'nope', b, '0123456789abcdef01234567'].map((id) => ({ __typename: 'LiveRoom', id })),
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e: { id: string } | null) => e?.id ?? null)).toEqual([a, null, b, null]);
    // One batch: each well-formed id read once, by id ('nope' is never asked).
    expect(reads.stop()).toEqual([a, b, '0123456789abcdef01234567'].sort());
  });
});
