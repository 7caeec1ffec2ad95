// Group-exclusive flash sales (社群专属秒杀) through the gateway (real subgraphs, FerretDB and NATS):
// catalog asks community whether a buyer is in the sale's group, so a non-member neither sees the
// sale nor pays its price at checkout, a member who joins the open group does both, staff see it
// all along, and a malformed group id is refused before anything is written.
import { randomUUID } from 'node:crypto';
import { gql } from '@flywheel/testing';
import { asStaff, createTestProduct, errorCode, newCustomer, startInProcessStack, type InProcessStack } from './in-process-stack';

jest.setTimeout(180_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const staff = asStaff();
const code = errorCode;
const HOUR = 3_600_000;

const CREATE_FLASH =
  'mutation($i: CreateFlashSaleInput!) { createFlashSale(input: $i) { flashSale { id groupId status remaining flashPrice { amount } } } }';
const LIST = 'query($g: ID) { flashSales(groupId: $g, first: 100) { edges { node { id groupId } } } }';
const ONE = 'query($id: ID!) { flashSale(id: $id) { id groupId status } }';
const SKU_FLASH = 'query($id: ID!) { product(id: $id) { skus { flashSale { id } } } }';
const PREVIEW =
  'query($i: CheckoutPreviewInput!) { checkoutPreview(input: $i) { subtotal { amount } lines { unitPrice { amount } priceKind } } }';
const PLACE = 'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id total { amount } lines { unitPrice { amount } priceKind } } }';

const createSku = (stock: number, price: number) =>
  createTestProduct(url(), staff, { price, stock }, `群专属秒杀 ${randomUUID().slice(0, 6)}`);

async function createGroup(): Promise<string> {
  const res = await gql(url(), 'mutation { createGroup(input: { name: "秒杀福利群", description: "群友专享" }) { id } }', {}, staff);
  expect(res.errors).toBeUndefined();
  return res.data!.createGroup.id as string;
}

const flashInput = (skuId: string, over: Record<string, unknown> = {}) => ({
  skuId,
  flashPrice: 5000,
  quota: 5,
  perMemberLimit: 2,
  startsAt: new Date(Date.now() - 1000).toISOString(),
  endsAt: new Date(Date.now() + HOUR).toISOString(),
  ...over,
});

const listed = async (groupId: string | null, headers?: Record<string, string>) => {
  const res = await gql(url(), LIST, { g: groupId }, headers);
  expect(res.errors).toBeUndefined();
  return res.data!.flashSales.edges.map((e: { node: { id: string } }) => e.node.id) as string[];
};

async function skuAvailable(productId: string): Promise<number> {
  const res = await gql(url(), 'query($id: ID!) { product(id: $id) { skus { stock { available } } } }', { id: productId }, staff);
  return res.data!.product.skus[0].stock.available as number;
}

/** The cache-control header the gateway sends with an answer. */
async function cacheControlOf(query: string, variables: Record<string, unknown>, headers: Record<string, string> = {}) {
  const res = await fetch(url(), {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const body = (await res.json()) as { errors?: unknown };
  expect(body.errors).toBeUndefined();
  return res.headers.get('cache-control');
}

test('a group-exclusive flash sale: hidden from and full price for a non-member; shown and flash-priced once they join; staff see it', async () => {
  const { productId, skuId } = await createSku(20, 10000);
  const groupId = await createGroup();
  const created = await gql(url(), CREATE_FLASH, { i: flashInput(skuId, { groupId }) }, staff);
  expect(created.errors).toBeUndefined();
  const flash = created.data!.createFlashSale.flashSale;
  expect(flash).toMatchObject({ groupId, status: 'LIVE', remaining: 5, flashPrice: { amount: 5000 } });
  const publicSale = await gql(url(), CREATE_FLASH, { i: flashInput((await createSku(5, 3000)).skuId, { flashPrice: 1000 }) }, staff);
  const publicId = publicSale.data!.createFlashSale.flashSale.id as string;

  // Staff see everything, with or without the group.
  expect(await listed(null, staff)).toEqual(expect.arrayContaining([flash.id, publicId]));
  expect(await listed(groupId, staff)).toEqual([flash.id]);
  expect((await gql(url(), ONE, { id: flash.id }, staff)).data!.flashSale).toEqual({ id: flash.id, groupId, status: 'LIVE' });

  // Anonymous visitors and a customer outside the group: no trace of it.
  const outsider = newCustomer();
  for (const headers of [undefined, outsider.headers]) {
    const all = await listed(null, headers);
    expect(all).toContain(publicId);
    expect(all).not.toContain(flash.id);
    expect(await listed(groupId, headers)).toEqual([]);
    expect((await gql(url(), ONE, { id: flash.id }, headers)).data!.flashSale).toBeNull();
    expect((await gql(url(), SKU_FLASH, { id: productId }, headers)).data!.product.skus[0].flashSale).toBeNull();
  }

  // The outsider is quoted and charged the normal price; the flash quota is left alone.
  const line = { skuId, quantity: 1 };
  const preview = await gql(url(), PREVIEW, { i: { lines: [line] } }, outsider.headers);
  expect(preview.errors).toBeUndefined();
  expect(preview.data!.checkoutPreview.lines).toEqual([{ unitPrice: { amount: 10000 }, priceKind: 'LIST' }]);
  const outsiderOrder = await gql(url(), PLACE, { i: { lines: [line], idempotencyKey: randomUUID() } }, outsider.headers);
  expect(outsiderOrder.errors).toBeUndefined();
  expect(outsiderOrder.data!.placeOrder).toMatchObject({
    total: { amount: 10000 },
    lines: [{ unitPrice: { amount: 10000 }, priceKind: 'LIST' }],
  });
  expect((await gql(url(), ONE, { id: flash.id }, staff)).data!.flashSale.status).toBe('LIVE');
  expect(await skuAvailable(productId)).toBe(20 - 5 - 1);

  // A member of the (open) group sees it and pays the flash price.
  const member = newCustomer();
  const joined = await gql(url(), 'mutation($g: ID!) { joinGroup(groupId: $g) { id } }', { g: groupId }, member.headers);
  expect(joined.errors).toBeUndefined();
  expect(await listed(groupId, member.headers)).toEqual([flash.id]);
  // The public shelf stays the same for everyone; the group's sales are under its groupId.
  expect(await listed(null, member.headers)).not.toContain(flash.id);
  expect((await gql(url(), ONE, { id: flash.id }, member.headers)).data!.flashSale).toEqual({ id: flash.id, groupId, status: 'LIVE' });
  expect((await gql(url(), SKU_FLASH, { id: productId }, member.headers)).data!.product.skus[0].flashSale).toEqual({ id: flash.id });
  // An answer computed for a member is theirs alone: never shared by a cache.
  expect(await cacheControlOf(LIST, { g: groupId }, member.headers)).toMatch(/private/);

  const memberPreview = await gql(url(), PREVIEW, { i: { lines: [{ skuId, quantity: 2 }] } }, member.headers);
  expect(memberPreview.data!.checkoutPreview.lines).toEqual([{ unitPrice: { amount: 5000 }, priceKind: 'FLASH' }]);
  const memberOrder = await gql(url(), PLACE, { i: { lines: [{ skuId, quantity: 2 }], idempotencyKey: randomUUID() } }, member.headers);
  expect(memberOrder.errors).toBeUndefined();
  expect(memberOrder.data!.placeOrder).toMatchObject({
    total: { amount: 10000 },
    lines: [{ unitPrice: { amount: 5000 }, priceKind: 'FLASH' }],
  });
  expect(
    (await gql(url(), 'query($id: ID!) { flashSale(id: $id) { remaining } }', { id: flash.id }, staff)).data!.flashSale.remaining,
  ).toBe(3);

  // The outsider, still outside, is still quoted the normal price after the member's purchase.
  const again = await gql(url(), PREVIEW, { i: { lines: [line] } }, outsider.headers);
  expect(again.data!.checkoutPreview.lines[0].priceKind).toBe('LIST');
});

test('a malformed groupId is BAD_USER_INPUT and writes nothing', async () => {
  const { productId, skuId } = await createSku(10, 8000);
  for (const groupId of ['', 'not a group!', 'x'.repeat(65)]) {
    const res = await gql(url(), CREATE_FLASH, { i: flashInput(skuId, { groupId }) }, staff);
    expect({ groupId, code: code(res) }).toEqual({ groupId, code: 'BAD_USER_INPUT' });
    expect(code(await gql(url(), LIST, { g: groupId }, newCustomer().headers))).toBe('BAD_USER_INPUT');
  }
  // No quota was carved out and no flash sale exists for the SKU.
  expect(await skuAvailable(productId)).toBe(10);
  const sku = await gql(url(), SKU_FLASH, { id: productId }, staff);
  expect(sku.data!.product.skus[0].flashSale).toBeNull();
  const stored = await stack.subgraphs.catalog!.db.collection('flash_sales').find({}).toArray();
  expect(stored.filter((f) => String(f.skuId) === skuId)).toEqual([]);
});
