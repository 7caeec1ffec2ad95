// Bargains (砍价) against the real FerretDB and NATS: staff offers priced from catalog's quote,
// helpers racing for the cuts, the floor reached exactly, reproducible cuts, self-help and device
// velocity refused, and the referral.price.quote|lock|release contract checkout uses.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { envelope } from '@flywheel/events';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { AppError, type BusRequestError } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningReferral } from '../../main';
import { bargainCuts } from '../cuts';

jest.setTimeout(90_000);

const HOUR = 3_600_000;
let nats: InfraProcess;
let svc: RunningReferral;
let clock = new Date('2026-06-01T10:00:00Z');
/** catalog.price.quote as catalog answers it: these SKUs exist at these list prices. */
const skus = new Map<string, number>();

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)), { now: () => clock, sweepers: false });
  svc.bus.reply('catalog.price.quote', async ({ lines }) => {
    const priced = lines.map((l) => {
      const unitPrice = skus.get(l.skuId);
      if (unitPrice === undefined) throw new AppError('NOT_FOUND', `SKU ${l.skuId} not found`);
      return { ...l, productId: l.skuId, unitPrice, priceKind: 'LIST' as const, name: 'Teapot', skuName: 'Blue' };
    });
    return { lines: priced, total: priced.reduce((a, l) => a + l.unitPrice * l.quantity, 0), currency: 'CNY' as const };
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const newId = () => new Types.ObjectId().toHexString();
const as = (memberId: string) => asGateway('referral', customer(memberId));
const asStaff = () => asGateway('referral', staff());
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  gql(svc.url, query, variables, headers);
type Res = { errors?: readonly { extensions?: Record<string, unknown> }[] };
const code = (res: Res) => res.errors?.[0]?.extensions?.code;
const reason = (res: Res) => res.errors?.[0]?.extensions?.reason;

const BARGAIN = 'id currentPrice helpers status expiresAt starter { id } offer { id floorPrice } cuts { number amount helper { id } }';
const CREATE = `mutation($i: CreateBargainOfferInput!) { createBargainOffer(input: $i) {
  id skuId startPrice floorPrice helpersNeeded stock deviceHelpsPerHour } }`;
const START = `mutation($o: ID!, $k: String!) { startBargain(offerId: $o, idempotencyKey: $k) { ${BARGAIN} } }`;
const HELP = `mutation($b: ID!, $d: String!) { helpBargain(bargainId: $b, deviceId: $d) { number amount bargain { ${BARGAIN} } } }`;
const GET = `query($id: ID!) { bargain(id: $id) { ${BARGAIN} } }`;

async function newOffer(more: Record<string, unknown> = {}, listPrice = 10_000) {
  const skuId = newId();
  skus.set(skuId, listPrice);
  const input = {
    skuId,
    floorPrice: 1_000,
    helpersNeeded: 5,
    durationHours: 24,
    startsAt: new Date(clock.getTime() - HOUR).toISOString(),
    endsAt: new Date(clock.getTime() + 240 * HOUR).toISOString(),
    deviceHelpsPerHour: 100,
    ...more,
  };
  const res = await call(CREATE, { i: input }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createBargainOffer as { id: string; skuId: string; startPrice: number };
}
async function startAs(memberId: string, offerId: string, key = randomUUID()) {
  const res = await call(START, { o: offerId, k: key }, as(memberId));
  expect(res.errors).toBeUndefined();
  return res.data!.startBargain as { id: string; currentPrice: number; status: string };
}
const help = (bargainId: string, helperId = newId(), deviceId: string = randomUUID()) =>
  call(HELP, { b: bargainId, d: deviceId }, as(helperId));
const seedOf = async (bargainId: string) => (await svc.db.collection('bargains').findOne({ _id: bargainId as never }))!.seed as string;

describe('createBargainOffer', () => {
  test("the start price defaults to the SKU's list price; a replayed key returns the first offer", async () => {
    const skuId = newId();
    skus.set(skuId, 8_800);
    const window = { startsAt: clock.toISOString(), endsAt: new Date(clock.getTime() + HOUR).toISOString() };
    const i = { skuId, floorPrice: 800, helpersNeeded: 3, durationHours: 2, stock: 10, idempotencyKey: 'k1', ...window };
    const [a, b] = await Promise.all([call(CREATE, { i }, asStaff()), call(CREATE, { i }, asStaff())]);
    expect(a.data!.createBargainOffer).toEqual({ ...b.data!.createBargainOffer });
    expect(a.data!.createBargainOffer).toMatchObject({ skuId, startPrice: 8_800, floorPrice: 800, stock: 10, deviceHelpsPerHour: 3 });
    expect(await svc.db.collection('bargain_offers').countDocuments({ skuId })).toBe(1);
  });

  test('an unknown SKU is NOT_FOUND; bad prices and counts are BAD_USER_INPUT; customers are FORBIDDEN', async () => {
    const window = { startsAt: clock.toISOString(), endsAt: new Date(clock.getTime() + HOUR).toISOString(), durationHours: 1 };
    expect(code(await call(CREATE, { i: { skuId: newId(), floorPrice: 1, helpersNeeded: 1, ...window } }, asStaff()))).toBe('NOT_FOUND');
    const skuId = newId();
    skus.set(skuId, 1_000);
    for (const bad of [
      { floorPrice: 0, helpersNeeded: 1 },
      { floorPrice: 1_000, helpersNeeded: 1 },
      { floorPrice: 996, helpersNeeded: 5 },
      { floorPrice: 10, helpersNeeded: 101 },
      { floorPrice: 10, helpersNeeded: 2, startPrice: 5 },
      { floorPrice: 10, helpersNeeded: 2, endsAt: window.startsAt },
    ]) {
      expect(code(await call(CREATE, { i: { skuId, ...window, ...bad } }, asStaff()))).toBe('BAD_USER_INPUT');
    }
    expect(code(await call(CREATE, { i: { skuId, floorPrice: 10, helpersNeeded: 2, ...window } }, as(newId())))).toBe('FORBIDDEN');
  });
});

describe('startBargain and helpBargain', () => {
  test('20 concurrent helpers on a 5-helper bargain: exactly 5 cuts, summing exactly to the floor, the rest FLOOR_REACHED', async () => {
    const offer = await newOffer();
    const starter = newId();
    const bargain = await startAs(starter, offer.id);
    expect(bargain).toMatchObject({ currentPrice: 10_000, status: 'OPEN' });
    const results = await Promise.all(Array.from({ length: 20 }, () => help(bargain.id)));
    const ok = results.filter((r) => r.errors === undefined);
    expect(ok).toHaveLength(5);
    for (const r of results.filter((x) => x.errors)) expect([code(r), reason(r)]).toEqual(['CONFLICT', 'FLOOR_REACHED']);
    expect(ok.map((r) => r.data!.helpBargain.number).sort()).toEqual([1, 2, 3, 4, 5]);
    const cuts = bargainCuts(await seedOf(bargain.id), 9_000, 5);
    for (const r of ok) expect(r.data!.helpBargain.amount).toBe(cuts[r.data!.helpBargain.number - 1]);

    const after = (await call(GET, { id: bargain.id }, as(starter))).data!.bargain;
    expect(after).toMatchObject({ currentPrice: 1_000, helpers: 5, status: 'FLOOR_REACHED', starter: { id: starter } });
    expect(after.cuts.map((c: { amount: number }) => c.amount)).toEqual(cuts);
    expect(after.cuts.reduce((a: number, c: { amount: number }) => a + c.amount, 0)).toBe(9_000);
    expect(after.cuts.every((c: { helper: { id: string } | null }) => c.helper !== null)).toBe(true);
    // A friend sees the cuts but not who made them.
    const friend = (await call(GET, { id: bargain.id }, as(newId()))).data!.bargain;
    expect(friend.cuts.every((c: { helper: unknown }) => c.helper === null)).toBe(true);
    expect(await svc.db.collection('bargain_helps').countDocuments({ bargainId: bargain.id })).toBe(5);
    expect(await svc.db.collection('bargain_device_slots').countDocuments({ offerId: offer.id })).toBe(5);
  });

  test('cuts are reproducible: each helper k gets the cut of the stored seed, in order; prices never pass the floor', async () => {
    const offer = await newOffer({ helpersNeeded: 7, floorPrice: 2_345 }, 9_999);
    const bargain = await startAs(newId(), offer.id);
    const cuts = bargainCuts(await seedOf(bargain.id), 9_999 - 2_345, 7);
    let price = 9_999;
    for (let k = 1; k <= 7; k++) {
      const res = (await help(bargain.id)).data!.helpBargain;
      price -= cuts[k - 1]!;
      expect(res).toMatchObject({ number: k, amount: cuts[k - 1], bargain: { currentPrice: price } });
      expect(res.bargain.currentPrice).toBeGreaterThanOrEqual(2_345);
    }
    expect(price).toBe(2_345);
  });

  test('one open bargain per member and offer, also when started concurrently; a replayed key returns its bargain', async () => {
    const offer = await newOffer();
    const member = newId();
    const started = await Promise.all([1, 2, 3, 4].map(() => startAs(member, offer.id)));
    expect(new Set(started.map((b) => b.id)).size).toBe(1);
    const key = randomUUID();
    const again = await startAs(member, offer.id, key);
    expect(again.id).toBe(started[0]!.id);
    expect(await svc.db.collection('bargains').countDocuments({ memberId: member })).toBe(1);
  });

  test('the starter helping is FORBIDDEN SELF_HELP; a helper helps once; signed-out is UNAUTHENTICATED', async () => {
    const offer = await newOffer();
    const starter = newId();
    const bargain = await startAs(starter, offer.id);
    const self = await help(bargain.id, starter);
    expect([code(self), reason(self)]).toEqual(['FORBIDDEN', 'SELF_HELP']);
    const helper = newId();
    const twice = await Promise.all([help(bargain.id, helper), help(bargain.id, helper), help(bargain.id, helper)]);
    expect(twice.filter((r) => r.errors === undefined)).toHaveLength(1);
    for (const r of twice.filter((x) => x.errors)) expect(reason(r)).toBe('ALREADY_HELPED');
    expect(code(await call(HELP, { b: bargain.id, d: randomUUID() }, asGateway('referral', null)))).toBe('UNAUTHENTICATED');
    expect(code(await help(bargain.id, newId(), 'bad id'))).toBe('BAD_USER_INPUT');
    expect(code(await help('nope'))).toBe('BAD_USER_INPUT');
    expect(code(await help(newId()))).toBe('NOT_FOUND');
    expect(await svc.db.collection('bargain_helps').countDocuments({ bargainId: bargain.id })).toBe(1);
  });

  test('more helps from one device than the offer allows in an hour are RATE_LIMITED HELPER_VELOCITY; the next hour is fresh', async () => {
    const offer = await newOffer({ deviceHelpsPerHour: 2, helpersNeeded: 10 });
    const device = randomUUID();
    const bargains = await Promise.all([1, 2, 3, 4].map(() => startAs(newId(), offer.id)));
    const results = await Promise.all(bargains.map((b) => help(b.id, newId(), device)));
    expect(results.filter((r) => r.errors === undefined)).toHaveLength(2);
    for (const r of results.filter((x) => x.errors)) expect([code(r), reason(r)]).toEqual(['RATE_LIMITED', 'HELPER_VELOCITY']);
    // Another device is not affected.
    expect((await help(bargains[3]!.id, newId(), randomUUID())).errors).toBeUndefined();
    clock = new Date(clock.getTime() + HOUR);
    const fresh = await Promise.all(bargains.slice(0, 3).map((b) => help(b.id, newId(), device)));
    expect(fresh.filter((r) => r.errors === undefined)).toHaveLength(2);
  });
});

describe('referral.price.quote|lock|release (offer kind BARGAIN)', () => {
  async function atFloor(more: Record<string, unknown> = {}) {
    const offer = await newOffer({ helpersNeeded: 3, ...more });
    const starter = newId();
    const bargain = await startAs(starter, offer.id);
    for (let i = 0; i < 3; i++) expect((await help(bargain.id)).errors).toBeUndefined();
    return { offer, starter, bargain };
  }
  const offerOf = (bargainId: string) => ({ kind: 'BARGAIN' as const, bargainId });
  const quote = (memberId: string, bargainId: string, skuId: string, quantity = 1, unitPrice = 10_000, checkoutId = newId()) =>
    svc.bus.request('referral.price.quote', { checkoutId, memberId, offer: offerOf(bargainId), lines: [{ skuId, quantity, unitPrice }] });
  const lock = (memberId: string, bargainId: string, checkoutId: string) =>
    svc.bus.request('referral.price.lock', { checkoutId, memberId, offer: offerOf(bargainId), adjustments: [] });
  const failure = (p: Promise<unknown>) =>
    p.then(
      () => null,
      (e: BusRequestError) => ({ code: e.code, message: e.message }),
    );

  test('quote brings the one-unit line to the floor; only the starter; more than one unit is BAD_USER_INPUT', async () => {
    const { offer, starter, bargain } = await atFloor();
    expect(await quote(starter, bargain.id, offer.skuId)).toEqual({
      adjustments: [{ kind: 'BARGAIN', skuId: offer.skuId, amount: -9_000, label: expect.any(String), ref: `bargain:${bargain.id}` }],
    });
    // A catalog price already under the bargain price: no adjustment.
    expect(await quote(starter, bargain.id, offer.skuId, 1, 900)).toEqual({ adjustments: [] });
    expect(await failure(quote(starter, bargain.id, offer.skuId, 2))).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await failure(quote(starter, bargain.id, newId()))).toMatchObject({ code: 'BAD_USER_INPUT' });
    expect(await failure(quote(newId(), bargain.id, offer.skuId))).toMatchObject({
      code: 'FORBIDDEN',
      message: expect.stringMatching(/^NOT_STARTER/),
    });
    expect(await failure(quote(starter, 'no-such-bargain', offer.skuId))).toMatchObject({ code: 'NOT_FOUND' });
  });

  test('two checkouts locking concurrently: one wins, the other CONFLICT ALREADY_BOUGHT; a replay is idempotent; release frees it', async () => {
    const { starter, bargain } = await atFloor();
    const [a, b] = [newId(), newId()];
    const outcomes = await Promise.all([failure(lock(starter, bargain.id, a)), failure(lock(starter, bargain.id, b))]);
    expect(outcomes.filter((o) => o === null)).toHaveLength(1);
    const loser = outcomes.find((o) => o !== null)!;
    expect(loser).toMatchObject({ code: 'CONFLICT', message: expect.stringMatching(/^ALREADY_BOUGHT/) });
    const winner = outcomes[0] === null ? a : b;
    const other = winner === a ? b : a;
    expect(await failure(lock(starter, bargain.id, winner))).toBeNull();
    expect(await svc.bus.request('referral.price.release', { checkoutId: other })).toEqual({ checkoutId: other, released: false });
    expect(await svc.bus.request('referral.price.release', { checkoutId: winner })).toEqual({ checkoutId: winner, released: true });
    expect(await svc.bus.request('referral.price.release', { checkoutId: winner })).toEqual({ checkoutId: winner, released: false });
    // Freed: the other checkout may take it now; its order cancelled unpaid frees it again.
    expect(await failure(lock(starter, bargain.id, other))).toBeNull();
    const cancelled = envelope(
      'orders.order.cancelled',
      { orderId: other, memberId: starter, reason: 'EXPIRED', lines: [], cancelledAt: clock.toISOString() },
      { id: randomUUID() },
    );
    await svc.modules.bargain.on!['orders.order.cancelled']!(cancelled);
    expect(await failure(lock(starter, bargain.id, winner))).toBeNull();
  });

  test('paid: BOUGHT once; no further lock, quote or help; release after payment keeps it', async () => {
    const { offer, starter, bargain } = await atFloor();
    const orderId = newId();
    await lock(starter, bargain.id, orderId);
    const paid = envelope(
      'orders.order.paid',
      {
        orderId,
        memberId: starter,
        total: 1_000,
        currency: 'CNY',
        lines: [{ skuId: offer.skuId, productId: offer.skuId, quantity: 1, unitPrice: 1_000, priceKind: 'LIST' }],
        source: { kind: 'DIRECT' },
        paymentId: newId(),
        paidAt: clock.toISOString(),
      },
      { id: randomUUID() },
    );
    await svc.modules.bargain.on!['orders.order.paid']!(paid);
    await svc.modules.bargain.on!['orders.order.paid']!(paid);
    expect((await call(GET, { id: bargain.id }, as(starter))).data!.bargain.status).toBe('BOUGHT');
    expect(await svc.bus.request('referral.price.release', { checkoutId: orderId })).toEqual({ checkoutId: orderId, released: false });
    expect(await failure(lock(starter, bargain.id, newId()))).toMatchObject({ code: 'CONFLICT' });
    expect(await failure(quote(starter, bargain.id, offer.skuId))).toMatchObject({ code: 'CONFLICT' });
    expect(reason(await help(bargain.id))).toBe('BARGAIN_BOUGHT');
    // Bought, the member may start another bargain on the offer; a replay of that key returns it.
    const key = randomUUID();
    const next = await startAs(starter, offer.id, key);
    expect(next.id).not.toBe(bargain.id);
    expect((await startAs(starter, offer.id, key)).id).toBe(next.id);
  });

  test('a stock cap of 1: the second bargain to lock is OUT_OF_STOCK until the first is released', async () => {
    const offer = await newOffer({ helpersNeeded: 1, stock: 1 });
    const [m1, m2] = [newId(), newId()];
    const [b1, b2] = [await startAs(m1, offer.id), await startAs(m2, offer.id)];
    const [c1, c2] = [newId(), newId()];
    expect(await failure(lock(m1, b1.id, c1))).toBeNull();
    expect(await failure(lock(m2, b2.id, c2))).toMatchObject({ code: 'OUT_OF_STOCK', message: expect.stringMatching(/^BARGAIN_SOLD_OUT/) });
    await svc.bus.request('referral.price.release', { checkoutId: c1 });
    expect(await failure(lock(m2, b2.id, c2))).toBeNull();
  });

  test('expiry: past expiresAt the bargain is EXPIRED (the sweep marks it), cannot be helped, quoted or locked; a new one can start', async () => {
    const offer = await newOffer({ durationHours: 2 });
    const starter = newId();
    const bargain = await startAs(starter, offer.id);
    expect((await help(bargain.id)).errors).toBeUndefined();
    clock = new Date(clock.getTime() + 2 * HOUR);
    expect(await svc.sweep(clock)).toMatchObject({ bargain: { expired: 1 } });
    expect((await svc.db.collection('bargains').findOne({ _id: bargain.id as never }))!.status).toBe('EXPIRED');
    expect((await call(GET, { id: bargain.id }, as(starter))).data!.bargain.status).toBe('EXPIRED');
    expect(reason(await help(bargain.id))).toBe('BARGAIN_EXPIRED');
    expect(await failure(quote(starter, bargain.id, offer.skuId))).toMatchObject({
      code: 'CONFLICT',
      message: expect.stringMatching(/^BARGAIN_EXPIRED/),
    });
    expect(await failure(lock(starter, bargain.id, newId()))).toMatchObject({ code: 'CONFLICT' });
    const next = await startAs(starter, offer.id);
    expect(next.id).not.toBe(bargain.id);
    expect(next.status).toBe('OPEN');
  });
});
