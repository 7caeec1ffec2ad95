// Invite campaigns (邀请有礼) against the real FerretDB and NATS: the staff campaign as a versioned
// ledger, both sides rewarded once on the invitee's first paid order (never on a second order or a
// replay, also under concurrency), caps refusing with a reason, a full refund within the window
// reversing both, and each fraud rule holding its case for review with the rule's reason.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { EventData, EventEnvelope } from '@flywheel/events';
import { loadServiceConfig } from '../../config';
import { start, type RunningReferral } from '../../main';
import type { SetInviteCampaignInput } from '../service';

jest.setTimeout(90_000);

let nats: InfraProcess;
let svc: RunningReferral;
const granted: EventEnvelope<'referral.reward.granted'>[] = [];
const reversed: EventEnvelope<'referral.reward.reversed'>[] = [];
const TEMPLATE = new Types.ObjectId().toHexString();

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)), { sweepers: false });
  // Membership's answer about coupon templates (the one this test knows is active).
  svc.bus.reply('membership.coupon.template', async ({ templateId }) => ({ templateId, name: '邀请券', active: templateId === TEMPLATE }));
  await svc.bus.consume('referral.reward.granted', async (env) => {
    granted.push(env);
  });
  await svc.bus.consume('referral.reward.reversed', async (env) => {
    reversed.push(env);
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const campaigns = () => svc.modules.campaigns.campaigns;
const newId = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('referral', staff());
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  gql(svc.url, query, variables, headers);
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const SET = `mutation($i: SetInviteCampaignInput!, $v: Int!) { setInviteCampaign(input: $i, expectedVersion: $v) {
  version active capPerInviterPerDay fraud { velocity { enabled maxPerHour } } } }`;
const REVIEW = `mutation($id: ID!) { approveReferralReward(inviteeId: $id, note: "checked") { status reviewedAt } }`;
const REJECT = `mutation($id: ID!) { rejectReferralReward(inviteeId: $id) { status } }`;
const HELD = `query { referralRewardsForReview(first: 100) { edges { node { id status rule reason } } } }`;

const baseCampaign: SetInviteCampaignInput = {
  active: true,
  inviterReward: { points: 300 },
  inviteeReward: { couponTemplateId: TEMPLATE },
  capPerInviterPerDay: 100,
  capPerInviterPerMonth: 1000,
  afterSalesWindowDays: 7,
  fraud: { velocity: { enabled: true, maxPerHour: 10 } },
};

/** Sets the campaign as the next version (the test is its only editor). */
async function setCampaign(more: Partial<SetInviteCampaignInput> = {}) {
  const { version } = await campaigns().campaign();
  const res = await call(SET, { i: { ...baseCampaign, ...more }, v: version }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.setInviteCampaign;
}

/** A member registered (with an inviter's code, and a phone hash); returns their id and own code. */
async function register(invitedByCode?: string, phoneHash = randomUUID()): Promise<{ id: string; code: string }> {
  const memberId = newId();
  const data: EventData<'membership.member.registered'> = {
    memberId,
    registeredAt: new Date().toISOString(),
    phoneHash,
    ...(invitedByCode ? { invitedByCode } : {}),
  };
  await svc.service.onMemberRegistered(data, randomUUID());
  await campaigns().memberRegistered(data);
  const own = await svc.service.issueInviteCode(memberId);
  return { id: memberId, code: own.code };
}

const paid = (memberId: string, total = 9900, orderId = newId()): EventData<'orders.order.paid'> => ({
  orderId,
  memberId,
  total,
  currency: 'CNY',
  lines: [{ skuId: newId(), productId: newId(), quantity: 1, unitPrice: total, priceKind: 'LIST' }],
  source: { kind: 'DIRECT' },
  paymentId: newId(),
  paidAt: new Date().toISOString(),
});
const refunded = (p: EventData<'orders.order.paid'>, amount: number, at = new Date()): EventData<'orders.order.refunded'> => ({
  orderId: p.orderId,
  memberId: p.memberId,
  refundId: newId(),
  amount,
  currency: 'CNY',
  restock: [],
  refundedAt: at.toISOString(),
});
const grantsFor = (inviteeId: string) => granted.filter((e) => e.data.rewardId.startsWith(`invite:${inviteeId}:`));
const reversalsFor = (inviteeId: string) => reversed.filter((e) => e.data.rewardId.startsWith(`invite:${inviteeId}:`));
const settle = () => new Promise((r) => setTimeout(r, 500));

describe('setInviteCampaign', () => {
  test('staff only; a stale expectedVersion is CONFLICT; a reward is a template or points, exactly one; an inactive template is refused', async () => {
    const { version } = await campaigns().campaign();
    expect(code(await call(SET, { i: baseCampaign, v: version }, asGateway('referral', customer(newId()))))).toBe('FORBIDDEN');
    const set = await setCampaign({ capPerInviterPerDay: 5 });
    expect(set).toMatchObject({ version: version + 1, active: true, capPerInviterPerDay: 5 });
    const stale = await call(SET, { i: baseCampaign, v: version }, asStaff());
    expect(stale.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'STALE_VERSION' });
    const both = await call(
      SET,
      { i: { ...baseCampaign, inviterReward: { points: 5, couponTemplateId: TEMPLATE } }, v: version + 1 },
      asStaff(),
    );
    expect(code(both)).toBe('BAD_USER_INPUT');
    const unknown = await call(SET, { i: { ...baseCampaign, inviteeReward: { couponTemplateId: newId() } }, v: version + 1 }, asStaff());
    expect(code(unknown)).toBe('BAD_USER_INPUT');
    const read = await call('{ inviteCampaign { version inviteeReward { kind couponTemplateId } } }', {}, asStaff());
    expect(read.data!.inviteCampaign).toEqual({ version: version + 1, inviteeReward: { kind: 'COUPON', couponTemplateId: TEMPLATE } });
  });
});

describe('first paid order', () => {
  beforeAll(() => setCampaign());

  test('rewards both sides once through the outbox: a second order, a replay and the event through the bus grant nothing more', async () => {
    const inviter = await register();
    const invitee = await register(inviter.code);
    const first = paid(invitee.id);
    const view = await campaigns().orderPaid(randomUUID(), first);
    expect(view).toMatchObject({ status: 'GRANTED', pair: { inviterId: inviter.id, orderId: first.orderId } });
    await eventually(async () => (grantsFor(invitee.id).length === 2 ? true : null));
    expect(
      grantsFor(invitee.id)
        .map((e) => e.data)
        .sort((a, b) => a.kind.localeCompare(b.kind)),
    ).toEqual([
      expect.objectContaining({
        memberId: invitee.id,
        kind: 'COUPON',
        couponTemplateId: TEMPLATE,
        rewardId: `invite:${invitee.id}:INVITEE`,
      }),
      expect.objectContaining({ memberId: inviter.id, kind: 'POINTS', points: 300, rewardId: `invite:${invitee.id}:INVITER` }),
    ]);

    expect(await campaigns().orderPaid(randomUUID(), paid(invitee.id))).toBeNull();
    await campaigns().orderPaid(randomUUID(), first);
    await svc.bus.publish('orders.order.paid', first);
    await svc.bus.publish('orders.order.paid', paid(invitee.id));
    await settle();
    expect(grantsFor(invitee.id)).toHaveLength(2);
    expect(await svc.db.collection('invite_reward_grants').countDocuments({ inviteeId: invitee.id })).toBe(2);
  });

  test('two orders of one invitee paid at once: one first order, one reward pair', async () => {
    const inviter = await register();
    const invitee = await register(inviter.code);
    const results = await Promise.all([1, 2, 3].map(() => campaigns().orderPaid(randomUUID(), paid(invitee.id))));
    expect(results.filter((r) => r !== null).map((r) => r!.status)).toEqual(['GRANTED']);
    expect(await svc.db.collection('invite_reward_grants').countDocuments({ inviteeId: invitee.id })).toBe(2);
  });

  test('a member nobody invited, or who registered with their own code (SELF_INVITE), gets no invite reward', async () => {
    const alone = await register();
    expect(await campaigns().orderPaid(randomUUID(), paid(alone.id))).toBeNull();
    // A code issued before the registration arrives is the member's own: the binding is refused.
    const self = newId();
    const own = await svc.service.issueInviteCode(self);
    const { binding } = await svc.service.onMemberRegistered({ memberId: self, invitedByCode: own.code }, randomUUID());
    expect(binding?.status).toBe('SELF_INVITE');
    expect(await campaigns().orderPaid(randomUUID(), paid(self))).toBeNull();
  });

  test('the daily cap: three invitees paying at once under a cap of two → two GRANTED, one REFUSED with DAILY_CAP and why', async () => {
    await setCampaign({ capPerInviterPerDay: 2 });
    const inviter = await register();
    const invitees = await Promise.all([1, 2, 3].map(() => register(inviter.code)));
    const views = await Promise.all(invitees.map((i) => campaigns().orderPaid(randomUUID(), paid(i.id))));
    const statuses = views.map((v) => v!.status).sort();
    expect(statuses).toEqual(['GRANTED', 'GRANTED', 'REFUSED']);
    const refused = views.find((v) => v!.status === 'REFUSED')!;
    expect(refused.pair).toMatchObject({ rule: 'DAILY_CAP', reason: 'The inviter reached the cap of 2 invite rewards a day' });
    expect(grantsFor(refused.pair._id)).toHaveLength(0);
    await setCampaign();
  });

  test('the monthly cap refuses with MONTHLY_CAP', async () => {
    await setCampaign({ capPerInviterPerMonth: 1 });
    const inviter = await register();
    const [a, b] = [await register(inviter.code), await register(inviter.code)];
    expect((await campaigns().orderPaid(randomUUID(), paid(a.id)))!.status).toBe('GRANTED');
    expect((await campaigns().orderPaid(randomUUID(), paid(b.id)))!.pair).toMatchObject({ decision: 'REFUSED', rule: 'MONTHLY_CAP' });
    await setCampaign();
  });
});

describe('reversal', () => {
  test('a full refund (in two parts) within the window reverses both sides once; a replayed refund nothing more', async () => {
    const inviter = await register();
    const invitee = await register(inviter.code);
    const order = paid(invitee.id, 10_000);
    await campaigns().orderPaid(randomUUID(), order);
    expect(await campaigns().orderRefunded(refunded(order, 4000))).toBe(0);
    const last = refunded(order, 6000);
    expect(await campaigns().orderRefunded(last)).toBe(2);
    expect(await campaigns().orderRefunded(last)).toBe(0);
    await eventually(async () => (reversalsFor(invitee.id).length === 2 ? true : null));
    expect(
      reversalsFor(invitee.id)
        .map((e) => e.data.rewardId)
        .sort(),
    ).toEqual([`invite:${invitee.id}:INVITEE`, `invite:${invitee.id}:INVITER`]);
    expect((await campaigns().view(invitee.id))!.status).toBe('REVERSED');
  });

  test('a refund after the after-sales window keeps the rewards; a refund of a later order reverses nothing', async () => {
    const inviter = await register();
    const invitee = await register(inviter.code);
    const order = paid(invitee.id);
    await campaigns().orderPaid(randomUUID(), order);
    const second = paid(invitee.id);
    await campaigns().orderPaid(randomUUID(), second);
    expect(await campaigns().orderRefunded(refunded(second, second.total))).toBe(0);
    expect(await campaigns().orderRefunded(refunded(order, order.total, new Date(Date.now() + 8 * 86_400_000)))).toBe(0);
    expect((await campaigns().view(invitee.id))!.status).toBe('GRANTED');
  });
});

describe('fraud rules', () => {
  test('CYCLE: A invites B invites A → A’s reward HELD, saying the ring; staff approve grants it once', async () => {
    const a = await register();
    const b = await register(a.code);
    // A bound by B's code (a registration replayed out of order): the ring the rule is for.
    expect((await svc.service.bindInviter(a.id, b.code)).status).toBe('BOUND');
    const view = await campaigns().orderPaid(randomUUID(), paid(a.id));
    expect(view!.pair).toMatchObject({
      decision: 'HELD',
      rule: 'CYCLE',
      reason: `Invitations go round in a ring: ${a.id} → ${b.id} → ${a.id}`,
    });
    expect(grantsFor(a.id)).toHaveLength(0);

    const held = await call(HELD, {}, asStaff());
    expect(held.data!.referralRewardsForReview.edges.map((e: { node: { id: string } }) => e.node)).toContainEqual(
      expect.objectContaining({ id: a.id, status: 'HELD', rule: 'CYCLE' }),
    );
    const approved = await call(REVIEW, { id: a.id }, asStaff());
    expect(approved.data!.approveReferralReward.status).toBe('GRANTED');
    expect((await call(REVIEW, { id: a.id }, asStaff())).data!.approveReferralReward.status).toBe('GRANTED');
    expect(code(await call(REJECT, { id: a.id }, asStaff()))).toBe('CONFLICT');
    await eventually(async () => (grantsFor(a.id).length === 2 ? true : null));
    const after = await call(HELD, {}, asStaff());
    expect(after.data!.referralRewardsForReview.edges.map((e: { node: { id: string } }) => e.node.id)).not.toContain(a.id);
  });

  test('VELOCITY: more than N registrations with one code within an hour → the next reward HELD; turned off, it is granted', async () => {
    await setCampaign({ fraud: { velocity: { enabled: true, maxPerHour: 2 } } });
    const inviter = await register();
    const invitees = [await register(inviter.code), await register(inviter.code), await register(inviter.code)];
    const views = [];
    for (const i of invitees) views.push(await campaigns().orderPaid(randomUUID(), paid(i.id)));
    expect(views.map((v) => v!.status)).toEqual(['GRANTED', 'GRANTED', 'HELD']);
    expect(views[2]!.pair).toMatchObject({ rule: 'VELOCITY', reason: '3 registrations with this code within an hour (more than 2)' });
    const rejected = await call(REJECT, { id: invitees[2]!.id }, asStaff());
    expect(rejected.data!.rejectReferralReward.status).toBe('REJECTED');
    expect(code(await call(REVIEW, { id: invitees[2]!.id }, asStaff()))).toBe('CONFLICT');

    await setCampaign({ fraud: { velocity: { enabled: false, maxPerHour: 2 } } });
    const fourth = await register(inviter.code);
    expect((await campaigns().orderPaid(randomUUID(), paid(fourth.id)))!.status).toBe('GRANTED');
    await setCampaign();
  });

  test('SAME_PHONE: the invitee’s phone hash on another account → HELD, saying so; a refund of a held reward leaves nothing to approve', async () => {
    const inviter = await register();
    const phone = randomUUID();
    await register(undefined, phone);
    const invitee = await register(inviter.code, phone);
    const order = paid(invitee.id);
    const view = await campaigns().orderPaid(randomUUID(), order);
    expect(view!.pair).toMatchObject({ decision: 'HELD', rule: 'SAME_PHONE', reason: 'The same phone is on 1 other account' });
    await campaigns().orderRefunded(refunded(order, order.total));
    const res = await call(REVIEW, { id: invitee.id }, asStaff());
    expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'REVERSED' });
    await settle();
    expect(grantsFor(invitee.id)).toHaveLength(0);
  });

  test('held and refused rewards are visible to staff, the invitee and the inviter, not to others', async () => {
    const inviter = await register();
    const invitee = await register(inviter.code);
    await campaigns().orderPaid(randomUUID(), paid(invitee.id));
    const q = 'query($id: ID!) { inviteReward(inviteeId: $id) { status inviter { id } } }';
    for (const who of [staff(), customer(invitee.id), customer(inviter.id)]) {
      expect((await call(q, { id: invitee.id }, asGateway('referral', who))).data!.inviteReward).toEqual({
        status: 'GRANTED',
        inviter: { id: inviter.id },
      });
    }
    expect((await call(q, { id: invitee.id }, asGateway('referral', customer(newId())))).data!.inviteReward).toBeNull();
  });
});

test("the sharer's funnel counts registrations with their code and those invitees' first paid orders", async () => {
  const inviter = await register();
  const [a] = [await register(inviter.code), await register(inviter.code)];
  await campaigns().orderPaid(randomUUID(), paid(a!.id));
  await campaigns().orderPaid(randomUUID(), paid(a!.id));
  const q = 'query($m: ID!) { shareFunnel(memberId: $m) { registrations firstPaidOrders } }';
  expect((await call(q, { m: inviter.id }, asStaff())).data!.shareFunnel).toEqual({ registrations: 2, firstPaidOrders: 1 });
  const stats = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { shareStats { registrations firstPaidOrders } } } }';
  const own = await call(stats, { r: [{ __typename: 'Member', id: inviter.id }] }, asGateway('referral', customer(inviter.id)));
  expect(own.data!._entities[0].shareStats).toEqual({ registrations: 2, firstPaidOrders: 1 });
});
