// Group buys (拼团) against the real FerretDB and NATS, through checkout's pricing requests as orders
// sends them: slots under concurrent joins (exactly N), release and re-take, the outcome once per
// group (filled, or by the sweep at expiry) with its event, and a payment that lands after a failure.
import { Types } from 'mongoose';
import { asGateway, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { EventEnvelope } from '@flywheel/events';
import { BusRequestError } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningReferral } from '../../main';
import { groupIdFor } from '..';

jest.setTimeout(90_000);

let nats: InfraProcess;
let svc: RunningReferral;
let offset = 0;
const clock = () => new Date(Date.now() + offset);
const events: EventEnvelope<'referral.groupbuy.succeeded' | 'referral.groupbuy.failed'>[] = [];
const SKU = new Types.ObjectId().toHexString();
const PRICE = 5900;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)), { now: clock, sweepers: false });
  // Catalog's price of the SKU (the only catalog answer an offer needs).
  svc.bus.reply('catalog.price.quote', async ({ lines }) => ({
    lines: lines.map((l) => ({ ...l, productId: SKU, unitPrice: PRICE, priceKind: 'LIST' as const, name: 'x', skuName: 'y' })),
    total: PRICE,
    currency: 'CNY' as const,
  }));
  await svc.bus.consume('referral.groupbuy.succeeded', async (env) => void events.push(env));
  await svc.bus.consume('referral.groupbuy.failed', async (env) => void events.push(env));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const newId = () => new Types.ObjectId().toHexString();
const OFFER = 'mutation($i: CreateGroupBuyOfferInput!) { createGroupBuyOffer(input: $i) { id } }';

async function createOffer(over: Record<string, unknown> = {}): Promise<string> {
  const res = await gql(
    svc.url,
    OFFER,
    {
      i: {
        skuId: SKU,
        groupSize: 3,
        groupPrice: 3900,
        durationMinutes: 30,
        startsAt: new Date(Date.now() - 60_000).toISOString(),
        endsAt: new Date(Date.now() + 86_400_000).toISOString(),
        stockCap: 30,
        perMemberLimit: 2,
        virtualCompletion: false,
        idempotencyKey: newId(),
        ...over,
      },
    },
    asGateway('referral', staff()),
  );
  expect(res.errors).toBeUndefined();
  return res.data!.createGroupBuyOffer.id;
}

/** What orders does for one checkout: quote, then lock; the refusal's code and reason, or null. */
async function checkout(offerId: string, groupId?: string, memberId = newId(), checkoutId = newId()) {
  const offer = { kind: 'GROUP_BUY' as const, offerId, ...(groupId ? { groupId } : {}) };
  try {
    const q = await svc.bus.request('referral.price.quote', {
      checkoutId,
      memberId,
      offer,
      lines: [{ skuId: SKU, quantity: 1, unitPrice: PRICE }],
    });
    await svc.bus.request('referral.price.lock', { checkoutId, memberId, offer, adjustments: q.adjustments });
    return { checkoutId, memberId, refused: null };
  } catch (err) {
    if (!(err instanceof BusRequestError)) throw err;
    return { checkoutId, memberId, refused: `${err.code}:${err.reason}` };
  }
}

const paid = (orderId: string, memberId: string) =>
  svc.modules.groupbuy.groupBuys.orderPaid({
    orderId,
    memberId,
    total: 3900,
    currency: 'CNY',
    lines: [{ skuId: SKU, productId: SKU, quantity: 1, unitPrice: PRICE, priceKind: 'LIST' }],
    source: { kind: 'DIRECT' },
    paymentId: newId(),
    paidAt: new Date().toISOString(),
  });
const group = (id: string) => svc.modules.groupbuy.groupBuys.group(id);

test('ten checkouts racing into a group of 3: exactly 3 slots, the rest CONFLICT GROUP_FULL; a replayed lock takes nothing twice', async () => {
  const offerId = await createOffer();
  const opener = await checkout(offerId);
  expect(opener.refused).toBeNull();
  const groupId = groupIdFor(opener.checkoutId);
  const results = await Promise.all(Array.from({ length: 10 }, () => checkout(offerId, groupId)));
  expect(results.filter((r) => r.refused === null)).toHaveLength(2);
  expect(results.filter((r) => r.refused === 'CONFLICT:GROUP_FULL')).toHaveLength(8);
  expect(await group(groupId)).toMatchObject({ slotsTaken: 3, status: 'OPEN' });
  const again = await checkout(offerId, undefined, opener.memberId, opener.checkoutId);
  expect(again.refused).toBeNull();
  expect((await group(groupId))!.slotsTaken).toBe(3);
  const listed = await gql(svc.url, '{ groupBuyOffers { id active } }', {}, asGateway('referral', staff()));
  expect(listed.data!.groupBuyOffers).toContainEqual({ id: offerId, active: true });
});

test('a released slot (unpaid order cancelled) is taken again by exactly one of two racers', async () => {
  const offerId = await createOffer();
  const opener = await checkout(offerId);
  const groupId = groupIdFor(opener.checkoutId);
  const [a] = await Promise.all([checkout(offerId, groupId), checkout(offerId, groupId)]);
  expect((await group(groupId))!.slotsTaken).toBe(3);
  await svc.modules.groupbuy.groupBuys.orderCancelled({
    orderId: a!.checkoutId,
    memberId: a!.memberId,
    reason: 'EXPIRED',
    lines: [{ skuId: SKU, quantity: 1 }],
    cancelledAt: new Date().toISOString(),
  });
  expect((await group(groupId))!.slotsTaken).toBe(2);
  const racers = await Promise.all([checkout(offerId, groupId), checkout(offerId, groupId)]);
  expect(racers.map((r) => r.refused).sort()).toEqual(['CONFLICT:GROUP_FULL', null]);
  expect((await group(groupId))!.slotsTaken).toBe(3);
});

test('three payments fill the group: SUCCEEDED once, one event naming the three orders', async () => {
  const offerId = await createOffer();
  const opener = await checkout(offerId);
  const groupId = groupIdFor(opener.checkoutId);
  const members = [opener, await checkout(offerId, groupId), await checkout(offerId, groupId)];
  await Promise.all(members.map((m) => paid(m.checkoutId, m.memberId)));
  await Promise.all(members.map((m) => paid(m.checkoutId, m.memberId)));
  expect(await group(groupId)).toMatchObject({ memberCount: 3, status: 'SUCCEEDED' });
  const env = await eventually(async () => events.find((e) => e.data.groupId === groupId));
  expect(env.type).toBe('referral.groupbuy.succeeded');
  expect([...env.data.orderIds].sort()).toEqual(members.map((m) => m.checkoutId).sort());
  await new Promise((r) => setTimeout(r, 500));
  expect(events.filter((e) => e.data.groupId === groupId)).toHaveLength(1);
});

test('expiry without N paid: FAILED once by the sweep; a payment after it is failed on its own; virtual completion succeeds instead', async () => {
  const offerId = await createOffer();
  const virtualOffer = await createOffer({ virtualCompletion: true });
  const opener = await checkout(offerId);
  const groupId = groupIdFor(opener.checkoutId);
  const unpaid = await checkout(offerId, groupId);
  await paid(opener.checkoutId, opener.memberId);
  const vOpener = await checkout(virtualOffer);
  await paid(vOpener.checkoutId, vOpener.memberId);

  offset += 31 * 60_000;
  expect((await checkout(offerId, groupId)).refused).toBe('CONFLICT:GROUP_CLOSED');
  const first = await svc.sweep(clock());
  expect(first.groupbuy).toMatchObject({ failed: expect.any(Number), succeeded: expect.any(Number) });
  expect((await svc.sweep(clock())).groupbuy).toEqual({ succeeded: 0, failed: 0 });
  expect((await group(groupId))!.status).toBe('FAILED');
  expect((await group(groupIdFor(vOpener.checkoutId)))!.status).toBe('SUCCEEDED');
  const failed = await eventually(async () => events.find((e) => e.data.groupId === groupId));
  expect(failed).toMatchObject({ type: 'referral.groupbuy.failed', data: { orderIds: [opener.checkoutId] } });

  await paid(unpaid.checkoutId, unpaid.memberId);
  const late = await eventually(async () => events.find((e) => e.data.groupId === groupId && e.data.orderIds[0] === unpaid.checkoutId));
  expect(late.type).toBe('referral.groupbuy.failed');
});

test('the per-member limit and bad offers are refused with nothing held', async () => {
  const offerId = await createOffer({ perMemberLimit: 1 });
  const member = newId();
  expect((await checkout(offerId, undefined, member)).refused).toBeNull();
  expect((await checkout(offerId, undefined, member)).refused).toBe('CONFLICT:GROUP_BUY_LIMIT');
  expect((await checkout(newId())).refused).toBe('NOT_FOUND:undefined');
  const bad = await gql(
    svc.url,
    OFFER,
    {
      i: {
        skuId: SKU,
        groupSize: 3,
        groupPrice: PRICE,
        durationMinutes: 30,
        startsAt: new Date().toISOString(),
        endsAt: new Date(Date.now() + 60_000).toISOString(),
        stockCap: 30,
        perMemberLimit: 1,
        virtualCompletion: false,
        idempotencyKey: newId(),
      },
    },
    asGateway('referral', staff()),
  );
  expect(bad.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'GROUP_PRICE_NOT_BELOW_PRICE' });
});
