import { createHash } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess, registerMember } from '@flywheel/testing';
import { BusRequestError } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningMembership } from '../../main';
import type { BenefitLineInput, CouponService } from '..';

let nats: InfraProcess;
let svc: RunningMembership;
/** Shifts the service's clock (expiry, member day) without waiting. */
let shiftMs = 0;
let coupons: CouponService;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('membership', nats.url)), {
    sweepers: false,
    now: () => new Date(Date.now() + shiftMs),
  });
  coupons = svc.modules.coupons.coupons;
}, 60_000);
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});
afterEach(() => {
  shiftMs = 0;
});

const newMember = () => new Types.ObjectId().toHexString();
const asStaff = () => asGateway('membership', staff());
const asMember = (id: string) => asGateway('membership', customer(id));
const DAY = 86_400_000;

/** A registered member (wallets are fields of a Member entity, which must exist). */
const newRegistered = async (): Promise<string> => (await registerMember(svc.url)).id;

const TEMPLATE_FIELDS = 'id name kind amount percentOff maxDiscount threshold scope totalQuota remaining perMemberLimit claimable status';
const COUPON_FIELDS = 'id name state validFrom validUntil claimedAt usedOrderId template { id name }';
const CREATE = `mutation($input: CreateCouponTemplateInput!) { createCouponTemplate(input: $input) { ${TEMPLATE_FIELDS} } }`;
const CLAIM = `mutation($input: ClaimCouponInput!) { claimCoupon(input: $input) { ${COUPON_FIELDS} } }`;
const GRANT = `mutation($input: GrantCouponInput!) { grantCoupon(input: $input) { ${COUPON_FIELDS} } }`;
const STOP = `mutation($id: ID!) { stopCouponTemplate(input: { id: $id }) { id status } }`;

async function createTemplate(input: Record<string, unknown>): Promise<{ id: string; remaining: number | null }> {
  const res = await gql(svc.url, CREATE, { input: { name: 'Coupon', validDaysAfterClaim: 30, ...input } }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createCouponTemplate;
}

const claim = (memberId: string, templateId: string, idempotencyKey: string) =>
  gql(svc.url, CLAIM, { input: { templateId, idempotencyKey } }, asMember(memberId));

async function claimOk(memberId: string, templateId: string, key = `k-${Math.random()}`): Promise<string> {
  const res = await claim(memberId, templateId, key);
  expect(res.errors).toBeUndefined();
  return res.data!.claimCoupon.id as string;
}

const countCoupons = (filter: Record<string, unknown>) => svc.db.collection('coupons').countDocuments(filter);
const entriesOf = (couponId: string) => svc.db.collection('coupon_entries').find({ accountId: couponId }).sort({ seq: 1 }).toArray();
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'OK',
    (e: { extensions?: { code?: string }; code?: string }) => e.extensions?.code ?? e.code ?? String(e),
  );
const line = (productId: string, unitPrice: number, quantity = 1, categoryIds: string[] = []): BenefitLineInput => ({
  skuId: `sku-${productId}`,
  productId,
  categoryIds,
  quantity,
  unitPrice,
});

describe('templates', () => {
  test('staff create a template; every rule is validated with the field named', async () => {
    const t = await createTemplate({ name: '满100减20', kind: 'FIXED', amount: 2000, threshold: 10000, totalQuota: 10 });
    expect(t).toMatchObject({
      kind: 'FIXED',
      amount: 2000,
      threshold: 10000,
      scope: 'ALL',
      totalQuota: 10,
      remaining: 10,
      perMemberLimit: 1,
    });

    const bad: [Record<string, unknown>, string][] = [
      [{ kind: 'PERCENT', percentOff: 10 }, 'maxDiscount'],
      [{ kind: 'PERCENT', percentOff: 100, maxDiscount: 500 }, 'percentOff'],
      [{ kind: 'FIXED', amount: 0 }, 'amount'],
      [{ kind: 'FIXED', amount: 100, scope: 'PRODUCTS' }, 'productIds'],
      [{ kind: 'FIXED', amount: 100, totalQuota: 0 }, 'totalQuota'],
      [
        {
          kind: 'FIXED',
          amount: 100,
          validFrom: new Date().toISOString(),
          validUntil: new Date(Date.now() - 1000).toISOString(),
          validDaysAfterClaim: null,
        },
        'validUntil',
      ],
      [
        { kind: 'FIXED', amount: 100, validFrom: new Date().toISOString(), validUntil: new Date(Date.now() + DAY).toISOString() },
        'validDaysAfterClaim',
      ],
      [{ kind: 'FIXED', amount: 100, claimable: false, memberDayOnly: true }, 'memberDayOnly'],
    ];
    for (const [input, field] of bad) {
      const res = await gql(svc.url, CREATE, { input: { name: 'x', validDaysAfterClaim: 30, ...input } }, asStaff());
      expect(res.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field });
    }
  });

  test('staff-only mutations refuse customers with FORBIDDEN', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100 });
    const m = newMember();
    const calls: [string, Record<string, unknown>][] = [
      [CREATE, { input: { name: 'x', kind: 'FIXED', amount: 100, validDaysAfterClaim: 1 } }],
      [STOP, { id: t.id }],
      [GRANT, { input: { templateId: t.id, memberId: m, idempotencyKey: 'g', reason: 'gift' } }],
    ];
    for (const [q, vars] of calls) {
      const res = await gql(svc.url, q, vars, asMember(m));
      expect(res.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    }
    expect(await countCoupons({ templateId: t.id })).toBe(0);
  });

  test('customers list claimable ACTIVE templates only; a stopped template refuses claims', async () => {
    const open = await createTemplate({ kind: 'FIXED', amount: 100 });
    const grantOnly = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false });
    const list = async (headers: Record<string, string>, all = false) => {
      const res = await gql(
        svc.url,
        'query($all: Boolean) { couponTemplates(first: 100, all: $all) { edges { node { id } } } }',
        { all },
        headers,
      );
      expect(res.errors).toBeUndefined();
      return (res.data!.couponTemplates.edges as { node: { id: string } }[]).map((e) => e.node.id);
    };
    const m = newMember();
    expect(await list(asMember(m))).toContain(open.id);
    expect(await list(asMember(m))).not.toContain(grantOnly.id);
    expect(await list(asStaff(), true)).toEqual(expect.arrayContaining([open.id, grantOnly.id]));

    const refused = await claim(m, grantOnly.id, 'a');
    expect(refused.errors?.[0]?.extensions).toMatchObject({ code: 'FORBIDDEN', reason: 'NOT_CLAIMABLE' });

    const stop = await gql(svc.url, STOP, { id: open.id }, asStaff());
    expect(stop.data!.stopCouponTemplate.status).toBe('STOPPED');
    const late = await claim(m, open.id, 'b');
    expect(late.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'STOPPED' });
    expect(await countCoupons({ memberId: m })).toBe(0);
  });

  test('a member-day-only template is claimable on member day only', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, memberDayOnly: true });
    // Default program: member day is the 8th, Asia/Shanghai.
    const at = (day: number) => {
      const d = new Date();
      const target = Date.UTC(d.getUTCFullYear(), d.getUTCMonth() + 1, day, 4); // noon in Shanghai
      return target - Date.now();
    };
    const m = newMember();
    shiftMs = at(9);
    const off = await claim(m, t.id, 'off');
    expect(off.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'NOT_MEMBER_DAY' });
    shiftMs = at(8);
    await claimOk(m, t.id, 'on');
  });
});

describe('claiming', () => {
  test('a template with quota 50 and 200 concurrent claims by distinct members issues exactly 50', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 500, totalQuota: 50 });
    const members = Array.from({ length: 200 }, newMember);
    const results = await Promise.all(members.map((m) => claim(m, t.id, 'rush')));
    const ok = results.filter((r) => !r.errors);
    const refused = results.filter((r) => r.errors);
    expect(ok).toHaveLength(50);
    expect(refused).toHaveLength(150);
    for (const r of refused) expect(r.errors![0]!.extensions).toMatchObject({ code: 'OUT_OF_STOCK', reason: 'SOLD_OUT' });
    expect(await countCoupons({ templateId: t.id })).toBe(50);
    expect(await svc.db.collection('coupon_entries').countDocuments({ templateId: t.id, seq: 1 })).toBe(50);
    expect(new Set(ok.map((r) => r.data!.claimCoupon.id)).size).toBe(50);
    const again = await gql(svc.url, `query($id: ID!) { couponTemplate(id: $id) { remaining } }`, { id: t.id }, asStaff());
    expect(again.data!.couponTemplate.remaining).toBe(0);
  }, 60_000);

  test('per-member limit holds under concurrent claims by one member', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, perMemberLimit: 2, totalQuota: 100 });
    const m = newMember();
    const results = await Promise.all(Array.from({ length: 12 }, (_, i) => claim(m, t.id, `key-${i}`)));
    expect(results.filter((r) => !r.errors)).toHaveLength(2);
    for (const r of results.filter((x) => x.errors)) {
      expect(r.errors![0]!.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT_REACHED' });
    }
    expect(await countCoupons({ templateId: t.id, memberId: m })).toBe(2);
    // The refused claims took no quota.
    const left = await gql(svc.url, `query($id: ID!) { couponTemplate(id: $id) { remaining } }`, { id: t.id }, asStaff());
    expect(left.data!.couponTemplate.remaining).toBe(98);
  });

  test('a claim retried after a crash between its slots and its coupon resumes them: no second quota unit', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, totalQuota: 5 });
    const m = newMember();
    // What the crashed attempt left: its member slot and quota slot, both naming its coupon.
    const couponId = createHash('sha256').update(['claim', m, t.id, 'crashed'].join('\0')).digest('hex').slice(0, 24);
    const slots = svc.db.collection<{ _id: string; templateId: string; couponId: string; at: Date }>('coupon_slots');
    await slots.insertMany([
      { _id: `${t.id}:m:${m}:1`, templateId: t.id, couponId, at: new Date() },
      { _id: `${t.id}:q:1`, templateId: t.id, couponId, at: new Date() },
    ]);
    expect(await claimOk(m, t.id, 'crashed')).toBe(couponId);
    const entry = await svc.db.collection<{ _id: string }>('coupon_entries').findOne({ _id: `${couponId}:1` });
    expect(entry).toMatchObject({ quotaSlot: 1, memberId: m });
    const left = await gql(svc.url, `query($id: ID!) { couponTemplate(id: $id) { remaining } }`, { id: t.id }, asStaff());
    expect(left.data!.couponTemplate.remaining).toBe(4);
    // The member is at the limit of 1 now.
    expect((await claim(m, t.id, 'another')).errors?.[0]?.extensions).toMatchObject({ reason: 'LIMIT_REACHED' });
  });

  test('a claim replayed with the same idempotency key returns the same coupon', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, perMemberLimit: 3 });
    const m = newMember();
    const ids = await Promise.all(Array.from({ length: 5 }, () => claimOk(m, t.id, 'same-key')));
    expect(new Set(ids).size).toBe(1);
    expect(await claimOk(m, t.id, 'same-key')).toBe(ids[0]);
    expect(await countCoupons({ templateId: t.id, memberId: m })).toBe(1);
    // Another key is another coupon (the limit is 3).
    expect(await claimOk(m, t.id, 'other-key')).not.toBe(ids[0]);
  });
});

describe('checkout: lock, consume, release, restore', () => {
  test('two checkouts racing to lock one coupon: one wins, the other CONFLICT', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 300 });
    const m = newMember();
    const c = await claimOk(m, t.id);
    const codes = await Promise.all(['order-a', 'order-b', 'order-c'].map((o) => codeOf(coupons.lock(c, m, o))));
    expect(codes.filter((x) => x === 'OK')).toHaveLength(1);
    expect(codes.filter((x) => x === 'CONFLICT')).toHaveLength(2);
    const winner = ['order-a', 'order-b', 'order-c'][codes.indexOf('OK')]!;
    // The same checkout locking again is a no-op.
    await coupons.lock(c, m, winner);
    expect((await entriesOf(c)).map((e) => e.state)).toEqual(['ISSUED', 'LOCKED']);
  });

  test('consume, release and restore each happen exactly once under concurrency', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 300 });
    const m = newMember();
    const c = await claimOk(m, t.id);

    await coupons.lock(c, m, 'o1');
    const released = await Promise.all(Array.from({ length: 5 }, () => coupons.release(c, 'o1')));
    expect(released.filter(Boolean)).toHaveLength(1);

    await coupons.lock(c, m, 'o2');
    expect(await coupons.release(c, 'o1')).toBe(false); // an old checkout releases nothing
    await Promise.all(Array.from({ length: 5 }, () => coupons.consume(c, 'o2')));
    expect(await codeOf(coupons.lock(c, m, 'o3'))).toBe('CONFLICT');
    expect(await coupons.release(c, 'o2')).toBe(false); // paid: nothing to release

    const restored = await Promise.all(Array.from({ length: 5 }, () => coupons.restore(c, 'o2')));
    expect(restored.filter(Boolean)).toHaveLength(1);
    expect((await entriesOf(c)).map((e) => `${e.state}:${e.checkoutId ?? ''}`)).toEqual([
      'ISSUED:',
      'LOCKED:o1',
      'AVAILABLE:o1',
      'LOCKED:o2',
      'USED:o2',
      'AVAILABLE:o2',
    ]);
    // Back in the wallet, usable again.
    await coupons.lock(c, m, 'o4');
    await coupons.consume(c, 'o4');
    expect(await codeOf(coupons.consume(c, 'o5'))).toBe('CONFLICT');
    const doc = await svc.db.collection('coupons').findOne({ _id: c as never });
    expect(doc).toMatchObject({ state: 'USED', usedOrderId: 'o4' });
  });

  test("another member's coupon is FORBIDDEN; an unknown one NOT_FOUND", async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 300 });
    const owner = newMember();
    const other = newMember();
    const c = await claimOk(owner, t.id);
    expect(await codeOf(coupons.lock(c, other, 'x'))).toBe('FORBIDDEN');
    expect(await codeOf(coupons.offer(other, c, [line('p', 1000)], 1000, new Date()))).toBe('FORBIDDEN');
    expect(await codeOf(coupons.offer(owner, new Types.ObjectId().toHexString(), [line('p', 1000)], 1000, new Date()))).toBe('NOT_FOUND');
    expect((await entriesOf(c)).map((e) => e.state)).toEqual(['ISSUED']);
  });
});

describe('offers', () => {
  test('expired, out-of-scope and below-threshold coupons are refused with the reason', async () => {
    const m = await newRegistered();
    const short = await createTemplate({ kind: 'FIXED', amount: 100, validDaysAfterClaim: 1 });
    const scoped = await createTemplate({ kind: 'FIXED', amount: 100, scope: 'PRODUCTS', productIds: ['p-shoe'] });
    const manjian = await createTemplate({ kind: 'FIXED', amount: 2000, threshold: 10000 });
    const [cShort, cScoped, cManjian] = [await claimOk(m, short.id), await claimOk(m, scoped.id), await claimOk(m, manjian.id)];
    const lines = [line('p-hat', 5000)];
    const later = new Date(Date.now() + 2 * DAY);
    const refusal = (p: Promise<unknown>) =>
      p.then(
        () => null,
        (e: { extensions: Record<string, unknown> }) => e.extensions,
      );

    expect(await refusal(coupons.offer(m, cShort, lines, 5000, later))).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'EXPIRED' });
    expect(await refusal(coupons.offer(m, cScoped, lines, 5000, new Date()))).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'OUT_OF_SCOPE',
    });
    expect(await refusal(coupons.offer(m, cManjian, lines, 5000, new Date()))).toMatchObject({
      code: 'BAD_USER_INPUT',
      reason: 'BELOW_THRESHOLD',
    });
    expect(await coupons.offer(m, cScoped, [...lines, line('p-shoe', 3000)], 8000, new Date())).toMatchObject({ discount: 100 });

    // Locking an expired coupon is refused too, and nothing is written.
    shiftMs = 2 * DAY;
    expect(await refusal(coupons.lock(cShort, m, 'late'))).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'EXPIRED' });
    expect((await entriesOf(cShort)).map((e) => e.state)).toEqual(['ISSUED']);
    const wallet = await gql(
      svc.url,
      `query($id: ID!) { _entities(representations: [{ __typename: "Member", id: $id }]) { ... on Member { coupons { available expired used locked coupons(state: EXPIRED) { edges { node { id state } } } } } } }`,
      { id: m },
      asMember(m),
    );
    expect(wallet.errors).toBeUndefined();
    const w = wallet.data!._entities[0].coupons;
    expect(w).toMatchObject({ available: 2, expired: 1, used: 0, locked: 0 });
    expect(w.coupons.edges.map((e: { node: { id: string } }) => e.node.id)).toEqual([cShort]);
  });

  test('offers list the applicable coupons, best first, never more than the eligible amount or subtotal', async () => {
    const m = newMember();
    const fixed = await createTemplate({ name: '5 off', kind: 'FIXED', amount: 500 });
    const pct = await createTemplate({ name: '10% off', kind: 'PERCENT', percentOff: 10, maxDiscount: 2000 });
    const cat = await createTemplate({
      name: 'tea 40% off',
      kind: 'PERCENT',
      percentOff: 40,
      maxDiscount: 100000,
      scope: 'CATEGORIES',
      categoryIds: ['c-tea'],
    });
    const manjian = await createTemplate({ name: '满500减60', kind: 'FIXED', amount: 6000, threshold: 50000 });
    const ids = {
      fixed: await claimOk(m, fixed.id),
      pct: await claimOk(m, pct.id),
      cat: await claimOk(m, cat.id),
      manjian: await claimOk(m, manjian.id),
    };
    const lines = [line('p-cup', 10000, 2), line('p-leaf', 1000, 1, ['c-drinks', 'c-tea'])];
    const offers = await coupons.offers(m, lines, 21000, new Date());
    // 10% of 21000 = 2100 capped at 2000; tea: 40% of the 1000 tea line only; 满减 is below its threshold.
    expect(offers.map((o) => [o.couponId, o.discount])).toEqual([
      [ids.pct, 2000],
      [ids.fixed, 500],
      [ids.cat, 400],
    ]);
    // A locked coupon is not offered; a tiny order caps the discount at the subtotal.
    await coupons.lock(ids.pct, m, 'ord');
    const small = await coupons.offers(m, [line('p-cup', 300)], 300, new Date());
    expect(small).toEqual([{ couponId: ids.fixed, templateId: fixed.id, name: '5 off', discount: 300 }]);
  });
});

describe('wallet', () => {
  test('the member and staff see the wallet; another member sees null', async () => {
    const m = await newRegistered();
    const t = await createTemplate({ kind: 'FIXED', amount: 100, perMemberLimit: 5 });
    const c1 = await claimOk(m, t.id);
    const c2 = await claimOk(m, t.id);
    await coupons.lock(c1, m, 'o');
    await coupons.consume(c1, 'o');
    const q = `query($id: ID!, $after: String) { _entities(representations: [{ __typename: "Member", id: $id }]) { ... on Member { coupons { available used coupons(first: 1, after: $after) { edges { node { id state usedOrderId } } pageInfo { hasNextPage endCursor } } } } } }`;
    const mine = await gql(svc.url, q, { id: m }, asMember(m));
    expect(mine.errors).toBeUndefined();
    const w = mine.data!._entities[0].coupons;
    expect(w).toMatchObject({ available: 1, used: 1 });
    expect(w.coupons.edges[0].node).toMatchObject({ id: c2, state: 'AVAILABLE' });
    expect(w.coupons.pageInfo.hasNextPage).toBe(true);
    const next = await gql(svc.url, q, { id: m, after: w.coupons.pageInfo.endCursor }, asStaff());
    expect(next.data!._entities[0].coupons.coupons.edges[0].node).toMatchObject({ id: c1, state: 'USED', usedOrderId: 'o' });
    const theirs = await gql(svc.url, q, { id: m }, asMember(newMember()));
    expect(theirs.data!._entities[0].coupons).toBeNull();
  });
});

describe('grants', () => {
  test('staff grant a grant-only coupon once per idempotency key', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false, perMemberLimit: 5 });
    const memberId = await newRegistered();
    const input = { templateId: t.id, memberId, idempotencyKey: 'win-back-1', reason: 'win-back' };
    const [a, b] = await Promise.all([gql(svc.url, GRANT, { input }, asStaff()), gql(svc.url, GRANT, { input }, asStaff())]);
    expect(a.errors).toBeUndefined();
    expect(a.data!.grantCoupon).toMatchObject({ state: 'AVAILABLE', template: { id: t.id } });
    expect(a.data!.grantCoupon.id).toBe(b.data!.grantCoupon.id);
    expect(await countCoupons({ memberId })).toBe(1);
    // Another staff key is another coupon.
    const c = await gql(svc.url, GRANT, { input: { ...input, idempotencyKey: 'win-back-2' } }, asStaff());
    expect(c.data!.grantCoupon.id).not.toBe(a.data!.grantCoupon.id);
  });

  test('a grant to an unknown member is NOT_FOUND', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false });
    const res = await gql(
      svc.url,
      GRANT,
      { input: { templateId: t.id, memberId: newMember(), idempotencyKey: 'k', reason: 'r' } },
      asStaff(),
    );
    expect(res.errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
  });

  test('membership.coupon.grant over NATS is idempotent per key', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false, perMemberLimit: 3 });
    const m = newMember();
    const req = { key: 'live:room-1:m', memberId: m, templateId: t.id, reason: 'live coupon' };
    const replies = await Promise.all([svc.bus.request('membership.coupon.grant', req), svc.bus.request('membership.coupon.grant', req)]);
    expect(replies[0]!.couponId).toBe(replies[1]!.couponId);
    expect((await svc.bus.request('membership.coupon.grant', req)).couponId).toBe(replies[0]!.couponId);
    expect(await countCoupons({ memberId: m })).toBe(1);
    const refused = await svc.bus
      .request('membership.coupon.grant', { ...req, key: 'x', templateId: new Types.ObjectId().toHexString() })
      .catch((e: BusRequestError) => e.code);
    expect(refused).toBe('NOT_FOUND');
  });

  test('membership.coupon.template answers a template’s name and whether it is still issued', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false });
    const name = (await svc.bus.request('membership.coupon.template', { templateId: t.id })).name;
    expect(await svc.bus.request('membership.coupon.template', { templateId: t.id })).toEqual({ templateId: t.id, name, active: true });
    await gql(svc.url, STOP, { id: t.id }, asStaff());
    expect((await svc.bus.request('membership.coupon.template', { templateId: t.id })).active).toBe(false);
    for (const unknown of [new Types.ObjectId().toHexString(), 'nope']) {
      const refused = await svc.bus.request('membership.coupon.template', { templateId: unknown }).catch((e: BusRequestError) => e.code);
      expect(refused).toBe('NOT_FOUND');
    }
  });

  test('referral.reward.granted grants once, even published twice (same event id, then a new one)', async () => {
    const t = await createTemplate({ kind: 'FIXED', amount: 100, claimable: false, perMemberLimit: 5 });
    const m = newMember();
    const data = { rewardId: 'reward-1', memberId: m, kind: 'COUPON' as const, couponTemplateId: t.id, reason: 'invited a friend' };
    await svc.bus.publish('referral.reward.granted', data, { id: 'evt-reward-1' });
    await svc.bus.publish('referral.reward.granted', data, { id: 'evt-reward-1' });
    await svc.bus.publish('referral.reward.granted', data, { id: 'evt-reward-1-redelivered-by-another-id' });
    await svc.bus.publish('referral.reward.granted', {
      ...data,
      rewardId: 'reward-points',
      kind: 'POINTS',
      couponTemplateId: undefined,
      points: 10,
    });
    await eventually(async () => (await countCoupons({ memberId: m })) === 1);
    await new Promise((r) => setTimeout(r, 500));
    expect(await countCoupons({ memberId: m })).toBe(1);
  });
});

describe('group-exclusive templates (专属福利)', () => {
  /** `${groupId}:${memberId}` of the members in a group, as the test's stand-in for community. */
  const inGroup = new Set<string>();
  /** A group whose community never answers in time. */
  const DOWN = 'group-down';
  beforeAll(() => {
    svc.bus.reply('community.group.membership', async ({ groupId, memberId }) => {
      if (groupId === DOWN) await new Promise((r) => setTimeout(r, 4_000));
      return { member: inGroup.has(`${groupId}:${memberId}`) };
    });
  });
  const reasonOf = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions;
  const slotsOf = (templateId: string) => svc.db.collection('coupon_slots').countDocuments({ templateId });

  test('a member of the group claims; a non-member is FORBIDDEN NOT_IN_GROUP; community down is UNAVAILABLE; refusals write nothing', async () => {
    const groupId = new Types.ObjectId().toHexString();
    const t = await createTemplate({ name: '群专属券', kind: 'FIXED', amount: 500, groupId });
    const shown = await gql(svc.url, 'query($id: ID!) { couponTemplate(id: $id) { groupId } }', { id: t.id }, asStaff());
    expect(shown.data?.couponTemplate).toEqual({ groupId });

    const [member, outsider] = [newMember(), newMember()];
    inGroup.add(`${groupId}:${member}`);
    await claimOk(member, t.id);

    const refused = await claim(outsider, t.id, 'k-out');
    expect(reasonOf(refused)).toMatchObject({ code: 'FORBIDDEN', reason: 'NOT_IN_GROUP' });
    expect(await countCoupons({ templateId: t.id, memberId: outsider })).toBe(0);

    const down = await createTemplate({ name: '群专属券', kind: 'FIXED', amount: 500, groupId: DOWN });
    inGroup.add(`${DOWN}:${member}`);
    expect(reasonOf(await claim(member, down.id, 'k-down'))?.code).toBe('UNAVAILABLE');
    expect(await countCoupons({ templateId: down.id })).toBe(0);
    expect(await slotsOf(down.id)).toBe(0);
    // Only the member's claim took slots.
    expect(await slotsOf(t.id)).toBe(1);
  }, 30_000);

  test('the public coupon centre leaves group-exclusive templates out', async () => {
    const exclusive = await createTemplate({ name: '群专属券', kind: 'FIXED', amount: 500, groupId: 'welcome' });
    const open = await createTemplate({ name: '公开券', kind: 'FIXED', amount: 500 });
    const list = await gql(svc.url, '{ couponTemplates(first: 100) { edges { node { id } } } }', {}, asMember(newMember()));
    const ids = list.data!.couponTemplates.edges.map((e: { node: { id: string } }) => e.node.id);
    expect(ids).toContain(open.id);
    expect(ids).not.toContain(exclusive.id);
  });
});
