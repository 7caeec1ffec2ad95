import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { asGateway, gql, staff } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { asMember, client, newKey, newMember, PLACE, startHarness, type Harness } from './support';

// A flash sale (秒杀) as docs/concurrency.md ("Hot items") describes it: the hot item decided at catalog's gate, the orders
// queued behind it. Orders and two catalog replicas answering over one NATS queue group, the
// real FerretDB; once with a gate in each replica's memory, once with one gate in Redis (the
// machine's, or REDIS_URL). Whatever the gate does, the quota's ledger decides: never oversold.

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const prefix = `flywheel-test:${randomBytes(4).toString('hex')}:`;

async function wipeRedisGate() {
  const redis = new Redis(REDIS_URL);
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length) await redis.del(...keys);
  await redis.quit();
}
afterAll(wipeRedisGate);

describe.each([
  ['a gate in each replica', {}, false],
  ['one gate in Redis', { REDIS_URL, FLASH_GATE_KEY_PREFIX: prefix }, true],
])('two catalog replicas, %s', (_name, catalogEnv: Record<string, string>, shared) => {
  let h: Harness;
  let second: RunningService;

  beforeAll(async () => {
    h = await startHarness({ catalogEnv });
    second = await h.catalogReplica();
  });
  afterAll(() => h.stop());

  async function flashSale(quota: number) {
    const seeded = await h.seed('ON_SALE', [{ price: 19900, stock: quota }]);
    const skuId = seeded.skus[0]!.id;
    const res = await gql(
      h.catalog!.url,
      'mutation($input: CreateFlashSaleInput!) { createFlashSale(input: $input) { flashSale { id } } }',
      {
        input: {
          skuId,
          flashPrice: 990,
          quota,
          perMemberLimit: 1,
          startsAt: new Date(Date.now() - 1000).toISOString(),
          endsAt: new Date(Date.now() + 3_600_000).toISOString(),
        },
      },
      asGateway('catalog', staff()),
    );
    expect(res.errors).toBeUndefined();
    return { skuId, flashSaleId: res.data!.createFlashSale.flashSale.id as string };
  }

  /** Every buyer at once, each a member of their own; outcome per buyer and the members who bought. */
  async function rush(skuId: string, buyers: number) {
    const members = Array.from({ length: buyers }, newMember);
    const results = await Promise.all(
      members.map((m) => client(h).call(PLACE, { input: { idempotencyKey: newKey(), lines: [{ skuId, quantity: 1 }] } }, asMember(m))),
    );
    const outcomes: Record<string, number> = {};
    for (const r of results) {
      const key = r.data?.placeOrder ? `ORDER_${r.data.placeOrder.lines[0].priceKind}` : String(r.errors?.[0]?.extensions?.code);
      outcomes[key] = (outcomes[key] ?? 0) + 1;
    }
    return { outcomes, members };
  }

  /** The quota's ledger head (catalog's authority). */
  const quotaHead = async (flashSaleId: string) =>
    h
      .catalog!.db.collection('stock_entries')
      .find({ accountId: `flash:${flashSaleId}` })
      .sort({ seq: -1 })
      .limit(1)
      .next();

  test('150 buyers at once for 20 units: exactly 20 flash orders, the rest OUT_OF_STOCK, and turned-away buyers wrote nothing', async () => {
    const { skuId, flashSaleId } = await flashSale(20);
    const reservesBefore = h.reserves.seen.length;
    const { outcomes, members } = await rush(skuId, 150);

    expect(outcomes).toEqual({ ORDER_FLASH: 20, OUT_OF_STOCK: 130 });
    const head = await quotaHead(flashSaleId);
    expect({ onHand: head!.onHand, reserved: head!.reserved, sold: head!.sold }).toEqual({ onHand: 20, reserved: 20, sold: 0 });
    expect(await h.available(skuId)).toBe(0);

    // Only buyers the gate admitted went on to reserve and record a checkout. One shared gate
    // admits exactly the quota; a gate per replica at most the quota each (the ledger turns the
    // surplus away).
    const recorded = await h.svc.db.collection('checkouts').countDocuments({ memberId: { $in: members } });
    const reserveRequests = h.reserves.seen.length - reservesBefore;
    if (shared) {
      expect(recorded).toBe(20);
      expect(reserveRequests).toBe(20);
    } else {
      expect(recorded).toBeGreaterThanOrEqual(20);
      expect(recorded).toBeLessThanOrEqual(40);
      expect(reserveRequests).toBe(recorded);
    }
    expect(await h.svc.db.collection('unpaid_holds').countDocuments({ memberId: { $in: members } })).toBeLessThanOrEqual(recorded);
  });

  test('a replica started afresh (or a wiped gate) rebuilds from the ledger: 5 of 12 sold, then exactly 7 more, never more', async () => {
    const { skuId, flashSaleId } = await flashSale(12);
    expect((await rush(skuId, 5)).outcomes).toEqual({ ORDER_FLASH: 5 });

    // Forget the gate: a new replica in place of the second one (and, shared, the Redis keys gone).
    await second.stop();
    second = await h.catalogReplica();
    if (shared) await wipeRedisGate();

    expect((await rush(skuId, 60)).outcomes).toEqual({ ORDER_FLASH: 7, OUT_OF_STOCK: 53 });
    // Wiped again after the sell-out: still nothing more.
    if (shared) await wipeRedisGate();
    expect((await rush(skuId, 20)).outcomes).toEqual({ OUT_OF_STOCK: 20 });
    const head = await quotaHead(flashSaleId);
    expect({ onHand: head!.onHand, reserved: head!.reserved }).toEqual({ onHand: 12, reserved: 12 });
  });

  test('a checkout refused after its quote (unpaid-order cap) gives its flash hold back at once', async () => {
    const { skuId } = await flashSale(1);
    const m = newMember();
    // Three unpaid orders: the member is at the cap, so the flash checkout is refused after quoting.
    const plain = await h.seed('ON_SALE', [{ price: 100, stock: 10 }]);
    for (let i = 0; i < 3; i++) {
      const r = await client(h).call(
        PLACE,
        { input: { idempotencyKey: newKey(), lines: [{ skuId: plain.skus[0]!.id, quantity: 1 }] } },
        asMember(m),
      );
      expect(r.errors).toBeUndefined();
    }
    const capped = await client(h).call(PLACE, { input: { idempotencyKey: newKey(), lines: [{ skuId, quantity: 1 }] } }, asMember(m));
    expect(capped.errors?.[0]?.extensions).toMatchObject({ code: 'CONFLICT', reason: 'UNPAID_ORDERS_LIMIT' });
    // The single unit was not left held for the hold time: another buyer gets it now.
    const other = await client(h).call(
      PLACE,
      { input: { idempotencyKey: newKey(), lines: [{ skuId, quantity: 1 }] } },
      asMember(newMember()),
    );
    expect(other.errors).toBeUndefined();
    expect(other.data!.placeOrder.lines[0].priceKind).toBe('FLASH');
  });
});
