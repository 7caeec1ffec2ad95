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
