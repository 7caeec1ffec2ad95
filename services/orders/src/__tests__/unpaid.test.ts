import { asGateway, gql, staff } from '@flywheel/testing';
import { orderIdFor } from '../checkout';
import { asMember, CANCEL, client, intentFor, newKey, newMember, PLACE, placeOk, startHarness, type Harness, type Seeded } from './support';

// Caps at their defaults (3 unpaid orders, 30 units per member) except the flash one, lowered so
// that a single flash sale (per-member limit 5) can reach it.
const FLASH_CAP = 2;
let h: Harness;
let tea: Seeded;
beforeAll(async () => {
  h = await startHarness({ env: { MAX_UNPAID_FLASH_UNITS_PER_SKU: String(FLASH_CAP) } });
  tea = await h.seed('ON_SALE', [
    { price: 16800, stock: 1000 },
    { price: 900, stock: 1000 },
  ]);
});
afterAll(() => h.stop());

const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string>) =>
  client(h).call(query, variables, headers);
const place = (m: string, lines: { skuId: string; quantity: number }[], key = newKey()) =>
  call(PLACE, { input: { idempotencyKey: key, lines } }, asMember(m));
const codeOf = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code ?? 'PLACED';
const one = (skuId: string, quantity = 1) => [{ skuId, quantity }];
const orders = (memberId: string) => h.svc.db.collection('orders').countDocuments({ memberId });
/** Reservation requests catalog received so far, of any order. */
const reservations = async () => {
  await h.reserves.count('');
  return h.reserves.seen.length;
};

describe('unpaid orders per member', () => {
  test('one member racing 10 placeOrders over the cap gets exactly the cap, the rest CONFLICT and nothing reserved for them', async () => {
    const m = newMember();
    const sku = tea.skus[0]!.id;
    const before = await h.available(sku);
    const keys = Array.from({ length: 10 }, () => newKey());
    const results = await Promise.all(keys.map((key) => place(m, one(sku), key)));

    const codes = results.map(codeOf);
    expect(codes.filter((c) => c === 'PLACED')).toHaveLength(3);
    expect(codes.filter((c) => c === 'CONFLICT')).toHaveLength(7);
    const refused = results.find((r) => r.errors)!.errors![0]!;
    expect(refused.message).toMatch(/waiting for payment/);
    expect(refused.extensions).toMatchObject({ reason: 'UNPAID_ORDERS_LIMIT', limit: 3 });

    expect(await orders(m)).toBe(3);
    expect(await h.available(sku)).toBe(before - 3);
    for (const [i, key] of keys.entries()) {
      const orderId = orderIdFor(m, key);
      // Refused before anything was recorded or reserved: no checkout, no reservation request.
      const expected = codes[i] === 'PLACED' ? 1 : 0;
      expect({ key, reserves: await h.reserves.count(orderId) }).toEqual({ key, reserves: expected });
      expect({ key, checkouts: await h.svc.db.collection('checkouts').countDocuments({ _id: orderId } as never) }).toEqual({
        key,
        checkouts: expected,
      });
    }
    expect((await h.svc.service.unpaidHeldBy(m)).orders).toHaveLength(3);
  });

  test('a replay of a placed order answers its first result even at the cap; a refused key can be used once a slot is free', async () => {
    const m = newMember();
    const sku = tea.skus[0]!.id;
    const keys = [newKey(), newKey(), newKey()];
    const placed = [];
    for (const key of keys) placed.push((await place(m, one(sku), key)).data!.placeOrder);
    const refusedKey = newKey();
    expect(codeOf(await place(m, one(sku), refusedKey))).toBe('CONFLICT');

    const replay = await place(m, one(sku), keys[1]);
    expect(replay.errors).toBeUndefined();
    expect(replay.data!.placeOrder).toEqual(placed[1]);

    await call(CANCEL, { id: placed[0].id }, asMember(m));
    const retried = await place(m, one(sku), refusedKey);
    expect(retried.errors).toBeUndefined();
    expect(retried.data!.placeOrder.id).toBe(orderIdFor(m, refusedKey));
  });

  test('paying or cancelling frees the unpaid slot, and so does expiry; each order gives its slot back once', async () => {
    const m = newMember();
    const sku = tea.skus[0]!.id;
    const [a, b, c] = [await placeOk(h, m, one(sku)), await placeOk(h, m, one(sku)), await placeOk(h, m, one(sku))];
    expect(codeOf(await place(m, one(sku)))).toBe('CONFLICT');

    // Paid: its slot is free.
    const intent = await intentFor(h, m, a.id);
    await h.svc.payments.pay(intent.id, { times: 2 });
    const d = await placeOk(h, m, one(sku));
    expect(codeOf(await place(m, one(sku)))).toBe('CONFLICT');

    // Cancelled by the member (twice: the second answers the cancelled order, frees nothing more).
    await call(CANCEL, { id: b.id }, asMember(m));
    await call(CANCEL, { id: b.id }, asMember(m));
    const e = await placeOk(h, m, one(sku));
    expect(codeOf(await place(m, one(sku)))).toBe('CONFLICT');

    // Expired: the unpaid-order sweeper cancels c, d and e.
    await h.svc.service.cancelUnpaid(new Date(Date.now() + 901_000));
    const statuses = await h.svc.db
      .collection('orders')
      .find({ _id: { $in: [c.id, d.id, e.id] } } as never)
      .toArray();
    expect(statuses.map((o) => o.status)).toEqual(['CANCELLED', 'CANCELLED', 'CANCELLED']);
    expect(await h.svc.service.unpaidHeldBy(m)).toEqual({ orders: [], units: 0, flashUnits: {} });
    for (let i = 0; i < 3; i++) await placeOk(h, m, one(sku));
    expect(codeOf(await place(m, one(sku)))).toBe('CONFLICT');

    // One HOLD and at most one RELEASE per order in the member's ledger.
    const entries = await h.svc.db.collection('unpaid_holds').find({ accountId: m }).sort({ seq: 1 }).toArray();
    const released = entries.filter((x) => x.op === 'RELEASE').map((x) => x.orderId as string);
    expect(released.sort()).toEqual([a.id, b.id, c.id, d.id, e.id].sort());
    expect(entries.filter((x) => x.op === 'HOLD')).toHaveLength(8);
  });

  test('a checkout that fails after taking its slot gives it back', async () => {
    const m = newMember();
    const sku = tea.skus[0]!.id;
    await placeOk(h, m, one(sku));
    await placeOk(h, m, one(sku));
    h.hooks.afterReserve = async () => {
      throw new Error('simulated failure after reserve');
    };
    try {
      expect(codeOf(await place(m, one(sku)))).toBe('INTERNAL_SERVER_ERROR');
    } finally {
      h.hooks.afterReserve = undefined;
    }
    expect((await h.svc.service.unpaidHeldBy(m)).orders).toHaveLength(2);
    await placeOk(h, m, one(sku));
  });

  test('units: an order no allowance could hold is BAD_USER_INPUT; one that fits alone but not with the unpaid ones is CONFLICT', async () => {
    const m = newMember();
    const [big, small] = [tea.skus[0]!.id, tea.skus[1]!.id];
    const tooMany = await place(m, one(big, 31));
    expect(tooMany.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'lines' });
    await placeOk(h, m, [
      { skuId: big, quantity: 20 },
      { skuId: small, quantity: 5 },
    ]);
    const over = await place(m, one(small, 6));
    expect(over.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'UNPAID_UNITS_LIMIT', limit: 30 });
    await placeOk(h, m, one(small, 5));
    expect(await h.svc.service.unpaidHeldBy(m)).toMatchObject({ units: 30 });
  });

  test('flash-sale units of one SKU are capped per member: other members and other SKUs are not held back', async () => {
    const flash = await h.seed('ON_SALE', [{ price: 29900, stock: 100 }]);
    const sku = flash.skus[0]!.id;
    const created = await gql(
      h.catalog!.url,
      'mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }',
      {
        input: {
          skuId: sku,
          flashPrice: 9900,
          quota: 50,
          perMemberLimit: 5,
          startsAt: new Date(Date.now() - 1000).toISOString(),
          endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        },
      },
      asGateway('catalog', staff()),
    );
    expect(created.errors).toBeUndefined();
    const m = newMember();
    const first = await placeOk(h, m, one(sku, FLASH_CAP));
    expect(first.lines[0].priceKind).toBe('FLASH');
    const before = await reservations();

    const over = await place(m, one(sku));
    expect(over.errors?.[0]?.extensions).toMatchObject({
      code: 'CONFLICT',
      reason: 'UNPAID_FLASH_UNITS_LIMIT',
      limit: FLASH_CAP,
      skuId: sku,
    });
    const alone = await place(m, one(sku, FLASH_CAP + 1));
    expect(alone.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await reservations()).toBe(before);

    // Not a cap on the member's other SKUs, nor on other members.
    await placeOk(h, m, one(tea.skus[1]!.id, 3));
    const other = await placeOk(h, newMember(), one(sku, FLASH_CAP));
    expect(other.lines[0].priceKind).toBe('FLASH');

    // Cancelling gives the flash units back.
    await call(CANCEL, { id: first.id }, asMember(m));
    expect((await placeOk(h, m, one(sku))).lines[0].priceKind).toBe('FLASH');
  });

  test('a hold left behind by a crashed checkout does not lock the member out: it is given back when they reach the cap', async () => {
    const m = newMember();
    const sku = tea.skus[0]!.id;
    const longAgo = new Date(Date.now() - 3_600_000);
    // Three holds of checkouts that died before recording themselves (no checkout, no order).
    const open = ['ghost-1', 'ghost-2', 'ghost-3'].map((orderId) => ({ orderId, skuId: sku, quantity: 1, flash: false, heldAt: longAgo }));
    await h.svc.db.collection('unpaid_holds').insertMany(
      open.map((l, i) => ({
        _id: `${m}:${i + 1}`,
        accountId: m,
        seq: i + 1,
        op: 'HOLD',
        orderId: l.orderId,
        at: longAgo,
        open: open.slice(0, i + 1),
      })) as never,
    );
    const placed = await placeOk(h, m, one(sku));
    expect((await h.svc.service.unpaidHeldBy(m)).orders).toEqual([placed.id]);
  });
});
