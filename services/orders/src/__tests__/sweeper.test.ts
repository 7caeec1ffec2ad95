import { eventually, serviceEnv } from '@flywheel/testing';
import { loadServiceConfig } from '../config';
import { start, type RunningOrders } from '../main';
import { intentFor, newMember, placeOk, startHarness, transitionEvents, type Harness } from './support';

// Two replicas on one database, both with their sweeper timer on a one-second period.
const env = { SWEEP_INTERVAL_SECONDS: '1', PAYMENT_RECONCILE_AFTER_SECONDS: '1' };
let h: Harness;
let second: RunningOrders;
beforeAll(async () => {
  h = await startHarness({ env, start: { sweepers: true } });
  second = await start(loadServiceConfig(serviceEnv('orders', h.nats.url, { ...env, MONGO_DB: h.svc.db.name })), {
    sweepers: true,
    adjusters: [],
    addresses: null,
  });
});
afterAll(async () => {
  await second.stop();
  await h.stop();
});

test('the sweepers run on their own timer, one replica per period: a payment whose callback was lost pays its order once, unasked', async () => {
  const tea = await h.seed('ON_SALE', [{ price: 16800, stock: 10 }]);
  const m = newMember();
  const order = await placeOk(h, m, [{ skuId: tea.skus[0]!.id, quantity: 1 }]);
  const intent = await intentFor(h, m, order.id);
  await h.svc.payments.capture(intent.id); // paid at the provider; no callback is ever sent

  await eventually(async () => (await h.svc.db.collection('orders').findOne({ _id: order.id } as never))?.status === 'PAID', 15_000);
  const payment = await h.svc.db.collection('payments').findOne({ orderId: order.id });
  expect(payment).toMatchObject({ verdict: 'MATCHED', via: 'RECONCILIATION' });
  // Each period was claimed once (the claim is unique per period), by one replica or the other.
  expect(await h.svc.db.collection('sweep_claims').countDocuments({ _id: { $regex: '^sweep:' } } as never)).toBeGreaterThanOrEqual(1);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(await h.svc.db.collection('payments').countDocuments({ orderId: order.id })).toBe(1);
  expect(await transitionEvents(h, order.id)).toEqual(['orders.order.paid']);
});
