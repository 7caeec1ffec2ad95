// Live offers through the live subgraph against the real FerretDB and NATS. Membership and catalog
// are played by repliers on the private NATS (their own tests cover their side of the contracts).
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { AppError } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningLive } from '../../main';
import { createModels } from '../../model';
import { createOffersModule } from '..';

let nats: InfraProcess;
let svc: RunningLive;
const templates = new Map<string, { name: string; active: boolean }>();
const flashSales = new Map<string, { skuId: string; productId: string; startsAt: string; endsAt: string }>();
/** Membership's grants by key (idempotent, as membership is), and the requests it saw. */
const grants = new Map<string, string>();
let grantRequests = 0;
let membership: 'UP' | 'DOWN' | 'OUT_OF_STOCK' = 'UP';

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('live', nats.url)), { sweepers: false });
  svc.bus.reply('membership.coupon.template', async ({ templateId }) => {
    const t = templates.get(templateId);
    if (!t) throw new AppError('NOT_FOUND', 'Coupon template not found');
    return { templateId, ...t };
  });
  svc.bus.reply('membership.coupon.grant', async (req) => {
    grantRequests++;
    if (membership === 'DOWN') throw new Error('membership is down');
    if (membership === 'OUT_OF_STOCK') throw new AppError('OUT_OF_STOCK', 'This coupon is sold out');
    if (!grants.has(req.key)) grants.set(req.key, new Types.ObjectId().toHexString());
    return { couponId: grants.get(req.key)! };
  });
  svc.bus.reply('catalog.flash.describe', async ({ flashSaleId }) => {
    const f = flashSales.get(flashSaleId);
    if (!f) throw new AppError('NOT_FOUND', 'Flash sale not found');
    return { flashSaleId, ...f };
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});
afterEach(() => {
  membership = 'UP';
});

const oid = () => new Types.ObjectId().toHexString();
const STAFF = staff(oid());
const asStaff = () => asGateway('live', STAFF);
const asMember = (id: string) => asGateway('live', customer(id));
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  gql(svc.url, query, variables, headers);
const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;

function template(active = true): string {
  const id = oid();
  templates.set(id, { name: '直播专享券', active });
  return id;
}
async function room(live = true): Promise<string> {
  const r = await svc.service.scheduleLiveRoom(STAFF, { title: '专场', hostName: '小林', scheduledAt: new Date(Date.now() + 3600_000) });
  if (live) await svc.service.startLiveRoom(STAFF, r._id.toHexString());
  return r._id.toHexString();
}

const OFFER =
  'id kind couponTemplateId couponName quantity perViewerLimit remaining startsAt endsAt endedAt flashSale { id } product { id }';
const ATTACH = `mutation($input: AttachLiveCouponOfferInput!) { attachLiveCouponOffer(input: $input) { ${OFFER} } }`;
const CLAIM = `mutation($id: ID!) { claimLiveCoupon(offerId: $id) { couponId claimNumber offer { id remaining } } }`;
const FLASH = `mutation($room: ID!, $flash: ID!) { startLiveFlashDeal(roomId: $room, flashSaleId: $flash) { ${OFFER} } }`;
const END = `mutation($id: ID!) { endLiveOffer(id: $id) { id endedAt } }`;
const ROOM = `query($id: ID!) { liveRoom(id: $id) { offers { id kind remaining } activeFlashDeal { id flashSale { id } product { id } } } }`;

async function attach(roomId: string, over: Record<string, unknown> = {}): Promise<string> {
  const res = await call(ATTACH, { input: { roomId, templateId: template(), quantity: 10, ...over } }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.attachLiveCouponOffer.id;
}
const offerCount = () => svc.db.collection('live_offers').countDocuments();
const claimRecords = (offerId: string, kind: string) =>
  kind === 'UNIT'
    ? svc.db.collection('live_offer_units').countDocuments({ offerId })
    : svc.db.collection('live_offer_claims').countDocuments({ offerId, kind });

test('attaching a live coupon: checked input, template and room; nothing written on a refusal', async () => {
  const roomId = await room(false);
  const res = await call(ATTACH, { input: { roomId, templateId: template(), quantity: 5, perViewerLimit: 2 } }, asStaff());
  expect(res.errors).toBeUndefined();
  expect(res.data!.attachLiveCouponOffer).toMatchObject({
    kind: 'COUPON',
    couponName: '直播专享券',
    quantity: 5,
    perViewerLimit: 2,
    remaining: 5,
  });

  const before = await offerCount();
  const ended = await room(true);
  await svc.service.endLiveRoom(STAFF, ended);
  const refusals: [Record<string, unknown>, Record<string, string>, string][] = [
    [{ roomId, templateId: template(), quantity: 5 }, asMember(oid()), 'FORBIDDEN'],
    [{ roomId, templateId: template(), quantity: 5 }, asGateway('live', null), 'UNAUTHENTICATED'],
    [{ roomId, templateId: oid(), quantity: 5 }, asStaff(), 'NOT_FOUND'],
    [{ roomId, templateId: template(false), quantity: 5 }, asStaff(), 'BAD_USER_INPUT'],
    [{ roomId, templateId: template(), quantity: 0 }, asStaff(), 'BAD_USER_INPUT'],
    [{ roomId, templateId: template(), quantity: 2, perViewerLimit: 3 }, asStaff(), 'BAD_USER_INPUT'],
    [{ roomId, templateId: template(), quantity: 2, endsAt: new Date(Date.now() - 1000).toISOString() }, asStaff(), 'BAD_USER_INPUT'],
    [{ roomId: oid(), templateId: template(), quantity: 2 }, asStaff(), 'NOT_FOUND'],
    [{ roomId: ended, templateId: template(), quantity: 2 }, asStaff(), 'CONFLICT'],
  ];
  for (const [input, headers, expected] of refusals)
    expect([input, code(await call(ATTACH, { input }, headers))]).toEqual([input, expected]);
  expect(await offerCount()).toBe(before);
});

test('claims need a LIVE room and a running offer', async () => {
  const roomId = await room(false);
  const offerId = await attach(roomId);
  const m = oid();
  expect(code(await call(CLAIM, { id: offerId }, asMember(m)))).toBe('CONFLICT');
  expect(code(await call(CLAIM, { id: offerId }, asStaff()))).toBe('FORBIDDEN');
  expect(code(await call(CLAIM, { id: oid() }, asMember(m)))).toBe('NOT_FOUND');
  await svc.service.startLiveRoom(STAFF, roomId);
  const later = await attach(roomId, { startsAt: new Date(Date.now() + 3600_000).toISOString() });
  expect(code(await call(CLAIM, { id: later }, asMember(m)))).toBe('CONFLICT');
  expect((await call(END, { id: offerId }, asStaff())).data!.endLiveOffer.endedAt).not.toBeNull();
  expect(code(await call(CLAIM, { id: offerId }, asMember(m)))).toBe('CONFLICT');
  expect(await claimRecords(offerId, 'VIEWER')).toBe(0);
  expect(await claimRecords(later, 'VIEWER')).toBe(0);
});

test('concurrent claims never exceed the quantity or a viewer’s limit', async () => {
  const roomId = await room();
  const offerId = await attach(roomId, { quantity: 10, perViewerLimit: 2 });
  const members = Array.from({ length: 8 }, oid);
  // Each member asks four times at once: 32 claims for 10 coupons, at most 2 each.
  const results = await Promise.all(members.flatMap((m) => Array.from({ length: 4 }, () => call(CLAIM, { id: offerId }, asMember(m)))));
  const won = results.filter((r) => !r.errors);
  const refused = results.filter((r) => r.errors).map(code);
  expect(won).toHaveLength(10);
  expect(new Set(refused)).toEqual(new Set(['OUT_OF_STOCK', 'BAD_USER_INPUT']));
  expect(new Set(won.map((r) => r.data!.claimLiveCoupon.couponId)).size).toBe(10);
  const keys = [...grants.keys()].filter((k) => k.startsWith(`live:offer:${offerId}:`));
  expect(keys).toHaveLength(10);
  for (const m of members) expect(keys.filter((k) => k.includes(`:${m}:`)).length).toBeLessThanOrEqual(2);
  expect(await claimRecords(offerId, 'GRANT')).toBe(10);
  const view = await call(ROOM, { id: roomId }, asMember(members[0]!));
  expect(view.data!.liveRoom.offers).toContainEqual({ id: offerId, kind: 'COUPON', remaining: 0 });

  // Two replicas (their own models and in-process queues, one database) racing: the unique
  // records decide, not the queues.
  const db = svc.db.useDb(svc.db.name, { useCache: false });
  const replica = createOffersModule({
    db,
    bus: svc.bus,
    logger: svc.logger,
    models: createModels(db),
    rooms: svc.service,
    now: () => new Date(),
    announce: () => {},
  });
  const raced = await attach(roomId, { quantity: 7, perViewerLimit: 3 });
  const racers = Array.from({ length: 4 }, oid);
  const outcomes = await Promise.allSettled(
    racers.flatMap((m) =>
      Array.from({ length: 4 }, (_, i) =>
        i % 2 ? replica.offers.claimCoupon(customer(m), raced) : svc.modules.offers.offers.claimCoupon(customer(m), raced),
      ),
    ),
  );
  const granted = outcomes
    .filter((o) => o.status === 'fulfilled')
    .map((o) => (o as PromiseFulfilledResult<{ couponId: string }>).value.couponId);
  expect(new Set(granted).size).toBe(7);
  const racedKeys = [...grants.keys()].filter((k) => k.startsWith(`live:offer:${raced}:`));
  expect(racedKeys).toHaveLength(7);
  for (const m of racers) expect(racedKeys.filter((k) => k.includes(`:${m}:`)).length).toBeLessThanOrEqual(3);
  expect(await claimRecords(raced, 'GRANT')).toBe(7);
  expect(await claimRecords(raced, 'UNIT')).toBe(7); // one unit per claim: none lost to a claim settled twice

  // One member, limit 2, on an ample offer: five at once give two coupons.
  const ample = await attach(roomId, { quantity: 100, perViewerLimit: 2 });
  const m = oid();
  const five = await Promise.all(Array.from({ length: 5 }, () => call(CLAIM, { id: ample }, asMember(m))));
  expect(five.filter((r) => !r.errors)).toHaveLength(2);
  expect(five.filter((r) => r.errors).map(code)).toEqual(['BAD_USER_INPUT', 'BAD_USER_INPUT', 'BAD_USER_INPUT']);
  expect(await claimRecords(ample, 'UNIT')).toBe(2);
});

test('membership down: the claim is kept, and a retry or the sweep grants it once under the same key', async () => {
  const roomId = await room();
  const offerId = await attach(roomId, { quantity: 2, perViewerLimit: 1 });
  const [a, b] = [oid(), oid()];
  membership = 'DOWN';
  expect(code(await call(CLAIM, { id: offerId }, asMember(a)))).toBe('UNAVAILABLE');
  expect(code(await call(CLAIM, { id: offerId }, asMember(b)))).toBe('UNAVAILABLE');
  expect(await claimRecords(offerId, 'UNIT')).toBe(2); // held for them
  membership = 'UP';

  // a retries: the same claim (1), its unit, one coupon.
  const retried = await call(CLAIM, { id: offerId }, asMember(a));
  expect(retried.errors).toBeUndefined();
  expect(retried.data!.claimLiveCoupon).toMatchObject({ claimNumber: 1 });
  const again = await call(CLAIM, { id: offerId }, asMember(a));
  expect(again.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', reason: 'LIMIT_REACHED' });

  // b's claim is settled by the sweep (once it is old enough); a third member finds it sold out.
  expect((await svc.sweep(new Date(Date.now() + 60_000))).offers).toEqual({ offerClaimsSettled: 1 });
  expect(grants.get(`live:offer:${offerId}:${b}:1`)).toBeDefined();
  expect(code(await call(CLAIM, { id: offerId }, asMember(oid())))).toBe('OUT_OF_STOCK');
  expect(await claimRecords(offerId, 'UNIT')).toBe(2);
  expect(await claimRecords(offerId, 'GRANT')).toBe(2);

  // A repeat of a key at membership returns the same coupon: the grant is idempotent.
  const before = grantRequests;
  const repeat = await svc.bus.request('membership.coupon.grant', {
    key: `live:offer:${offerId}:${a}:1`,
    memberId: a,
    templateId: oid(),
    reason: 'retry',
  });
  expect(repeat.couponId).toBe(retried.data!.claimLiveCoupon.couponId);
  expect(grantRequests).toBe(before + 1);
});

test('a refusal by membership voids the claim and gives its unit back', async () => {
  const roomId = await room();
  const offerId = await attach(roomId, { quantity: 1, perViewerLimit: 1 });
  const m = oid();
  membership = 'OUT_OF_STOCK';
  expect(code(await call(CLAIM, { id: offerId }, asMember(m)))).toBe('OUT_OF_STOCK');
  expect((await call(ROOM, { id: roomId }, asMember(m))).data!.liveRoom.offers).toContainEqual({
    id: offerId,
    kind: 'COUPON',
    remaining: 1,
  });
  membership = 'UP';
  // The void claim does not count against the member, and the unit is theirs to take again.
  const res = await call(CLAIM, { id: offerId }, asMember(m));
  expect(res.errors).toBeUndefined();
  expect(res.data!.claimLiveCoupon).toMatchObject({ claimNumber: 2, offer: { remaining: 0 } });
  expect(code(await call(CLAIM, { id: offerId }, asMember(oid())))).toBe('OUT_OF_STOCK');
});

test('a flash deal links a catalog flash sale to a LIVE room, once, until it ends', async () => {
  const roomId = await room();
  const flashId = oid();
  const productId = oid();
  const startsAt = new Date(Date.now() - 60_000).toISOString();
  const endsAt = new Date(Date.now() + 3600_000).toISOString();
  flashSales.set(flashId, { skuId: oid(), productId, startsAt, endsAt });
  const endedFlash = oid();
  flashSales.set(endedFlash, { skuId: oid(), productId, startsAt, endsAt: new Date(Date.now() - 1000).toISOString() });

  expect(code(await call(FLASH, { room: roomId, flash: oid() }, asStaff()))).toBe('NOT_FOUND');
  expect(code(await call(FLASH, { room: roomId, flash: endedFlash }, asStaff()))).toBe('CONFLICT');
  expect(code(await call(FLASH, { room: roomId, flash: flashId }, asMember(oid())))).toBe('FORBIDDEN');
  expect(code(await call(FLASH, { room: await room(false), flash: flashId }, asStaff()))).toBe('CONFLICT');

  const [first, second] = await Promise.all([
    call(FLASH, { room: roomId, flash: flashId }, asStaff()),
    call(FLASH, { room: roomId, flash: flashId }, asStaff()),
  ]);
  expect(first.errors).toBeUndefined();
  expect(first.data!.startLiveFlashDeal).toMatchObject({
    kind: 'FLASH_DEAL',
    flashSale: { id: flashId },
    product: { id: productId },
    startsAt,
    endsAt,
  });
  expect(second.data!.startLiveFlashDeal.id).toBe(first.data!.startLiveFlashDeal.id);
  const dealId = first.data!.startLiveFlashDeal.id;
  const view = await call(ROOM, { id: roomId }, asGateway('live', null));
  expect(view.data!.liveRoom.activeFlashDeal).toEqual({ id: dealId, flashSale: { id: flashId }, product: { id: productId } });
  expect(view.data!.liveRoom.offers).toContainEqual({ id: dealId, kind: 'FLASH_DEAL', remaining: null });
  expect(code(await call(CLAIM, { id: dealId }, asMember(oid())))).toBe('BAD_USER_INPUT');

  await call(END, { id: dealId }, asStaff());
  const after = await call(ROOM, { id: roomId }, asGateway('live', null));
  expect(after.data!.liveRoom).toEqual({ offers: [], activeFlashDeal: null });
  expect(code(await call(FLASH, { room: roomId, flash: flashId }, asStaff()))).toBe('CONFLICT');
});
