// Group rhythms (社群节奏) through the community subgraph against the real FerretDB and NATS, with a
// moved clock and sweeps driven by hand (two at once race for each occurrence's claim).
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';
import { localClock } from '@flywheel/service-kit';
import { dueOccurrence } from '../rhythm';

let nats: InfraProcess;
let svc: RunningCommunity;
let clock = new Date('2026-03-02T00:00:00Z'); // Monday 08:00 in Asia/Shanghai

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)), { sweepers: false, now: () => clock });
}, 60_000);
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown>, viewer: ReturnType<typeof staff> | null) =>
  gql(svc.url, query, variables, asGateway('community', viewer));
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;
const at = (iso: string) => (clock = new Date(iso));

const SCHEDULE =
  'mutation($g: ID!, $i: ScheduleGroupRhythmInput!) { scheduleGroupRhythm(groupId: $g, input: $i) { id kind weekday time timeZone scheduledBy stoppedAt } }';
const STOP = 'mutation($id: ID!) { stopGroupRhythm(id: $id) { id stoppedAt } }';
const POSTS = 'query($g: ID!) { posts(groupId: $g, first: 50) { edges { node { body author { id } } } } }';
const RHYTHMS = 'query($g: ID!) { group(id: $g) { rhythms { id kind stoppedAt } } }';

async function groupWithOperator(operator: string): Promise<string> {
  const res = await call('mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }', { i: { name: '节奏群' } }, staff());
  const id = res.data!.createGroup.id as string;
  const op = await call(
    'mutation($g: ID!, $m: ID!) { assignGroupOperator(groupId: $g, memberId: $m) { id } }',
    { g: id, m: operator },
    staff(),
  );
  expect(op.errors).toBeUndefined();
  return id;
}
const posts = async (g: string) => {
  const res = await call(POSTS, { g }, null);
  expect(res.errors).toBeUndefined();
  return (res.data!.posts.edges as { node: { body: string; author: { id: string } } }[]).map((e) => e.node);
};
const sweepTwice = () => Promise.all([svc.sweep(clock), svc.sweep(clock)]);

test('local clock and due occurrences', () => {
  expect(localClock(new Date('2026-03-02T00:00:00Z'), 'Asia/Shanghai')).toEqual({ date: '2026-03-02', time: '08:00', weekday: 1 });
  const r = { kind: 'WEEKLY' as const, weekday: 2, time: '20:00', timeZone: 'Asia/Shanghai', createdAt: new Date('2026-03-02T00:00:00Z') };
  expect(dueOccurrence(r, new Date('2026-03-03T11:59:00Z'))).toBeNull();
  expect(dueOccurrence(r, new Date('2026-03-03T12:00:00Z'))).toBe('2026-03-03');
  expect(dueOccurrence(r, new Date('2026-03-04T12:00:00Z'))).toBeNull();
  // Scheduled after today's time: today's occurrence is not owed.
  expect(dueOccurrence({ ...r, kind: 'DAILY', time: '07:00' }, new Date('2026-03-02T01:00:00Z'))).toBeNull();
});

test('the sweep posts each occurrence once as the operator, racing sweeps included; stopping ends it', async () => {
  at('2026-03-02T00:00:00Z');
  const operator = oid();
  const g = await groupWithOperator(operator);
  const daily = await call(
    SCHEDULE,
    { g, i: { title: '早安打卡', body: '今天也要好好护肤', kind: 'DAILY', time: '09:00' } },
    customer(operator),
  );
  expect(daily.errors).toBeUndefined();
  expect(daily.data!.scheduleGroupRhythm).toMatchObject({
    kind: 'DAILY',
    weekday: null,
    timeZone: 'Asia/Shanghai',
    scheduledBy: operator,
    stoppedAt: null,
  });
  const weekly = await call(
    SCHEDULE,
    { g, i: { title: '周二直播预告', body: '晚上八点见', kind: 'WEEKLY', weekday: 2, time: '20:00' } },
    staff(),
  );
  expect(weekly.errors).toBeUndefined();

  await sweepTwice(); // 08:00: nothing due yet
  expect(await posts(g)).toHaveLength(0);

  at('2026-03-02T01:05:00Z'); // Monday 09:05
  await sweepTwice();
  await sweepTwice();
  const monday = await posts(g);
  expect(monday).toEqual([{ body: '早安打卡\n今天也要好好护肤', author: { id: operator } }]);

  at('2026-03-03T12:30:00Z'); // Tuesday 20:30: the daily and the weekly
  await sweepTwice();
  expect((await posts(g)).map((p) => p.body.split('\n')[0]).sort()).toEqual(['周二直播预告', '早安打卡', '早安打卡']);
  expect(await svc.db.collection('group_rhythm_runs').countDocuments({ rhythmId: daily.data!.scheduleGroupRhythm.id })).toBe(2);

  const stopped = await call(STOP, { id: daily.data!.scheduleGroupRhythm.id }, customer(operator));
  expect(stopped.data!.stopGroupRhythm.stoppedAt).toBe(clock.toISOString());
  expect(code(await call(STOP, { id: daily.data!.scheduleGroupRhythm.id }, staff()))).toBe('CONFLICT');
  at('2026-03-04T02:00:00Z'); // Wednesday 10:00
  await sweepTwice();
  expect(await posts(g)).toHaveLength(3);

  const listed = await call(RHYTHMS, { g }, null);
  expect(listed.data!.group.rhythms).toEqual([
    { id: daily.data!.scheduleGroupRhythm.id, kind: 'DAILY', stoppedAt: '2026-03-03T12:30:00.000Z' },
    { id: weekly.data!.scheduleGroupRhythm.id, kind: 'WEEKLY', stoppedAt: null },
  ]);
}, 60_000);

test('only staff and the operator schedule or stop; bad input is BAD_USER_INPUT', async () => {
  const operator = oid();
  const g = await groupWithOperator(operator);
  const input = { title: '晚安', body: '早点休息', kind: 'DAILY', time: '22:00' };
  expect(code(await call(SCHEDULE, { g, i: input }, customer(oid())))).toBe('FORBIDDEN');
  expect(code(await call(SCHEDULE, { g, i: { ...input, kind: 'WEEKLY' } }, customer(operator)))).toBe('BAD_USER_INPUT');
  expect(code(await call(SCHEDULE, { g, i: { ...input, weekday: 3 } }, customer(operator)))).toBe('BAD_USER_INPUT');
  expect(code(await call(SCHEDULE, { g, i: { ...input, time: '24:00' } }, customer(operator)))).toBe('BAD_USER_INPUT');
  expect(code(await call(SCHEDULE, { g, i: { ...input, timeZone: 'Mars/Olympus' } }, customer(operator)))).toBe('BAD_USER_INPUT');
  const ok = await call(SCHEDULE, { g, i: input }, customer(operator));
  expect(code(await call(STOP, { id: ok.data!.scheduleGroupRhythm.id }, customer(oid())))).toBe('FORBIDDEN');
});
