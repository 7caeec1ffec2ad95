// Check-in challenges through the community subgraph against the real FerretDB and NATS, with a
// moved clock. Membership is played by repliers on the private NATS (its own tests cover its side).
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { AppError } from '@flywheel/service-kit';
import type { EventEnvelope } from '@flywheel/events';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';

let nats: InfraProcess;
let svc: RunningCommunity;
let clock = new Date('2026-03-01T02:00:00Z'); // 10:00 in Asia/Shanghai
const templates = new Map<string, boolean>();
/** Membership's grants by key (idempotent, as membership is) and how often each key was asked. */
const grants = new Map<string, string>();
const asked = new Map<string, number>();
let membership: 'UP' | 'DOWN' = 'UP';
/** The loyalty program's time zone as membership answers it. */
let programZone = 'Asia/Shanghai';
const completed: EventEnvelope<'community.checkin.completed'>[] = [];

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)), { sweepers: false, now: () => clock });
  svc.bus.reply('membership.coupon.template', async ({ templateId }) => {
    if (!templates.has(templateId)) throw new AppError('NOT_FOUND', 'Coupon template not found');
    return { templateId, name: '打卡奖励券', active: templates.get(templateId)! };
  });
  svc.bus.reply('membership.program.describe', async () => {
    if (membership === 'DOWN') throw new Error('membership is down');
    return { timeZone: programZone };
  });
  svc.bus.reply('membership.coupon.grant', async (req) => {
    asked.set(req.key, (asked.get(req.key) ?? 0) + 1);
    if (membership === 'DOWN') throw new Error('membership is down');
    if (!grants.has(req.key)) grants.set(req.key, new Types.ObjectId().toHexString());
    return { couponId: grants.get(req.key)! };
  });
  await svc.bus.consume('community.checkin.completed', async (env) => {
    completed.push(env);
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});
afterEach(() => {
  membership = 'UP';
  programZone = 'Asia/Shanghai';
});

const DAY = 86_400_000;
const oid = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('community', staff(oid()));
const asMember = (id: string) => asGateway('community', customer(id));
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  gql(svc.url, query, variables, headers);
const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;
const at = (iso: string) => (clock = new Date(iso));

const PROGRESS = 'days currentStreak longestStreak lastCheckInDay completedAt rewardState rewardCouponId';
const CREATE =
  'mutation($input: CreateChallengeInput!) { createChallenge(input: $input) { id title requiredDays timeZone startsAt endsAt } }';
const JOIN = `mutation($id: ID!) { joinChallenge(challengeId: $id) { joined ${PROGRESS} } }`;
const CHECK_IN = `mutation($id: ID!) { checkInChallenge(challengeId: $id) { ${PROGRESS} } }`;
const MY_PROGRESS = `query($id: ID!, $m: ID) { challengeProgress(challengeId: $id, memberId: $m) { joined ${PROGRESS} } }`;
const BOARD =
  'query($id: ID!, $first: Int) { challengeLeaderboard(challengeId: $id, first: $first) { rank member { id } days longestStreak completedAt } }';

function template(active = true): string {
  const id = oid();
  templates.set(id, active);
  return id;
}

async function createChallenge(input: Partial<Record<string, unknown>> = {}): Promise<{ id: string; templateId: string }> {
  const templateId = template();
  const res = await call(
    CREATE,
    {
      input: {
        title: '21天护肤打卡',
        startsAt: clock.toISOString(),
        endsAt: new Date(clock.getTime() + 10 * DAY).toISOString(),
        requiredDays: 7,
        rewardTemplateId: templateId,
        ...input,
      },
    },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return { id: res.data!.createChallenge.id, templateId };
}

async function joined(challengeId: string): Promise<string> {
  const memberId = oid();
  const res = await call(JOIN, { id: challengeId }, asMember(memberId));
  expect(res.errors).toBeUndefined();
  return memberId;
}

const checkIn = (challengeId: string, memberId: string) => call(CHECK_IN, { id: challengeId }, asMember(memberId));

describe('check-in challenges', () => {
  test('a 7-day challenge completes once: a double check-in counts once, one event and one reward', async () => {
    at('2026-03-01T02:00:00Z');
    const { id } = await createChallenge();
    const memberId = await joined(id);
    const key = `community:challenge:${id}:${memberId}`;
    for (let d = 0; d < 7; d++) {
      at(new Date(Date.parse('2026-03-01T02:00:00Z') + d * DAY).toISOString());
      const both = await Promise.all([checkIn(id, memberId), checkIn(id, memberId)]);
      expect(both.map(code).sort()).toEqual(['CONFLICT', undefined]);
      const ok = both.find((r) => !r.errors)!.data!.checkInChallenge;
      expect(ok).toMatchObject({ days: d + 1, currentStreak: d + 1, longestStreak: d + 1 });
    }
    at('2026-03-07T03:00:00Z');
    const p = (await call(MY_PROGRESS, { id }, asMember(memberId))).data!.challengeProgress;
    expect(p).toMatchObject({
      joined: true,
      days: 7,
      lastCheckInDay: '2026-03-07',
      rewardState: 'GRANTED',
      rewardCouponId: grants.get(key),
    });
    expect(p.completedAt).toBe('2026-03-07T02:00:00.000Z');
    expect(asked.get(key)).toBe(1);

    // An eighth day counts, but completes nothing again.
    at('2026-03-08T02:00:00Z');
    expect((await checkIn(id, memberId)).data?.checkInChallenge.days).toBe(8);
    expect(await svc.sweep(new Date('2026-03-09T00:00:00Z'))).toMatchObject({ challenges: { pendingRewards: 0 } });
    expect(asked.get(key)).toBe(1);
    await expect(svc.db.collection('challenge_checkins').countDocuments({ challengeId: id, memberId })).resolves.toBe(8);

    const until = Date.now() + 10_000;
    while (!completed.some((e) => e.data.challengeId === id) && Date.now() < until) await new Promise((r) => setTimeout(r, 100));
    await new Promise((r) => setTimeout(r, 500));
    const mine = completed.filter((e) => e.data.challengeId === id);
    expect(mine.map((e) => e.data)).toEqual([{ challengeId: id, memberId, days: 7, completedAt: '2026-03-07T02:00:00.000Z' }]);
  });

  test('a missed day resets the streak but not the days; the day is in the challenge zone (Asia/Shanghai)', async () => {
    at('2026-04-01T02:00:00Z');
    const { id } = await createChallenge();
    const memberId = await joined(id);
    expect((await checkIn(id, memberId)).data?.checkInChallenge).toMatchObject({ days: 1, currentStreak: 1 });
    // 2026-04-01T17:00Z is already 04-02 01:00 in Shanghai: a new day.
    at('2026-04-01T17:00:00Z');
    expect((await checkIn(id, memberId)).data?.checkInChallenge).toMatchObject({ days: 2, currentStreak: 2, lastCheckInDay: '2026-04-02' });
    // 04-03 is missed.
    at('2026-04-04T02:00:00Z');
    expect((await call(MY_PROGRESS, { id }, asMember(memberId))).data?.challengeProgress).toMatchObject({
      days: 2,
      currentStreak: 0,
      longestStreak: 2,
    });
    expect((await checkIn(id, memberId)).data?.checkInChallenge).toMatchObject({
      days: 3,
      currentStreak: 1,
      longestStreak: 2,
      completedAt: null,
    });
  });

  test("the days follow the loyalty program's zone as membership says it when the challenge is created", async () => {
    at('2026-04-10T02:00:00Z'); // 04-10 10:00 in Shanghai, 04-09 22:00 in Los Angeles
    programZone = 'America/Los_Angeles';
    const res = await call(
      CREATE,
      {
        input: {
          title: '西海岸打卡',
          startsAt: clock.toISOString(),
          endsAt: new Date(clock.getTime() + 3 * DAY).toISOString(),
          requiredDays: 2,
          rewardTemplateId: template(),
        },
      },
      asStaff(),
    );
    expect(res.data?.createChallenge.timeZone).toBe('America/Los_Angeles');
    const id = res.data!.createChallenge.id as string;
    programZone = 'Asia/Shanghai'; // a later change of the program does not move a running challenge
    const memberId = await joined(id);
    expect((await checkIn(id, memberId)).data?.checkInChallenge).toMatchObject({ lastCheckInDay: '2026-04-09' });
    // Membership failing: an error, and nothing is created.
    const before = await svc.db.collection('challenges').countDocuments();
    membership = 'DOWN';
    const down = await call(
      CREATE,
      {
        input: {
          title: '打卡',
          startsAt: clock.toISOString(),
          endsAt: new Date(clock.getTime() + 3 * DAY).toISOString(),
          requiredDays: 1,
          rewardTemplateId: template(),
        },
      },
      asStaff(),
    );
    expect(down.errors).toBeDefined();
    expect(await svc.db.collection('challenges').countDocuments()).toBe(before);
  });

  test('no answer from membership leaves the reward pending; the sweep grants it with the same key, once', async () => {
    at('2026-05-01T02:00:00Z');
    const { id } = await createChallenge({ requiredDays: 1 });
    const memberId = await joined(id);
    const key = `community:challenge:${id}:${memberId}`;
    membership = 'DOWN';
    expect((await checkIn(id, memberId)).data?.checkInChallenge).toMatchObject({ days: 1, rewardState: 'PENDING', rewardCouponId: null });
    membership = 'UP';
    // Too soon: a request may still be at it.
    expect((await svc.sweep(new Date('2026-05-01T02:00:10Z'))).challenges).toMatchObject({ granted: 0 });
    expect((await svc.sweep(new Date('2026-05-01T02:05:00Z'))).challenges).toMatchObject({ granted: 1 });
    expect((await svc.sweep(new Date('2026-05-01T02:10:00Z'))).challenges).toMatchObject({ pendingRewards: 0 });
    expect(asked.get(key)).toBe(2);
    const p = (await call(MY_PROGRESS, { id, m: memberId }, asStaff())).data?.challengeProgress;
    expect(p).toMatchObject({ rewardState: 'GRANTED', rewardCouponId: grants.get(key) });
  });

  test('the leaderboard: by days, then earliest completion', async () => {
    at('2026-06-01T02:00:00Z');
    const { id } = await createChallenge({ requiredDays: 2 });
    const [a, b, c] = [await joined(id), await joined(id), await joined(id)];
    for (const m of [a, b, c]) await checkIn(id, m);
    at('2026-06-02T02:00:00Z');
    await checkIn(id, b);
    at('2026-06-02T03:00:00Z');
    await checkIn(id, a);
    const res = await call(BOARD, { id, first: 10 }, asMember(c));
    expect(res.errors).toBeUndefined();
    expect(
      res.data!.challengeLeaderboard.map((r: { member: { id: string }; days: number; rank: number }) => [r.rank, r.member.id, r.days]),
    ).toEqual([
      [1, b, 2],
      [2, a, 2],
      [3, c, 1],
    ]);
    expect((await call(BOARD, { id, first: 1 }, asMember(c))).data!.challengeLeaderboard).toHaveLength(1);
  });

  test('bad input and refusals', async () => {
    at('2026-07-01T02:00:00Z');
    const base = {
      title: '打卡',
      startsAt: clock.toISOString(),
      endsAt: new Date(clock.getTime() + 5 * DAY).toISOString(),
      requiredDays: 3,
      rewardTemplateId: template(),
    };
    const create = (input: Record<string, unknown>, headers = asStaff()) => call(CREATE, { input: { ...base, ...input } }, headers);
    expect(code(await create({}, asMember(oid())))).toBe('FORBIDDEN');
    expect(code(await create({ requiredDays: 0 }))).toBe('BAD_USER_INPUT');
    expect(code(await create({ requiredDays: 61 }))).toBe('BAD_USER_INPUT');
    expect(code(await create({ requiredDays: 7 }))).toBe('BAD_USER_INPUT'); // the window holds 5 days
    expect(code(await create({ endsAt: base.startsAt }))).toBe('BAD_USER_INPUT');
    expect(code(await create({ startsAt: 'tomorrow' }))).toBe('BAD_USER_INPUT');
    expect(code(await create({ title: ' ' }))).toBe('BAD_USER_INPUT');
    expect(code(await create({ rewardTemplateId: oid() }))).toBe('NOT_FOUND');
    expect(code(await create({ rewardTemplateId: template(false) }))).toBe('BAD_USER_INPUT');

    const { id } = await createChallenge({ startsAt: new Date(clock.getTime() + DAY).toISOString() });
    const stranger = oid();
    expect(code(await checkIn(id, stranger))).toBe('FORBIDDEN');
    expect(code(await checkIn(oid(), stranger))).toBe('NOT_FOUND');
    const memberId = await joined(id);
    expect(code(await checkIn(id, memberId))).toBe('CONFLICT'); // not started
    expect(code(await call(MY_PROGRESS, { id, m: memberId }, asMember(stranger)))).toBe('FORBIDDEN');
    expect(code(await call(BOARD, { id, first: 101 }, asMember(memberId)))).toBe('BAD_USER_INPUT');
    expect(code(await call(BOARD, { id }, asGateway('community', null)))).toBe('UNAUTHENTICATED');
    at(new Date(clock.getTime() + 12 * DAY).toISOString());
    expect(code(await checkIn(id, memberId))).toBe('CONFLICT'); // ended
    expect(code(await call(JOIN, { id }, asMember(oid())))).toBe('CONFLICT');
  });
});
