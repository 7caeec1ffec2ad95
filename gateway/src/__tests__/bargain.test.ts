// Bargains (砍价) through the gateway: staff offer a SKU, a member starts a bargain, exactly the
// required friends cut it to the floor, and the member's order under the bargain pays the floor.
import { randomUUID } from 'node:crypto';
import { eventually, gql } from '@flywheel/testing';
import {
  asStaff,
  createTestProduct,
  errorCode,
  errorReason,
  newCustomer,
  startInProcessStack,
  type InProcessStack,
} from './in-process-stack';

jest.setTimeout(120_000);

let stack: InProcessStack;
beforeAll(async () => {
  stack = await startInProcessStack();
}, 60_000);
afterAll(async () => {
  await stack?.stop();
});

const url = () => stack.gateway.url;
const HOUR = 3_600_000;
const BARGAIN = 'id currentPrice helpers status offer { floorPrice } cuts { number amount }';
const START = `mutation($o: ID!, $k: String!) { startBargain(offerId: $o, idempotencyKey: $k) { ${BARGAIN} } }`;
const HELP = `mutation($b: ID!, $d: String!) { helpBargain(bargainId: $b, deviceId: $d) { number amount bargain { ${BARGAIN} } } }`;
const PLACE = 'mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id status total { amount } } }';

test('bargain to the floor with exactly the required helpers, then the starter pays the floor price once', async () => {
  const staff = asStaff();
  const { skuId } = await createTestProduct(url(), staff, { price: 12_800, stock: 10 });
  const created = await gql(
    url(),
    'mutation($i: CreateBargainOfferInput!) { createBargainOffer(input: $i) { id startPrice floorPrice helpersNeeded } }',
    {
      i: {
        skuId,
        floorPrice: 1_990,
        helpersNeeded: 5,
        durationHours: 24,
        startsAt: new Date(Date.now() - HOUR).toISOString(),
        endsAt: new Date(Date.now() + 48 * HOUR).toISOString(),
      },
    },
    staff,
  );
  expect(created.errors).toBeUndefined();
  const offer = created.data!.createBargainOffer;
  expect(offer).toMatchObject({ startPrice: 12_800, floorPrice: 1_990, helpersNeeded: 5 });

  const starter = newCustomer();
  const started = await gql(url(), START, { o: offer.id, k: randomUUID() }, starter.headers);
  expect(started.errors).toBeUndefined();
  const bargainId = started.data!.startBargain.id as string;

  const self = await gql(url(), HELP, { b: bargainId, d: randomUUID() }, starter.headers);
  expect([errorCode(self), errorReason(self)]).toEqual(['FORBIDDEN', 'SELF_HELP']);

  // Eight friends race for five cuts.
  const helps = await Promise.all(
    Array.from({ length: 8 }, () => gql(url(), HELP, { b: bargainId, d: randomUUID() }, newCustomer().headers)),
  );
  const ok = helps.filter((r) => r.errors === undefined);
  expect(ok).toHaveLength(5);
  for (const r of helps.filter((x) => x.errors)) expect(errorReason(r)).toBe('FLOOR_REACHED');
  const seen = await gql(url(), `query($id: ID!) { bargain(id: $id) { ${BARGAIN} } }`, { id: bargainId }, starter.headers);
  const bargain = seen.data!.bargain;
  expect(bargain).toMatchObject({ currentPrice: 1_990, helpers: 5, status: 'FLOOR_REACHED' });
  expect(bargain.cuts.reduce((a: number, c: { amount: number }) => a + c.amount, 0)).toBe(12_800 - 1_990);

  const placed = await gql(
    url(),
    PLACE,
    { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: randomUUID(), referralOffer: { bargainId } } },
    starter.headers,
  );
  expect(placed.errors).toBeUndefined();
  expect(placed.data!.placeOrder).toMatchObject({ status: 'PENDING_PAYMENT', total: { amount: 1_990 } });

  // The bargain is bought once: a second order under it is refused while the first holds it.
  const second = await gql(
    url(),
    PLACE,
    { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: randomUUID(), referralOffer: { bargainId } } },
    starter.headers,
  );
  expect(errorCode(second)).toBe('CONFLICT');
  // Someone else's bargain is not theirs to buy.
  const stranger = await gql(
    url(),
    PLACE,
    { i: { lines: [{ skuId, quantity: 1 }], idempotencyKey: randomUUID(), referralOffer: { bargainId } } },
    newCustomer().headers,
  );
  expect(errorCode(stranger)).toBe('FORBIDDEN');

  const intent = await gql(
    url(),
    'mutation($i: PayOrderInput!) { payOrder(input: $i) { id amount { amount } } }',
    { i: { orderId: placed.data!.placeOrder.id } },
    starter.headers,
  );
  expect(intent.errors).toBeUndefined();
  expect(intent.data!.payOrder.amount.amount).toBe(1_990);
  await stack.orders.payments.pay(intent.data!.payOrder.id);
  await eventually(async () => {
    const res = await gql(url(), 'query($id: ID!) { bargain(id: $id) { status } }', { id: bargainId }, starter.headers);
    return res.data?.bargain.status === 'BOUGHT';
  });
});
