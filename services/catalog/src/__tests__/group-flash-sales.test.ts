import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { AppError, BusRequestError, type RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';

// Group-exclusive flash sales (社群专属秒杀) in catalog on its own: the real service, FerretDB and
// NATS, with community played by a replier on the same NATS that the test controls (who is in
// which group, whether it answers, how often it was asked).

let nats: InfraProcess;
let svc: RunningService;
const inGroup = new Set<string>();
let communityDown = false;
let asked = 0;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('catalog', nats.url)));
  svc.bus.reply('community.group.membership', async ({ groupId, memberId }) => {
    asked++;
    if (communityDown) throw new AppError('UNAVAILABLE', 'community is down');
    return { member: inGroup.has(`${groupId}:${memberId}`) };
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown> = {}, headers = asGateway('catalog', staff())) =>
  gql(svc.url, query, variables, headers);
const HOUR = 3_600_000;

async function groupFlashSale(groupId: string | null, price = 10000, flashPrice = 4000) {
  const product = await call('mutation($input: CreateProductInput!) { createProduct(input: $input) { skus { id } } }', {
    input: { name: `群秒杀 ${randomUUID().slice(0, 8)}`, status: 'ON_SALE', skus: [{ name: '标准', price, stock: 10 }] },
  });
  const skuId = product.data!.createProduct.skus[0].id as string;
  const res = await call('mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id groupId } } }', {
    input: {
      skuId,
      flashPrice,
      quota: 4,
      perMemberLimit: 2,
      startsAt: new Date(Date.now() - 1000).toISOString(),
      endsAt: new Date(Date.now() + HOUR).toISOString(),
      ...(groupId ? { groupId } : {}),
    },
  });
  expect(res.errors).toBeUndefined();
  expect(res.data!.createFlashSale.flashSale.groupId).toBe(groupId);
  return { skuId, flashSaleId: res.data!.createFlashSale.flashSale.id as string };
}

const quote = (memberId: string, lines: { skuId: string; quantity: number }[], orderId?: string) =>
  svc.bus.request('catalog.price.quote', { lines, memberId, ...(orderId ? { orderId } : {}) }, { timeoutMs: 20_000 });
const kinds = async (memberId: string, lines: { skuId: string; quantity: number }[], orderId?: string) =>
  (await quote(memberId, lines, orderId)).lines.map((l) => `${l.priceKind}:${l.unitPrice}`);
const reserve = (orderId: string, memberId: string, skuId: string, flashSaleId: string) =>
  svc.bus
    .request('catalog.stock.reserve', { orderId, memberId, lines: [{ skuId, quantity: 1, flashSaleId }] }, { timeoutMs: 20_000 })
    .catch((err: unknown) => (err instanceof BusRequestError ? err.code : String(err)));
const remaining = async (flashSaleId: string) =>
  (await call('query($id: ID!) { flashSale(id: $id) { remaining } }', { id: flashSaleId })).data!.flashSale.remaining as number;

test('a quote gives the flash price to members of the group only, asking community once per group', async () => {
  const groupId = oid();
  const a = await groupFlashSale(groupId);
  const b = await groupFlashSale(groupId, 8000, 3000);
  const open = await groupFlashSale(null, 6000, 2000);
  const member = oid();
  inGroup.add(`${groupId}:${member}`);
  const lines = [a, b, open].map((s) => ({ skuId: s.skuId, quantity: 1 }));

  asked = 0;
  expect(await kinds(member, lines)).toEqual(['FLASH:4000', 'FLASH:3000', 'FLASH:2000']);
  expect(asked).toBe(1);
  asked = 0;
  expect(await kinds(oid(), lines)).toEqual(['LIST:10000', 'LIST:8000', 'FLASH:2000']);
  expect(asked).toBe(1);
});

test('community not answering: the group line is quoted at the normal price (a warning logged), the flash price once it answers', async () => {
  const groupId = oid();
  const sale = await groupFlashSale(groupId);
  const member = oid();
  inGroup.add(`${groupId}:${member}`);
  communityDown = true;
  try {
    expect(await kinds(member, [{ skuId: sale.skuId, quantity: 1 }], oid())).toEqual(['LIST:10000']);
  } finally {
    communityDown = false;
  }
  expect(await remaining(sale.flashSaleId)).toBe(4);
  expect(await kinds(member, [{ skuId: sale.skuId, quantity: 1 }], oid())).toEqual(['FLASH:4000']);
});

test('a crafted reservation of a group flash sale by a non-member is FORBIDDEN and takes nothing; a member reserves', async () => {
  const groupId = oid();
  const sale = await groupFlashSale(groupId);
  const outsider = oid();
  const refused = await svc.bus
    .request('catalog.stock.reserve', {
      orderId: oid(),
      memberId: outsider,
      lines: [{ skuId: sale.skuId, quantity: 1, flashSaleId: sale.flashSaleId }],
    })
    .catch((err: unknown) => err as BusRequestError);
  expect(refused).toBeInstanceOf(BusRequestError);
  expect((refused as BusRequestError).code).toBe('FORBIDDEN');
  expect(await remaining(sale.flashSaleId)).toBe(4);
  expect(await svc.db.collection('flash_slots').countDocuments({ flashSaleId: sale.flashSaleId })).toBe(0);

  const member = oid();
  inGroup.add(`${groupId}:${member}`);
  expect(await reserve(oid(), member, sale.skuId, sale.flashSaleId)).toMatchObject({ reservedAt: expect.any(String) });
  expect(await remaining(sale.flashSaleId)).toBe(3);
});

test('customers see a group flash sale only while in its group; a replay with another groupId is CONFLICT', async () => {
  const groupId = oid();
  const sale = await groupFlashSale(groupId);
  const member = oid();
  inGroup.add(`${groupId}:${member}`);
  const ONE = 'query($id: ID!) { flashSale(id: $id) { id groupId } }';
  expect((await call(ONE, { id: sale.flashSaleId }, asGateway('catalog', customer(oid())))).data!.flashSale).toBeNull();
  expect((await call(ONE, { id: sale.flashSaleId }, asGateway('catalog', customer(member)))).data!.flashSale).toEqual({
    id: sale.flashSaleId,
    groupId,
  });
  inGroup.delete(`${groupId}:${member}`);
  expect((await call(ONE, { id: sale.flashSaleId }, asGateway('catalog', customer(member)))).data!.flashSale).toBeNull();

  const input = {
    skuId: sale.skuId,
    flashPrice: 1000,
    quota: 1,
    perMemberLimit: 1,
    startsAt: new Date(Date.now() - 1000).toISOString(),
    endsAt: new Date(Date.now() + HOUR).toISOString(),
    idempotencyKey: randomUUID(),
  };
  const CREATE = 'mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }';
  expect((await call(CREATE, { input: { ...input, groupId } })).errors).toBeUndefined();
  const other = await call(CREATE, { input: { ...input, groupId: oid() } });
  expect(other.errors?.[0]?.extensions?.code).toBe('CONFLICT');
});
