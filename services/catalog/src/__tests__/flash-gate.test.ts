import { randomBytes } from 'node:crypto';
import Redis from 'ioredis';
import { createMemoryFlashGate, createRedisFlashGate, RESYNC_MS, type FlashGate, type GateSale } from '../flash-sales/gate';

// The flash gate on its own: the same behaviour in memory and in Redis (the machine's Redis, or
// REDIS_URL; every run under keys of its own). The ledger is played by a counter the test owns,
// so the test also sees how often the gate reads it.

const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const HOLD_MS = 60_000;

let clock = Date.now();
const now = () => clock;

/** A stand-in for the quota's ledger: `available` units, and the number of reads. */
function ledger(available: number) {
  const l = {
    available,
    reads: 0,
    read: async () => {
      l.reads++;
      return l.available;
    },
  };
  return l;
}

let saleSeq = 0;
const newSale = (perMemberLimit = 1): GateSale => ({
  id: `sale-${process.pid}-${++saleSeq}`,
  perMemberLimit,
  endsAt: new Date(Date.now() + 3_600_000),
});

const prefixes: string[] = [];
const redisGates: FlashGate[] = [];
function redisGate(prefix = `flywheel-test:${randomBytes(4).toString('hex')}:`) {
  prefixes.push(prefix);
  const g = createRedisFlashGate({ url: REDIS_URL, holdMs: HOLD_MS, keyPrefix: prefix, now });
  redisGates.push(g);
  return g;
}

afterAll(async () => {
  await Promise.all(redisGates.map((g) => g.close()));
  const redis = new Redis(REDIS_URL);
  for (const prefix of prefixes) {
    const keys = await redis.keys(`${prefix}*`);
    if (keys.length) await redis.del(...keys);
  }
  await redis.quit();
});

describe.each([
  ['in memory', () => createMemoryFlashGate({ holdMs: HOLD_MS, now })],
  ['in Redis', () => redisGate()],
])('the flash gate %s', (_name, makeGate) => {
  beforeEach(() => {
    clock = Date.now();
  });

  test('500 buyers at once for 20 units: 20 distinct tickets 1..20, 480 SOLD_OUT, the ledger read once', async () => {
    const gate = makeGate();
    const sale = newSale();
    const book = ledger(20);
    const results = await Promise.all(Array.from({ length: 500 }, (_, i) => gate.admit(sale, `order-${i}`, `member-${i}`, 1, book.read)));
    const tickets = results.flatMap((r) => (r.ok ? [r.ticket] : [])).sort((a, b) => a - b);
    expect(tickets).toEqual(Array.from({ length: 20 }, (_, i) => i + 1));
    expect(results.filter((r) => !r.ok && r.reason === 'SOLD_OUT')).toHaveLength(480);
    // Built once; a refusal within RESYNC_MS of the last read costs no read.
    expect(book.reads).toBe(1);
  });

  test('the same order asking again keeps its ticket and takes nothing more', async () => {
    const gate = makeGate();
    const sale = newSale(3);
    const book = ledger(3);
    const first = await gate.admit(sale, 'o1', 'm1', 2, book.read);
    const again = await gate.admit(sale, 'o1', 'm1', 2, book.read);
    expect(first).toMatchObject({ ok: true, ticket: 1, left: 1 });
    expect(again).toMatchObject({ ok: true, ticket: 1 });
    expect(await gate.admit(sale, 'o2', 'm2', 1, book.read)).toMatchObject({ ok: true, ticket: 3, left: 0 });
  });

  test("a member's holds stay within the per-member limit; another member is not held back", async () => {
    const gate = makeGate();
    const sale = newSale(2);
    const book = ledger(10);
    expect(await gate.admit(sale, 'o1', 'm1', 2, book.read)).toMatchObject({ ok: true });
    expect(await gate.admit(sale, 'o2', 'm1', 1, book.read)).toEqual({ ok: false, reason: 'LIMIT' });
    expect(await gate.admit(sale, 'o3', 'm2', 2, book.read)).toMatchObject({ ok: true, left: 6 });
  });

  test('a hold never confirmed goes back after the hold time; a confirmed one stays', async () => {
    const gate = makeGate();
    const sale = newSale();
    const book = ledger(2);
    await gate.admit(sale, 'kept', 'm1', 1, book.read);
    await gate.confirm(sale.id, 'kept');
    book.available = 1; // 'kept' is reserved in the ledger now
    await gate.admit(sale, 'abandoned', 'm2', 1, book.read);
    expect(await gate.admit(sale, 'late', 'm3', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
    clock += HOLD_MS + 1;
    // Only the abandoned hold's unit came back.
    expect(await gate.admit(sale, 'late', 'm3', 1, book.read)).toMatchObject({ ok: true, left: 0 });
    expect(await gate.admit(sale, 'later', 'm4', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
    // The abandoning member may try again: their hold is gone.
    expect(await gate.admit(sale, 'again', 'm2', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
  });

  test('a release gives the units back; a release the ledger refused makes the gate read the ledger again', async () => {
    const gate = makeGate();
    const sale = newSale();
    const book = ledger(2);
    await gate.admit(sale, 'a', 'm1', 1, book.read);
    await gate.admit(sale, 'b', 'm2', 1, book.read);
    await gate.release(sale.id, 'a', true);
    expect(await gate.admit(sale, 'c', 'm3', 1, book.read)).toMatchObject({ ok: true, left: 0 });
    // Another replica sold the last units behind this gate's back: the ledger refused 'c'.
    book.available = 0;
    await gate.release(sale.id, 'c', false);
    const readsBefore = book.reads;
    expect(await gate.admit(sale, 'd', 'm4', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
    expect(book.reads).toBe(readsBefore + 1);
  });

  test('short, the gate re-reads the ledger at most once per RESYNC_MS: units released elsewhere come back', async () => {
    const gate = makeGate();
    const sale = newSale();
    const book = ledger(1);
    await gate.admit(sale, 'a', 'm1', 1, book.read);
    await gate.confirm(sale.id, 'a');
    book.available = 0;
    expect(await gate.admit(sale, 'b', 'm2', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
    // Released by another replica: only the ledger knows.
    book.available = 1;
    expect(await gate.admit(sale, 'b', 'm2', 1, book.read)).toEqual({ ok: false, reason: 'SOLD_OUT' });
    expect(book.reads).toBe(1);
    clock += RESYNC_MS + 1;
    expect(await gate.admit(sale, 'b', 'm2', 1, book.read)).toMatchObject({ ok: true });
    expect(book.reads).toBe(2);
  });
});

describe('a shared gate in Redis', () => {
  test('two replicas share one count: 200 buyers split between them for 30 units admit exactly 30', async () => {
    const prefix = `flywheel-test:${randomBytes(4).toString('hex')}:`;
    const [a, b] = [redisGate(prefix), redisGate(prefix)];
    const sale = newSale();
    const book = ledger(30);
    const results = await Promise.all(
      Array.from({ length: 200 }, (_, i) => (i % 2 ? a : b).admit(sale, `order-${i}`, `member-${i}`, 1, book.read)),
    );
    const tickets = results.flatMap((r) => (r.ok ? [r.ticket] : [])).sort((x, y) => x - y);
    expect(tickets).toEqual(Array.from({ length: 30 }, (_, i) => i + 1));
  });

  test('a wiped gate is rebuilt from the ledger on the next admission', async () => {
    const prefix = `flywheel-test:${randomBytes(4).toString('hex')}:`;
    const gate = redisGate(prefix);
    const sale = newSale();
    const book = ledger(5);
    for (let i = 0; i < 5; i++) await gate.admit(sale, `o${i}`, `m${i}`, 1, book.read);
    const redis = new Redis(REDIS_URL);
    await redis.del(...(await redis.keys(`${prefix}*`)));
    await redis.quit();
    // Three of the five were reserved and two given back meanwhile: the ledger says 2.
    book.available = 2;
    const after = await Promise.all(Array.from({ length: 10 }, (_, i) => gate.admit(sale, `n${i}`, `k${i}`, 1, book.read)));
    expect(after.filter((r) => r.ok)).toHaveLength(2);
  });
});
