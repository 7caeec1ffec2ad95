import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, staff, registerMember } from '@flywheel/testing';
import type { RunningMembership } from '../../main';
import { startMembership } from '../../__tests__/support';

let svc: RunningMembership;
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ svc, stop } = await startMembership());
});
afterAll(() => stop());

const asStaff = () => asGateway('membership', staff());
const CREATE = 'mutation($input: CreateCouponTemplateInput!) { createCouponTemplate(input: $input) { id } }';
const UPDATE =
  'mutation($input: UpdateCouponCampaignsInput!) { updateCouponCampaigns(input: $input) { welcomeTemplateId winBackTemplateId } }';
const WALLET = 'query($id: ID!) { member(id: $id) { coupons { available coupons { edges { node { name } } } } } }';

async function template(name: string, perMemberLimit = 1): Promise<string> {
  const res = await gql(
    svc.url,
    CREATE,
    { input: { name, kind: 'FIXED', amount: 500, validDaysAfterClaim: 30, claimable: false, perMemberLimit } },
    asStaff(),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createCouponTemplate.id;
}
const walletOf = async (memberId: string) => (await gql(svc.url, WALLET, { id: memberId }, asStaff())).data!.member.coupons;

const register = async (): Promise<string> => (await registerMember(svc.url)).id;

describe('coupon campaigns on membership events', () => {
  test('staff only; unknown templates are NOT_FOUND and bad ids BAD_USER_INPUT', async () => {
    const member = new Types.ObjectId().toHexString();
    const denied = await gql(svc.url, UPDATE, { input: { welcomeTemplateId: null } }, asGateway('membership', customer(member)));
    expect(denied.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const unknown = await gql(svc.url, UPDATE, { input: { welcomeTemplateId: new Types.ObjectId().toHexString() } }, asStaff());
    expect(unknown.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    const bad = await gql(svc.url, UPDATE, { input: { winBackTemplateId: 'nope' } }, asStaff());
    expect(bad.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
  });

  test('a new member gets the welcome coupon once; a member going dormant gets a win-back coupon per time', async () => {
    const welcome = await template('新人券');
    const winBack = await template('回归券', 5);
    const set = await gql(svc.url, UPDATE, { input: { welcomeTemplateId: welcome, winBackTemplateId: winBack } }, asStaff());
    expect(set.data!.updateCouponCampaigns).toEqual({ welcomeTemplateId: welcome, winBackTemplateId: winBack });

    const memberId = await register();
    await eventually(async () => (await walletOf(memberId)).available === 1);

    const dormant = (id: string, to: 'DORMANT' | 'NEW') =>
      svc.bus.publish(
        'membership.segment.changed',
        { memberId, from: 'GENERAL_VALUE', to, recencyDays: 200, frequency: 2, monetary: 5_000, changedAt: new Date().toISOString() },
        { id },
      );
    const first = new Types.ObjectId().toHexString();
    await dormant(first, 'DORMANT');
    await dormant(first, 'DORMANT'); // redelivered
    await dormant(new Types.ObjectId().toHexString(), 'NEW'); // not a win-back
    await eventually(async () => (await walletOf(memberId)).available === 2);
    await dormant(new Types.ObjectId().toHexString(), 'DORMANT'); // dormant again later
    await eventually(async () => (await walletOf(memberId)).available === 3);
    await new Promise((r) => setTimeout(r, 500));
    const wallet = await walletOf(memberId);
    expect(wallet.available).toBe(3);
    expect(wallet.coupons.edges.map((e: { node: { name: string } }) => e.node.name).sort()).toEqual(['回归券', '回归券', '新人券']);
  });
});
