import { orderIdFor } from '../checkout';
import { asMember, client, newKey, newMember, PAY, PLACE, startHarness, type Harness, type Seeded } from './support';

// CHECKOUT_RECOVERY_SECONDS at its default (60): the tests run the sweeper with a clock past it.
let h: Harness;
let tea: Seeded;
beforeAll(async () => {
  h = await startHarness();
  tea = await h.seed('ON_SALE', [{ price: 16800, stock: 1000 }]);
});
afterAll(() => h.stop());

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const orders = (filter: Record<string, unknown>) => h.svc.db.collection('orders').countDocuments(filter);
const afterRecoveryWindow = () => new Date(Date.now() + 61_000);

/** A promise the test resolves, and one that tells the test the hook was reached. */
function gate() {
  let open!: () => void;
  let reached!: () => void;
  const opened = new Promise<void>((r) => (open = r));
  const arrived = new Promise<void>((r) => (reached = r));
  return { open, arrived, hook: async () => (reached(), opened) };
}

describe('checkout', () => {
  test('stock is reserved before the order exists: one reservation per order, keyed by the order id', async () => {
    const m = newMember();
    const before = await h.available(tea.skus[0]!.id);
    const key = newKey();
    const res = await call(PLACE, { input: { idempotencyKey: key, lines: [{ skuId: tea.skus[0]!.id, quantity: 3 }] } }, asMember(m));
    expect(res.errors).toBeUndefined();
    const order = res.data!.placeOrder;
    expect(order).toMatchObject({ id: orderIdFor(m, key), status: 'PENDING_PAYMENT', history: [{ from: null, to: 'PENDING_PAYMENT' }] });
    expect(await h.reserves.count(order.id)).toBe(1);
    expect(await h.available(tea.skus[0]!.id)).toBe(before - 3);
    expect(await h.releases.count(order.id)).toBe(0);
  });

  test('OUT_OF_STOCK known at quote time fails the mutation before anything is written or reserved; a replay is refused again', async () => {
    const m = newMember();
    const scarce = await h.seed('ON_SALE', [{ price: 5000, stock: 2 }]);
    const input = { idempotencyKey: newKey(), lines: [{ skuId: scarce.skus[0]!.id, quantity: 3 }] };
    const first = await call(PLACE, { input }, asMember(m));
    expect(first.errors?.[0]?.extensions?.code).toBe('OUT_OF_STOCK');
    const orderId = orderIdFor(m, input.idempotencyKey);
    expect(await orders({ memberId: m })).toBe(0);
    expect((await call(PAY, { id: orderId }, asMember(m))).errors?.[0]?.extensions?.code).toBe('NOT_FOUND');
    expect(await h.available(scarce.skus[0]!.id)).toBe(2);

    const replay = await call(PLACE, { input }, asMember(m));
    expect(replay.errors?.[0]).toMatchObject({ message: first.errors![0]!.message, extensions: { code: 'OUT_OF_STOCK' } });
    // The quote already showed the shortage: catalog was never asked to reserve (a sold-out SKU in
    // a rush costs no writes); the race test below covers a shortage only the reservation sees.
    expect(await h.reserves.count(orderId)).toBe(0);
    expect(await h.available(scarce.skus[0]!.id)).toBe(2);
  });

  test('two buyers racing for the last unit: one order, one OUT_OF_STOCK', async () => {
    const last = await h.seed('ON_SALE', [{ price: 9900, stock: 1 }]);
    const buyers = [newMember(), newMember()];
    const results = await Promise.all(
      buyers.map((m) =>
        call(PLACE, { input: { idempotencyKey: newKey(), lines: [{ skuId: last.skus[0]!.id, quantity: 1 }] } }, asMember(m)),
      ),
    );
    expect(results.map((r) => r.errors?.[0]?.extensions?.code ?? 'PLACED').sort()).toEqual(['OUT_OF_STOCK', 'PLACED']);
    expect(await orders({ memberId: { $in: buyers } })).toBe(1);
    expect(await h.available(last.skus[0]!.id)).toBe(0);
  });

  test('a failure after reserving releases the reservation once; the replay answers the same error', async () => {
    const m = newMember();
    const before = await h.available(tea.skus[0]!.id);
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 2 }] };
    const orderId = orderIdFor(m, input.idempotencyKey);
    h.hooks.afterReserve = async () => {
      throw new Error('simulated failure after reserve');
    };
    try {
      const res = await call(PLACE, { input }, asMember(m));
      expect(res.errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
      expect(res.errors?.[0]?.message).not.toContain('simulated');
    } finally {
      h.hooks.afterReserve = undefined;
    }
    expect(await h.reserves.count(orderId)).toBe(1);
    expect(await h.releases.count(orderId)).toBe(1);
    expect(await h.available(tea.skus[0]!.id)).toBe(before);
    expect(await orders({ _id: orderId })).toBe(0);
    expect((await call(PLACE, { input }, asMember(m))).errors?.[0]?.extensions?.code).toBe('INTERNAL_SERVER_ERROR');
    expect(await h.reserves.count(orderId)).toBe(1);
    // Nothing is left for the sweeper.
    expect(await h.svc.service.recoverCheckouts(afterRecoveryWindow())).toMatchObject({ abandoned: 0, released: 0 });
    expect(await h.releases.count(orderId)).toBe(1);
  });

  test('a crash between reserve and order: the sweeper abandons the checkout and releases exactly once; the late request places nothing', async () => {
    const m = newMember();
    const before = await h.available(tea.skus[0]!.id);
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 4 }] };
    const orderId = orderIdFor(m, input.idempotencyKey);
    const crash = gate();
    h.hooks.afterReserve = crash.hook;
    const inFlight = call(PLACE, { input }, asMember(m));
    await crash.arrived;
    h.hooks.afterReserve = undefined;
    expect(await h.available(tea.skus[0]!.id)).toBe(before - 4);

    // Within the recovery window the checkout is left alone (it may still be working).
    expect(await h.svc.service.recoverCheckouts(new Date())).toMatchObject({ abandoned: 0, released: 0 });
    // Past it: two sweepers at once (two replicas) — one abandons and releases, the other sees that.
    const at = afterRecoveryWindow();
    const passes = await Promise.all([h.svc.service.recoverCheckouts(at), h.svc.service.recoverCheckouts(at)]);
    expect(passes.map((p) => p.abandoned).sort()).toEqual([0, 1]);
    expect(await h.releases.count(orderId)).toBe(1);
    expect(await h.available(tea.skus[0]!.id)).toBe(before);
    expect(await h.svc.service.recoverCheckouts(at)).toMatchObject({ abandoned: 0, released: 0 });

    // The "dead" request wakes up: it loses the decision and places nothing.
    crash.open();
    const late = await inFlight;
    expect(late.errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await orders({ _id: orderId })).toBe(0);
    expect(await h.releases.count(orderId)).toBe(1);
    // A replay of the key answers the abandonment too.
    expect((await call(PLACE, { input }, asMember(m))).errors?.[0]?.extensions?.code).toBe('CONFLICT');
    expect(await h.available(tea.skus[0]!.id)).toBe(before);
  });

  test('a crash after PLACED was decided: the sweeper inserts the order and releases nothing', async () => {
    const m = newMember();
    const before = await h.available(tea.skus[0]!.id);
    const input = { idempotencyKey: newKey(), lines: [{ skuId: tea.skus[0]!.id, quantity: 1 }] };
    const orderId = orderIdFor(m, input.idempotencyKey);
    const crash = gate();
    h.hooks.afterPlaced = crash.hook;
    const inFlight = call(PLACE, { input }, asMember(m));
    await crash.arrived;
    h.hooks.afterPlaced = undefined;
    expect(await orders({ _id: orderId })).toBe(0);

    expect(await h.svc.service.recoverCheckouts(afterRecoveryWindow())).toMatchObject({ abandoned: 0, completed: 1 });
    expect(await orders({ _id: orderId, status: 'PENDING_PAYMENT' })).toBe(1);
    expect(await h.releases.count(orderId)).toBe(0);
    expect(await h.available(tea.skus[0]!.id)).toBe(before - 1);

    crash.open();
    const late = await inFlight;
    expect(late.errors).toBeUndefined();
    expect(late.data!.placeOrder.id).toBe(orderId);
    expect(await orders({ _id: orderId })).toBe(1);
  });
});
