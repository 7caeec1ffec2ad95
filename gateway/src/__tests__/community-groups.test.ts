// Community group life through the gateway (real subgraphs, FerretDB and NATS): a tier reached in
// membership moves the member into the VIP group exactly once with two community replicas; an
// operator (社群运营官) runs a poll that counts each member once under concurrent double votes; and
// a 7-day check-in challenge (打卡) is completed once on a moved clock, its coupon granted once.
import { randomUUID } from 'node:crypto';
import { eventually, gql, serviceEnv } from '@flywheel/testing';
import * as community from '../../../services/community/src/main';
import { loadServiceConfig as communityConfig } from '../../../services/community/src/config';
import { asStaff, errorCode, errorReason, newCustomer, signUp, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(180_000);

/** Community's clock: the challenge test moves it a day at a time. */
let offsetMs = 0;
const DAY_MS = 86_400_000;
let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack({}, { community: () => new Date(Date.now() + offsetMs) });
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
const code = errorCode;
const reason = errorReason;

test('reaching SILVER in membership moves the member into the BY_TIER group exactly once, with two community replicas consuming', async () => {
  const second = await community.start(communityConfig(serviceEnv('community', stack.nats.url, { MONGO_DB: stack.community.db.name })), {
    sweepers: false,
  });
  try {
    // SILVER from 1 growth: the first daily sign-in (1 growth) reaches it.
    const program = await gql(
      url(),
      '{ loyaltyProgram { tiers { tier threshold benefits { discountPermille pointsMultiplierPercent freeShipping birthdayPoints } } } }',
      {},
      staff,
    );
    const tiers = program.data!.loyaltyProgram.tiers.map((t: { tier: string; threshold: number }) => ({
      ...t,
      threshold: t.tier === 'SILVER' ? 1 : t.threshold,
    }));
    expect(
      (
        await gql(
          url(),
          'mutation($i: UpdateLoyaltyProgramInput!) { updateLoyaltyProgram(input: $i) { tiers { tier threshold } } }',
          { i: { tiers } },
          staff,
        )
      ).errors,
    ).toBeUndefined();
    const created = await gql(
      url(),
      'mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }',
      { i: { name: `银卡会员群 ${randomUUID().slice(0, 4)}` } },
      staff,
    );
    const groupId = created.data!.createGroup.id as string;
    const CONFIGURE = 'mutation($id: ID!, $i: ConfigureGroupInput!) { configureGroup(id: $id, input: $i) { joinPolicy { kind minTier } } }';
    const configured = await gql(url(), CONFIGURE, { id: groupId, i: { type: 'VIP', joinPolicy: 'BY_TIER', minTier: 'SILVER' } }, staff);
    expect(configured.data!.configureGroup.joinPolicy).toEqual({ kind: 'BY_TIER', minTier: 'SILVER' });
    // The tier is an enum now: a misspelt one is refused before it reaches community.
    expect(code(await gql(url(), CONFIGURE, { id: groupId, i: { minTier: 'SLIVER' } }, staff))).toBe('BAD_USER_INPUT');

    const member = await signUp(url());
    expect(code(await gql(url(), 'mutation($g: ID!) { joinGroup(groupId: $g) { id } }', { g: groupId }, member.headers))).toBe('FORBIDDEN');
    expect((await gql(url(), 'mutation { signIn { points } }', {}, member.headers)).errors).toBeUndefined();
    const groups = await eventually(async () => {
      const r = await gql(url(), '{ me { tierStatus { tier } groups { id } } }', {}, member.headers);
      const ids = (r.data?.me.groups ?? []).map((g: { id: string }) => g.id);
      return ids.includes(groupId) ? r.data!.me : null;
    }, 20_000);
    expect(groups.tierStatus.tier).toBe('SILVER');
    // Exactly one move, one row and one joined event's worth of entries, whichever replica took it.
    const db = stack.community.db;
    expect(await db.collection('group_moves').countDocuments({ accountId: `${groupId}:${member.id}` })).toBe(1);
    expect(await db.collection('group_memberships').countDocuments({ groupId })).toBe(1);
  } finally {
    await second.stop();
  }
});

test('an operator runs a poll: members vote concurrently (each twice) and are counted once; outsiders and members moderating are refused', async () => {
  const created = await gql(
    url(),
    'mutation($i: CreateGroupInput!) { createGroup(input: $i) { id } }',
    { i: { name: `新品投票群 ${randomUUID().slice(0, 4)}` } },
    staff,
  );
  const groupId = created.data!.createGroup.id as string;
  const operator = newCustomer();
  const members = Array.from({ length: 12 }, newCustomer);
  const outsider = newCustomer();
  for (const m of [operator, ...members]) {
    expect((await gql(url(), 'mutation($g: ID!) { joinGroup(groupId: $g) { id } }', { g: groupId }, m.headers)).errors).toBeUndefined();
  }
  const POLL = 'mutation($i: CreateGroupPollInput!) { createGroupPoll(input: $i) { id options { index votes } } }';
  const poll = {
    groupId,
    question: '下一款新品选哪个口味？',
    options: ['抹茶', '可可', '原味'],
    closesAt: new Date(Date.now() + DAY_MS).toISOString(),
  };
  // Before staff appoint them, the member is not an operator: FORBIDDEN, and no poll exists.
  expect(code(await gql(url(), POLL, { i: poll }, operator.headers))).toBe('FORBIDDEN');
  const assigned = await gql(
    url(),
    'mutation($g: ID!, $m: ID!) { assignGroupOperator(groupId: $g, memberId: $m) { operatorIds } }',
    { g: groupId, m: operator.id },
    staff,
  );
  expect(assigned.data!.assignGroupOperator.operatorIds).toContain(operator.id);
  const pinned = await gql(
    url(),
    'mutation($g: ID!, $b: String!) { pinGroupAnnouncement(groupId: $g, body: $b) { announcement { body } } }',
    { g: groupId, b: '本周投票进行中' },
    operator.headers,
  );
  expect(pinned.data!.pinGroupAnnouncement.announcement.body).toBe('本周投票进行中');
  // A plain member does not moderate or run polls.
  expect(code(await gql(url(), POLL, { i: poll }, members[0]!.headers))).toBe('FORBIDDEN');
  const opened = await gql(url(), POLL, { i: poll }, operator.headers);
  expect(opened.errors).toBeUndefined();
  const pollId = opened.data!.createGroupPoll.id as string;

  const VOTE = 'mutation($p: ID!, $o: Int!) { voteInGroupPoll(pollId: $p, option: $o) { options { index votes } } }';
  const votes = await Promise.all(members.flatMap((m, i) => [0, 1].map(() => gql(url(), VOTE, { p: pollId, o: i % 3 }, m.headers))));
  expect(votes.filter((r) => !r.errors)).toHaveLength(members.length);
  expect(votes.filter((r) => code(r) === 'CONFLICT' && reason(r) === 'ALREADY_VOTED')).toHaveLength(members.length);
  expect(code(await gql(url(), VOTE, { p: pollId, o: 0 }, outsider.headers))).toBe('FORBIDDEN');
  expect(code(await gql(url(), VOTE, { p: pollId, o: 7 }, operator.headers))).toBe('BAD_USER_INPUT');

  // Results are counted from the votes at once, and outsiders cannot read them.
  const results = await gql(
    url(),
    'query($p: ID!) { groupPoll(id: $p) { closed options { index text votes } } }',
    { p: pollId },
    operator.headers,
  );
  expect(results.data!.groupPoll.closed).toBe(false);
  expect(results.data!.groupPoll.options.map((o: { votes: number }) => o.votes)).toEqual([4, 4, 4]);
  expect(code(await gql(url(), 'query($p: ID!) { groupPoll(id: $p) { id } }', { p: pollId }, outsider.headers))).toBe('FORBIDDEN');
});

test('a 7-day check-in challenge on a moved clock: once a day, completed once, the reward coupon granted once, first on the leaderboard', async () => {
  const template = await gql(
    url(),
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '打卡七天券', kind: 'FIXED', amount: 1000, threshold: 5000, validDaysAfterClaim: 30, claimable: false } },
    staff,
  );
  const templateId = template.data!.createCouponTemplate.id as string;
  const start = new Date(Date.now() + offsetMs);
  const challenge = await gql(
    url(),
    'mutation($i: CreateChallengeInput!) { createChallenge(input: $i) { id requiredDays timeZone } }',
    {
      i: {
        title: '七天早餐打卡',
        startsAt: start.toISOString(),
        endsAt: new Date(start.getTime() + 10 * DAY_MS).toISOString(),
        requiredDays: 7,
        rewardTemplateId: templateId,
      },
    },
    staff,
  );
  expect(challenge.errors).toBeUndefined();
  const challengeId = challenge.data!.createChallenge.id as string;
  const member = await signUp(url());
  const rival = await signUp(url());
  const CHECK_IN = 'mutation($c: ID!) { checkInChallenge(challengeId: $c) { days currentStreak completedAt rewardState } }';
  expect(code(await gql(url(), CHECK_IN, { c: challengeId }, member.headers))).toBe('FORBIDDEN');
  for (const m of [member, rival]) {
    expect(
      (await gql(url(), 'mutation($c: ID!) { joinChallenge(challengeId: $c) { joined } }', { c: challengeId }, m.headers)).errors,
    ).toBeUndefined();
  }
  expect((await gql(url(), CHECK_IN, { c: challengeId }, rival.headers)).errors).toBeUndefined();

  for (let day = 1; day <= 7; day++) {
    // Two taps at once on the same day: one check-in.
    const taps = await Promise.all([0, 1].map(() => gql(url(), CHECK_IN, { c: challengeId }, member.headers)));
    expect(taps.filter((r) => !r.errors)).toHaveLength(1);
    expect(taps.filter((r) => code(r) === 'CONFLICT')).toHaveLength(1);
    const progress = taps.find((r) => !r.errors)!.data!.checkInChallenge;
    expect(progress).toMatchObject({ days: day, currentStreak: day });
    expect(progress.completedAt === null).toBe(day < 7);
    offsetMs += DAY_MS;
  }
  // Completed on day 7 and never again: the coupon is granted once, through membership.
  const PROGRESS = 'query($c: ID!) { challengeProgress(challengeId: $c) { days completedAt rewardState rewardCouponId } }';
  const done = await eventually(async () => {
    const r = await gql(url(), PROGRESS, { c: challengeId }, member.headers);
    return r.data?.challengeProgress.rewardState === 'GRANTED' ? r.data.challengeProgress : null;
  }, 20_000);
  expect(done.days).toBe(7);
  expect((await gql(url(), CHECK_IN, { c: challengeId }, member.headers)).data!.checkInChallenge.days).toBe(8);
  await stack.community.sweep(new Date(Date.now() + offsetMs));
  const wallet = await gql(
    url(),
    '{ me { coupons { available coupons(first: 10) { edges { node { id template { id } } } } } } }',
    {},
    member.headers,
  );
  const granted = wallet.data!.me.coupons.coupons.edges.filter(
    (e: { node: { template: { id: string } } }) => e.node.template.id === templateId,
  );
  expect(granted).toHaveLength(1);
  expect(granted[0].node.id).toBe(done.rewardCouponId);
  const board = await gql(
    url(),
    'query($c: ID!) { challengeLeaderboard(challengeId: $c) { rank days member { id } completedAt } }',
    { c: challengeId },
    rival.headers,
  );
  expect(board.data!.challengeLeaderboard.map((s: { member: { id: string } }) => s.member.id)).toEqual([member.id, rival.id]);
  expect(board.data!.challengeLeaderboard[0]).toMatchObject({ rank: 1, days: 8 });
  expect(board.data!.challengeLeaderboard[1]).toMatchObject({ rank: 2, days: 1, completedAt: null });
  // Another member's progress is not for the rival to read.
  expect(
    code(
      await gql(
        url(),
        'query($c: ID!, $m: ID!) { challengeProgress(challengeId: $c, memberId: $m) { days } }',
        { c: challengeId, m: member.id },
        rival.headers,
      ),
    ),
  ).toBe('FORBIDDEN');
});
