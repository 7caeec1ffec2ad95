// Grants taken back by their granter (community's showcase rewards): `membership.coupon.revoke`,
// `membership.points.grant` / `membership.points.revoke`, and a removed showcase's REVIEW evidence,
// on the real FerretDB and NATS.
import { Types } from 'mongoose';
import { asGateway, customer, gql, registerMember, staff } from '@flywheel/testing';
import { BusRequestError } from '@flywheel/service-kit';
import type { RunningMembership } from '../../main';
import { paidOrder, startMembership } from '../../__tests__/support';

let svc: RunningMembership;
let stop: () => Promise<void>;

beforeAll(async () => {
  ({ svc, stop } = await startMembership());
}, 60_000);
afterAll(() => stop());

const coupons = () => svc.modules.coupons.coupons;
const loyalty = () => svc.modules.loyalty.loyalty;
const states = async (couponId: string) =>
  (await svc.db.collection('coupon_entries').find({ accountId: couponId }).sort({ seq: 1 }).toArray()).map((e) => e.state);
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (e: { extensions?: { code?: string }; code?: string }) => e.extensions?.code ?? e.code ?? String(e),
  );

async function grantOnlyTemplate(): Promise<string> {
  const res = await gql(
    svc.url,
    'mutation($i: CreateCouponTemplateInput!) { createCouponTemplate(input: $i) { id } }',
    { i: { name: '好评券', kind: 'FIXED', amount: 500, claimable: false, perMemberLimit: 100, validDaysAfterClaim: 30 } },
    asGateway('membership', staff()),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createCouponTemplate.id;
}

const grant = (key: string, memberId: string, templateId: string) =>
  svc.bus.request('membership.coupon.grant', { key, memberId, templateId, reason: 'showcase reward' });
const revoke = (key: string) => svc.bus.request('membership.coupon.revoke', { key, reason: 'showcase removed' });

test('a granted coupon is revoked once: REVOKED in the wallet, unusable at checkout; a repeat answers the same; an unknown key NONE', async () => {
  const memberId = (await registerMember(svc.url)).id;
  const templateId = await grantOnlyTemplate();
  const { couponId } = await grant('community:showcase:p1', memberId, templateId);

  const answers = await Promise.all([revoke('community:showcase:p1'), revoke('community:showcase:p1')]);
  expect(answers).toEqual([
    { revoked: true, state: 'REVOKED', couponId },
    { revoked: true, state: 'REVOKED', couponId },
  ]);
  expect(await revoke('community:showcase:p1')).toEqual({ revoked: true, state: 'REVOKED', couponId });
  expect(await states(couponId)).toEqual(['ISSUED', 'REVOKED']);
  expect(await revoke('community:showcase:unknown')).toEqual({ revoked: false, state: 'NONE' });

  // Not offered, not lockable; the grant replayed under its key gives no new coupon.
  const lines = [{ skuId: 's', productId: 'p', quantity: 1, unitPrice: 10_000 }];
  expect(await coupons().offers(memberId, lines, 10_000, new Date())).toEqual([]);
  expect(await codeOf(coupons().offer(memberId, couponId, lines, 10_000, new Date()))).toBe('CONFLICT');
  expect(await codeOf(coupons().lock(couponId, memberId, 'order-1'))).toBe('CONFLICT');
  expect((await grant('community:showcase:p1', memberId, templateId)).couponId).toBe(couponId);
  expect(await states(couponId)).toEqual(['ISSUED', 'REVOKED']);

  const wallet = await gql(
    svc.url,
    'query($id: ID!) { _entities(representations: [{ __typename: "Member", id: $id }]) { ... on Member { coupons { available revoked coupons(state: REVOKED) { edges { node { id state } } } } } } }',
    { id: memberId },
    asGateway('membership', customer(memberId)),
  );
  expect(wallet.errors).toBeUndefined();
  expect(wallet.data!._entities[0].coupons).toEqual({
    available: 0,
    revoked: 1,
    coupons: { edges: [{ node: { id: couponId, state: 'REVOKED' } }] },
  });
});

test('a revoke racing a checkout lock: the coupon ends locked or revoked, never both; LOCKED and USED are not taken back', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const templateId = await grantOnlyTemplate();
  for (let i = 0; i < 5; i++) {
    const key = `race:${i}`;
    const { couponId } = await grant(key, memberId, templateId);
    const [locked, revoked] = await Promise.all([codeOf(coupons().lock(couponId, memberId, `order-${i}`)), revoke(key)]);
    const entries = await states(couponId);
    if (locked === 'OK') {
      expect(revoked).toEqual({ revoked: false, state: 'LOCKED', couponId });
      expect(entries).toEqual(['ISSUED', 'LOCKED']);
    } else {
      expect(locked).toBe('CONFLICT');
      expect(revoked).toEqual({ revoked: true, state: 'REVOKED', couponId });
      expect(entries).toEqual(['ISSUED', 'REVOKED']);
    }
  }
  // Locked, then paid: USED, and still not taken back (the caller records the shortfall); marked
  // once as wanted back (a second ask adds nothing), so a refund of that order revokes it.
  const { couponId } = await grant('race:used', memberId, templateId);
  await coupons().lock(couponId, memberId, 'order-used');
  expect(await revoke('race:used')).toEqual({ revoked: false, state: 'LOCKED', couponId });
  await coupons().consume(couponId, 'order-used');
  expect(await revoke('race:used')).toEqual({ revoked: false, state: 'USED', couponId });
  expect(await revoke('race:used')).toEqual({ revoked: false, state: 'USED', couponId });
  expect(await states(couponId)).toEqual(['ISSUED', 'LOCKED', 'USED', 'USED']);
  expect(await coupons().restore(couponId, 'order-used')).toBe(true);
  expect(await states(couponId)).toEqual(['ISSUED', 'LOCKED', 'USED', 'USED', 'REVOKED']);
});

test('points granted once per key and revoked once, like a refund claw-back: what was spent is the shortfall', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const req = { key: 'community:showcase:pts', memberId, points: 300, reason: 'showcase reward' };
  const granted = await Promise.all([svc.bus.request('membership.points.grant', req), svc.bus.request('membership.points.grant', req)]);
  expect(granted).toEqual([{ points: 300 }, { points: 300 }]);
  expect(await loyalty().pointsOf(memberId)).toBe(300);
  const reused = await svc.bus.request('membership.points.grant', { ...req, points: 301 }).catch((e: BusRequestError) => e.code);
  expect(reused).toBe('CONFLICT');

  // Spend 100 of them at a checkout; the revoke takes back the 200 left and records 100 short.
  await loyalty().spend(memberId, 'checkout-1', 100);
  const first = await svc.bus.request('membership.points.revoke', { key: req.key, reason: 'refund' });
  expect(first).toEqual({ revoked: true, taken: 200, shortfall: 100 });
  expect(await loyalty().pointsOf(memberId)).toBe(0);
  expect(await svc.bus.request('membership.points.revoke', { key: req.key, reason: 'refund' })).toEqual(first);
  expect(await svc.bus.request('membership.points.revoke', { key: 'unknown', reason: 'x' })).toEqual({
    revoked: false,
    taken: 0,
    shortfall: 0,
  });
  const clawbacks = await svc.db
    .collection('loyalty_entries')
    .find({ accountId: `p:${memberId}`, kind: 'CLAWBACK' })
    .toArray();
  expect(clawbacks).toHaveLength(1);
  expect(clawbacks[0]).toMatchObject({ delta: -200, shortfall: 100 });

  // A member with earned points too: the revoke takes the granted amount only.
  const other = new Types.ObjectId().toHexString();
  await loyalty().orderPaid(paidOrder(other, 10_000));
  const earned = await loyalty().pointsOf(other);
  await svc.bus.request('membership.points.grant', { ...req, key: 'community:showcase:pts2', memberId: other, points: 50 });
  expect(await svc.bus.request('membership.points.revoke', { key: 'community:showcase:pts2', reason: 'hidden' })).toEqual({
    revoked: true,
    taken: 50,
    shortfall: 0,
  });
  expect(await loyalty().pointsOf(other)).toBe(earned);
});

test('a showcase removed before its REVIEW reward used it is no evidence any more; one already used stays rewarded', async () => {
  const memberId = (await registerMember(svc.url)).id;
  const claim = () =>
    gql(svc.url, 'mutation { claimTaskReward(input: { task: REVIEW }) { task points } }', {}, asGateway('membership', customer(memberId)));
  const showcase = () => ({
    postId: new Types.ObjectId().toHexString(),
    memberId,
    kind: 'SHOWCASE' as const,
    verified: true,
    publishedAt: new Date().toISOString(),
  });
  const removed = showcase();
  await loyalty().postPublished('e1', removed);
  await svc.bus.publish('community.post.removed', {
    postId: removed.postId,
    memberId,
    reason: 'spam',
    removedAt: new Date().toISOString(),
  });
  const dropped = async () => Boolean(await svc.db.collection('loyalty_claims').findOne({ _id: `use:REVIEW:${removed.postId}` as never }));
  for (let i = 0; i < 50 && !(await dropped()); i++) await new Promise((r) => setTimeout(r, 100));
  expect(await dropped()).toBe(true);
  expect((await claim()).errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'NO_EVIDENCE' });

  // A removal after the reward used the showcase takes nothing back (and is a no-op when repeated).
  const kept = showcase();
  await loyalty().postPublished('e2', kept);
  expect((await claim()).errors).toBeUndefined();
  const data = { postId: kept.postId, memberId, reason: 'late', removedAt: new Date().toISOString() };
  expect(await loyalty().postRemoved(data)).toBe(false);
  expect(await svc.db.collection('loyalty_claims').findOne({ _id: `use:REVIEW:${kept.postId}` as never })).toMatchObject({
    claimId: expect.stringMatching(/^task:/),
  });
});
