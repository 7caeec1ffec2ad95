import { createHmac } from 'node:crypto';
import { SIGNATURE_HEADER } from '../payments/test-provider';
import {
  asMember,
  asStaff,
  client,
  intentFor,
  newMember,
  ORDER,
  PAY,
  placeOk,
  startHarness,
  transitionEvents,
  type Harness,
  type Seeded,
} from './support';

let h: Harness;
let tea: Seeded;
let callbackUrl: string;
beforeAll(async () => {
  h = await startHarness();
  tea = await h.seed('ON_SALE', [{ price: 16800, stock: 1000 }]);
  callbackUrl = h.svc.url.replace('/graphql', '/payments/test/callback');
});
afterAll(() => h.stop());

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const place = (m: string, quantity = 1) => placeOk(h, m, [{ skuId: tea.skus[0]!.id, quantity }]);
const read = async (orderId: string) => (await call(ORDER, { id: orderId }, asStaff())).data!.order;
const count = (collection: string, filter: Record<string, unknown>) => h.svc.db.collection(collection).countDocuments(filter);
const post = (body: string, headers: Record<string, string> = {}, method = 'POST') =>
  fetch(callbackUrl, { method, headers: { 'content-type': 'application/json', ...headers }, body: method === 'GET' ? undefined : body });

describe('paying an order', () => {
  test('the member gets one intent per order for its total; asking again returns the same intent', async () => {
    const m = newMember();
    const order = await place(m, 2);
    const [a, b] = await Promise.all([call(PAY, { id: order.id }, asMember(m)), call(PAY, { id: order.id }, asMember(m))]);
    expect(a.errors).toBeUndefined();
    expect(a.data!.payOrder).toEqual(b.data!.payOrder);
    expect(a.data!.payOrder).toMatchObject({
      amount: { amount: 33600, currency: 'CNY' },
      status: 'REQUIRES_PAYMENT',
      provider: 'test',
      order: { id: order.id },
    });
    expect(JSON.parse(a.data!.payOrder.clientParams)).toEqual({ provider: 'test', intentId: a.data!.payOrder.id });
    expect(await count('payment_intents', { orderId: order.id })).toBe(1);
    expect((await call(PAY, { id: order.id }, asStaff())).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  test('a signed callback pays the order: PAID through the ledger, the payment recorded, the intent SUCCEEDED', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    const [delivery] = await h.svc.payments.pay(intent.id);
    expect(delivery).toEqual({ status: 200, body: JSON.stringify({ received: true, outcome: 'PAID' }) });
    const paid = await read(order.id);
    expect(paid).toMatchObject({
      status: 'PAID',
      payBy: null,
      payments: [{ amount: { amount: 16800 }, status: 'CAPTURED', refundReason: null }],
    });
    expect(paid.history.at(-1)).toEqual({ from: 'PENDING_PAYMENT', to: 'PAID', by: 'PAYMENT', reason: null });
    expect((await call(PAY, { id: order.id }, asMember(m))).data!.payOrder).toMatchObject({ id: intent.id, status: 'SUCCEEDED' });
  });

  test('duplicate, late and out-of-order callbacks make one payment', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    const charge = await h.svc.payments.capture(intent.id);
    const declined = await h.svc.payments.declined(intent.id);
    // Five copies at once, then a declined attempt's notice arriving after the success.
    const burst = await Promise.all(Array.from({ length: 5 }, () => h.svc.payments.deliver(charge)));
    expect(burst.map((d) => [d.status, JSON.parse(d.body).outcome])).toEqual(Array(5).fill([200, 'PAID']));
    expect(JSON.parse((await h.svc.payments.deliver(declined)).body).outcome).toBe('IGNORED');
    // Late: redelivered after the order has moved on.
    await call(
      'mutation($id: ID!) { shipOrder(input: { orderId: $id, carrier: "SF", trackingNumber: "1" }) { id } }',
      { id: order.id },
      asStaff(),
    );
    expect(JSON.parse((await h.svc.payments.deliver(charge)).body).outcome).toBe('PAID');

    expect(await count('payments', { orderId: order.id })).toBe(1);
    expect(await transitionEvents(h, order.id)).toEqual(['orders.order.paid', 'orders.order.shipped']);
    expect(await h.svc.payments.refundsOf(charge.txnId)).toEqual([]);
    expect((await read(order.id)).status).toBe('SHIPPED');
  });

  test('paying twice charges once', async () => {
    const m = newMember();
    const order = await place(m);
    const first = await intentFor(h, m, order.id);
    await h.svc.payments.pay(first.id);
    const second = await intentFor(h, m, order.id);
    expect(second.id).toBe(first.id);
    await h.svc.payments.pay(second.id, { times: 2 });
    expect(await count('testpay_charges', { intentId: first.id })).toBe(1);
    expect(await count('payments', { orderId: order.id })).toBe(1);
    expect((await read(order.id)).payments).toHaveLength(1);
  });

  test('a forged, tampered or unsigned callback is refused with 401 and changes nothing', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    const body = JSON.stringify({
      type: 'payment.succeeded',
      intentId: intent.id,
      txnId: 'txn_forged',
      amount: 16800,
      currency: 'CNY',
      at: new Date().toISOString(),
    });
    const t = Math.floor(Date.now() / 1000);
    const forged = `t=${t},v1=${createHmac('sha256', 'not-the-secret-0123456789abcdef0123456789').update(`${t}.${body}`).digest('hex')}`;
    const validForOther = h.svc.payments.sign(body.replace('16800', '1'));
    const stale = h.svc.payments.sign(body, new Date(Date.now() - 3_600_000));
    const attempts: Record<string, string>[] = [
      { [SIGNATURE_HEADER]: forged },
      { [SIGNATURE_HEADER]: validForOther },
      { [SIGNATURE_HEADER]: stale },
      {},
    ];
    for (const headers of attempts) {
      const res = await post(body, headers);
      expect(res.status).toBe(401);
    }
    expect(await count('payments', { orderId: order.id })).toBe(0);
    expect((await read(order.id)).status).toBe('PENDING_PAYMENT');
    // The genuine article still works afterwards.
    expect((await post(body, { [SIGNATURE_HEADER]: h.svc.payments.sign(body) })).status).toBe(200);
    expect((await read(order.id)).status).toBe('PAID');
  });

  test('a capture of the wrong amount is refused: recorded, refunded, the order stays unpaid', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    const [delivery, again] = await h.svc.payments.pay(intent.id, { amount: 16799, times: 2 });
    expect([delivery!.status, JSON.parse(delivery!.body).outcome]).toEqual([200, 'REFUNDED']);
    expect(JSON.parse(again!.body).outcome).toBe('REFUNDED');
    const after = await read(order.id);
    expect(after).toMatchObject({
      status: 'PENDING_PAYMENT',
      payments: [{ amount: { amount: 16799 }, status: 'REFUNDED', refundReason: 'AMOUNT_MISMATCH' }],
    });
    expect(await transitionEvents(h, order.id)).toEqual([]);
    const txn = (await h.svc.db.collection('payments').findOne({ orderId: order.id }))!.providerTxnId;
    expect(await h.svc.payments.refundsOf(txn)).toEqual([{ refundId: expect.any(String), amount: 16799 }]);
  });

  test('a payment arriving after the order was cancelled is refunded once and recorded, not lost', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    await call('mutation($id: ID!) { cancelOrder(input: { orderId: $id }) { id } }', { id: order.id }, asMember(m));
    const deliveries = await h.svc.payments.pay(intent.id, { times: 3 });
    expect(deliveries.map((d) => JSON.parse(d.body).outcome)).toEqual(['REFUNDED', 'REFUNDED', 'REFUNDED']);
    const after = await read(order.id);
    expect(after).toMatchObject({
      status: 'CANCELLED',
      payments: [{ status: 'REFUNDED', refundReason: 'ORDER_CANCELLED', amount: { amount: 16800 } }],
    });
    expect(await transitionEvents(h, order.id)).toEqual(['orders.order.cancelled']);
    const charge = await h.svc.payments.capture(intent.id);
    expect(await h.svc.payments.refundsOf(charge.txnId)).toEqual([{ refundId: expect.any(String), amount: 16800 }]);
    expect((await call(PAY, { id: order.id }, asMember(m))).data!.payOrder.status).toBe('CANCELLED');
  });

  test('a callback naming an intent of another amount/currency, or of another order than the provider reports, is refunded, not applied', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    // The provider captured the intent's amount, in another currency.
    const usd = await h.svc.payments.capture(intent.id, { currency: 'USD' });
    expect(JSON.parse((await h.svc.payments.deliver(usd)).body).outcome).toBe('REFUNDED');
    expect(await read(order.id)).toMatchObject({
      status: 'PENDING_PAYMENT',
      payments: [{ status: 'REFUNDED', refundReason: 'AMOUNT_MISMATCH', amount: { amount: 16800 } }],
    });
    expect(await transitionEvents(h, order.id)).toEqual([]);

    // Another order's intent, but the provider says the charge was for this order: not believed.
    const n = newMember();
    const other = await place(n);
    const otherIntent = await intentFor(h, n, other.id);
    const charge = await h.svc.payments.capture(otherIntent.id);
    const crossed = await h.svc.payments.deliver({ ...charge, orderId: order.id });
    expect(JSON.parse(crossed.body).outcome).toBe('REFUNDED');
    // The genuine notification of that charge comes later: it is the same payment, already refunded.
    expect(JSON.parse((await h.svc.payments.deliver(charge)).body).outcome).toBe('REFUNDED');
    expect(await h.svc.payments.refundsOf(charge.txnId)).toEqual([{ refundId: expect.any(String), amount: 16800 }]);
    expect(await read(other.id)).toMatchObject({
      status: 'PENDING_PAYMENT',
      payments: [{ status: 'REFUNDED', refundReason: 'INTENT_MISMATCH', amount: { amount: 16800 } }],
    });
    expect(await transitionEvents(h, other.id)).toEqual([]);
  });

  test('a payment whose callback never arrives is found by reconciliation and pays the order once, even if the callback then arrives too', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    // The member paid at the provider; the notification is lost.
    const charge = await h.svc.payments.capture(intent.id);
    expect(await h.svc.service.reconcilePayments(new Date())).toMatchObject({ applied: 0 }); // too early to ask
    expect((await read(order.id)).status).toBe('PENDING_PAYMENT');

    // Reconciliation and the late callback at the same moment, then the callback once more.
    const later = new Date(Date.now() + 120_000);
    const [, delivery] = await Promise.all([h.svc.service.reconcilePayments(later), h.svc.payments.deliver(charge)]);
    expect(JSON.parse(delivery.body).outcome).toBe('PAID');
    expect(JSON.parse((await h.svc.payments.deliver(charge)).body).outcome).toBe('PAID');
    expect(await read(order.id)).toMatchObject({ status: 'PAID', payments: [{ status: 'CAPTURED', refundReason: null }] });
    expect(await count('payments', { orderId: order.id })).toBe(1);
    expect(await transitionEvents(h, order.id)).toEqual(['orders.order.paid']);
    expect(await h.svc.payments.refundsOf(charge.txnId)).toEqual([]);

    // Without any callback at all: reconciliation alone pays the order.
    const quiet = await place(m);
    const quietIntent = await intentFor(h, m, quiet.id);
    await h.svc.payments.capture(quietIntent.id);
    expect(await h.svc.service.reconcilePayments(later)).toMatchObject({ applied: 1 });
    expect(await read(quiet.id)).toMatchObject({ status: 'PAID', payments: [{ status: 'CAPTURED' }] });
    expect((await h.svc.db.collection('payments').findOne({ orderId: quiet.id }))!.via).toBe('RECONCILIATION');
    // Asked again later: nothing more to apply (the payment is recorded).
    expect(await h.svc.service.reconcilePayments(new Date(later.getTime() + 600_000))).toMatchObject({ applied: 0 });
    expect(await transitionEvents(h, quiet.id)).toEqual(['orders.order.paid']);
  });

  test('reconciliation finds a charge captured just before its order expired, and refunds it', async () => {
    const m = newMember();
    const order = await place(m);
    const intent = await intentFor(h, m, order.id);
    const charge = await h.svc.payments.capture(intent.id);
    // The sweeper cancels the order before anything was heard of the payment.
    const expiry = new Date(Date.now() + 901_000);
    await h.svc.service.cancelUnpaid(expiry);
    expect((await read(order.id)).status).toBe('CANCELLED');
    await h.svc.service.reconcilePayments(expiry);
    expect(await read(order.id)).toMatchObject({
      status: 'CANCELLED',
      payments: [{ status: 'REFUNDED', refundReason: 'ORDER_CANCELLED', amount: { amount: 16800 } }],
    });
    expect(await h.svc.payments.refundsOf(charge.txnId)).toEqual([{ refundId: expect.any(String), amount: 16800 }]);
  });

  test('the callback route answers only POST, refuses oversize and malformed bodies, and 404s an unknown intent', async () => {
    expect((await post('', {}, 'GET')).status).toBe(405);
    expect((await post('x'.repeat(70 * 1024))).status).toBe(413);
    const notJson = 'not json';
    expect((await post(notJson, { [SIGNATURE_HEADER]: h.svc.payments.sign(notJson) })).status).toBe(400);
    const unknown = JSON.stringify({ type: 'payment.succeeded', intentId: 'tpi_nope', txnId: 'txn_x', amount: 1, currency: 'CNY', at: '' });
    expect((await post(unknown, { [SIGNATURE_HEADER]: h.svc.payments.sign(unknown) })).status).toBe(404);
    expect(await count('payments', { intentId: 'tpi_nope' })).toBe(0);
  });
});
