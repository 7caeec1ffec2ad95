import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';

let nats: InfraProcess;
/** Two replicas of community on one database and one NATS, as in production. */
const replicas: RunningCommunity[] = [];

beforeAll(async () => {
  nats = await privateNats();
  const env = serviceEnv('community', nats.url);
  for (let i = 0; i < 2; i++) replicas.push(await start(loadServiceConfig(env), { sweepers: false }));
}, 60_000);
afterAll(async () => {
  await replicas[0]?.db.dropDatabase();
  for (const r of replicas) await r.stop();
  await nats.stop();
});

const A = () => replicas[0]!;
const newId = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown>, viewer: ReturnType<typeof staff> | null, r = A()) =>
  gql(r.url, query, variables, asGateway('community', viewer));
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const reason = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.reason;

async function newGroup(config: Record<string, unknown>): Promise<string> {
  const res = await call('mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }', { i: { name: '测试群' } }, staff());
  const id = res.data!.createGroup.id as string;
  const conf = await call(
    'mutation($id: ID!, $i: ConfigureGroupInput!) { configureGroup(id: $id, input: $i) { id } }',
    { id, i: config },
    staff(),
  );
  expect(conf.errors).toBeUndefined();
  return id;
}
const JOIN = 'mutation($g: ID!) { joinGroup(groupId: $g) { id memberCount } }';
const LEAVE = 'mutation($g: ID!) { leaveGroup(groupId: $g) { id } }';
const rows = (groupId: string) => A().db.collection('group_memberships').countDocuments({ groupId });

describe('capacity', () => {
  test('100 concurrent joins to a capacity-50 group admit exactly 50; the rest CONFLICT FULL', async () => {
    const g = await newGroup({ type: 'ACTIVITY', capacity: 50, rules: '友善交流' });
    const members = Array.from({ length: 100 }, newId);
    const results = await Promise.all(members.map((m, i) => call(JOIN, { g }, customer(m), replicas[i % 2])));
    expect(results.filter((r) => !r.errors)).toHaveLength(50);
    expect(results.filter((r) => code(r) === 'CONFLICT' && reason(r) === 'FULL')).toHaveLength(50);
    expect(await rows(g)).toBe(50);
    const joined = await A()
      .db.collection('group_moves')
      .countDocuments({ accountId: { $regex: `^${g}:` }, op: 'JOINED' });
    expect(joined).toBe(50);
  }, 120_000);

  test('leaving frees the seat, and the next member reuses it', async () => {
    const g = await newGroup({ capacity: 1 });
    const [a, b] = [newId(), newId()];
    expect((await call(JOIN, { g }, customer(a))).errors).toBeUndefined();
    expect(reason(await call(JOIN, { g }, customer(b)))).toBe('FULL');
    expect((await call(LEAVE, { g }, customer(a))).errors).toBeUndefined();
    expect(reason(await call(LEAVE, { g }, customer(a)))).toBe('NOT_MEMBER');
    expect((await call(JOIN, { g }, customer(b))).errors).toBeUndefined();
    expect(await rows(g)).toBe(1);
  });

  test('a join that crashed holding a seat gets it back from the sweep, only once stale; a decided join keeps its seat', async () => {
    const g = await newGroup({ capacity: 2 });
    const [crashed, member, next, last] = [newId(), newId(), newId(), newId()];
    expect((await call(JOIN, { g }, customer(member))).errors).toBeUndefined();
    // What a crash between taking seat 2 and the move append leaves behind: the hold and the held seat.
    const ticket = randomUUID();
    const at = new Date();
    await A()
      .db.collection('group_seat_holds')
      .insertOne({ _id: ticket as never, groupId: g, memberId: crashed, at });
    await A()
      .db.collection('group_seats')
      .insertOne({ _id: `${g}:seat:2:1` as never, accountId: `${g}:seat:2`, seq: 1, holder: crashed, ticket, at });
    expect(reason(await call(JOIN, { g }, customer(next)))).toBe('FULL');
    // Not stale yet: the sweep leaves a join that may still be running alone.
    expect((await A().sweep(at)).groups).toMatchObject({ seatHoldsSwept: 0, seatsFreed: 0 });
    const later = new Date(at.getTime() + 3 * 60_000);
    expect((await replicas[1]!.sweep(later)).groups).toMatchObject({ seatHoldsSwept: 1, seatsFreed: 1 });
    expect(await A().db.collection('group_seat_holds').countDocuments({ groupId: g })).toBe(0);
    expect((await call(JOIN, { g }, customer(next))).errors).toBeUndefined();
    expect(reason(await call(JOIN, { g }, customer(last)))).toBe('FULL');
    // Joins that completed left no hold behind, and a second sweep frees nothing.
    expect((await A().sweep(new Date(later.getTime() + 3 * 60_000))).groups).toMatchObject({ seatsFreed: 0 });
    expect(await rows(g)).toBe(2);
  });
});

describe('policies and input', () => {
  test('rule and invite-only groups refuse with FORBIDDEN and write nothing; bad settings are BAD_USER_INPUT', async () => {
    const vip = await newGroup({ type: 'VIP', joinPolicy: 'BY_TIER', minTier: 'GOLD' });
    const invite = await newGroup({ joinPolicy: 'INVITE_ONLY' });
    const m = newId();
    expect(code(await call(JOIN, { g: vip }, customer(m)))).toBe('FORBIDDEN');
    expect(code(await call(JOIN, { g: invite }, customer(m)))).toBe('FORBIDDEN');
    expect(await rows(vip)).toBe(0);
    expect(code(await call(JOIN, { g: invite }, null))).toBe('UNAUTHENTICATED');
    const conf = 'mutation($id: ID!, $i: ConfigureGroupInput!) { configureGroup(id: $id, input: $i) { id } }';
    expect(code(await call(conf, { id: vip, i: { joinPolicy: 'BY_TIER', minTier: 'GOLDEN' } }, staff()))).toBe('BAD_USER_INPUT');
    expect(code(await call(conf, { id: vip, i: { capacity: 0 } }, staff()))).toBe('BAD_USER_INPUT');
    expect(code(await call(conf, { id: vip, i: { capacity: 5 } }, customer(m)))).toBe('FORBIDDEN');
    expect(code(await call(JOIN, { g: newId() }, customer(m)))).toBe('NOT_FOUND');
  });
});

describe('rule moves from membership events', () => {
  test('a segment change moves a member in exactly once with two replicas; a redelivery changes nothing; autoLeave moves out', async () => {
    const g = await newGroup({ joinPolicy: 'BY_SEGMENT', segments: ['IMPORTANT_VALUE'], autoLeave: true });
    const m = newId();
    const id = randomUUID();
    const data = {
      memberId: m,
      from: null,
      to: 'IMPORTANT_VALUE' as const,
      recencyDays: 1,
      frequency: 3,
      monetary: 100,
      changedAt: new Date().toISOString(),
    };
    // Both replicas handle the same event at once (as after a redelivery to the other one).
    const env = {
      id,
      type: 'membership.segment.changed' as const,
      version: 1,
      occurredAt: data.changedAt,
      source: 'membership' as const,
      data,
    };
    await Promise.all(replicas.map((r) => r.modules.groups.groups.learnSegment(env)));
    const moves = () =>
      A()
        .db.collection('group_moves')
        .find({ accountId: `${g}:${m}` })
        .toArray();
    expect((await moves()).map((e) => e.op)).toEqual(['JOINED']);
    await replicas[1]!.modules.groups.groups.learnSegment(env);
    await A().bus.publish('membership.segment.changed', data, { id });
    // An older change arriving late is ignored.
    await A().bus.publish('membership.segment.changed', { ...data, to: 'DORMANT', changedAt: new Date(Date.now() - 60_000).toISOString() });
    const later = { ...data, to: 'DORMANT' as const, changedAt: new Date(Date.now() + 1000).toISOString() };
    await A().bus.publish('membership.segment.changed', later);
    await eventually(async () => (await moves()).length === 2);
    expect((await moves()).map((e) => e.op)).toEqual(['JOINED', 'LEFT']);
    expect(await rows(g)).toBe(0);
    await Promise.all(replicas.map((r) => r.relay!.flush()));
    const sent = await A().db.collection('outbox_sent').countDocuments({});
    expect(sent).toBeGreaterThanOrEqual(2);
  }, 30_000);
});

describe('operators, announcements and polls', () => {
  test('the operator pins and runs a poll; members vote once, concurrently counted once each', async () => {
    const g = await newGroup({});
    const op = newId();
    const members = Array.from({ length: 8 }, newId);
    const outsider = newId();
    for (const m of members) expect((await call(JOIN, { g }, customer(m))).errors).toBeUndefined();
    const PIN = 'mutation($g: ID!, $b: String!) { pinGroupAnnouncement(groupId: $g, body: $b) { announcement { body } } }';
    expect(code(await call(PIN, { g, b: '欢迎' }, customer(op)))).toBe('FORBIDDEN');
    const assign = await call(
      'mutation($g: ID!, $m: ID!) { assignGroupOperator(groupId: $g, memberId: $m) { operatorIds } }',
      { g, m: op },
      staff(),
    );
    expect(assign.data?.assignGroupOperator.operatorIds).toEqual([op]);
    expect((await call(PIN, { g, b: '每周五晚8点直播' }, customer(op))).data?.pinGroupAnnouncement.announcement.body).toBe(
      '每周五晚8点直播',
    );

    const CREATE = 'mutation($i: CreateGroupPollInput!) { createGroupPoll(input: $i) { id options { index votes } } }';
    const closesAt = new Date(Date.now() + 3_600_000).toISOString();
    expect(code(await call(CREATE, { i: { groupId: g, question: '?', options: ['a'], closesAt } }, customer(op)))).toBe('BAD_USER_INPUT');
    expect(
      code(await call(CREATE, { i: { groupId: g, question: '?', options: ['a', 'b'], closesAt: '2000-01-01T00:00:00Z' } }, customer(op))),
    ).toBe('BAD_USER_INPUT');
    const poll = await call(
      CREATE,
      { i: { groupId: g, question: '下次直播主题?', options: ['护肤', '彩妆', '香氛'], closesAt } },
      customer(op),
    );
    expect(poll.errors).toBeUndefined();
    const pollId = poll.data!.createGroupPoll.id as string;

    const VOTE = 'mutation($p: ID!, $o: Int!) { voteInGroupPoll(pollId: $p, option: $o) { id } }';
    // Each member votes twice at once, on both replicas: one counts.
    const votes = await Promise.all(
      members.flatMap((m, i) => [0, 1].map((k) => call(VOTE, { p: pollId, o: i % 3 }, customer(m), replicas[k]))),
    );
    expect(votes.filter((r) => !r.errors)).toHaveLength(8);
    expect(votes.filter((r) => reason(r) === 'ALREADY_VOTED')).toHaveLength(8);
    expect(code(await call(VOTE, { p: pollId, o: 0 }, customer(outsider)))).toBe('FORBIDDEN');
    expect(code(await call(VOTE, { p: pollId, o: 7 }, customer(members[0]!)))).toBe('BAD_USER_INPUT');

    const READ = 'query($p: ID!) { groupPoll(id: $p) { question closed options { text votes } } }';
    expect(code(await call(READ, { p: pollId }, customer(outsider)))).toBe('FORBIDDEN');
    const read = await call(READ, { p: pollId }, customer(members[0]!));
    expect(read.data?.groupPoll.options.map((o: { votes: number }) => o.votes)).toEqual([3, 3, 2]);
  }, 60_000);
});

describe('community.group.membership', () => {
  test('answers whether a member is in a group now: joined yes, left or unknown group no', async () => {
    const g = await newGroup({});
    const m = newId();
    const ask = (groupId: string, r = A()) => r.bus.request('community.group.membership', { groupId, memberId: m });
    expect(await ask(g)).toEqual({ member: false });
    expect((await call(JOIN, { g }, customer(m))).errors).toBeUndefined();
    expect(await ask(g, replicas[1])).toEqual({ member: true });
    expect((await call(LEAVE, { g }, customer(m))).errors).toBeUndefined();
    expect(await ask(g)).toEqual({ member: false });
    expect(await ask(newId())).toEqual({ member: false });
  });
});
