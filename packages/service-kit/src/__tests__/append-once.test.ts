import { Schema, type Connection, type Model } from 'mongoose';
import { mongoUrl, uniqueDbName } from '@flywheel/testing';
import { appendOnce, connectMongo, knownLedgerHead, ledgerIndexes, LedgerContentionError, type OpLedgerEntry } from '@flywheel/service-kit';

// appendOnce against the real FerretDB: a duplicate key on a ledger with a unique `op` is either a
// lost race for the seq (retry) or the op already applied (stop); these tell the two apart.

interface Earn extends OpLedgerEntry {
  points: number;
  total: number;
}

let db: Connection;
let Ledger: Model<Earn>;

beforeAll(async () => {
  db = await connectMongo(mongoUrl(), uniqueDbName('appendonce'));
  const schema = new Schema<Earn>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      points: { type: Number, required: true },
      total: { type: Number, required: true },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) schema.index(idx);
  schema.index({ op: 1 }, { unique: true });
  Ledger = db.model<Earn>('Earn', schema, 'earns');
  await Ledger.createIndexes();
});
afterAll(async () => {
  await db.dropDatabase();
  await db.close();
});

const earn = (points: number) => (head: Earn | null) => ({ points, total: (head?.total ?? 0) + points });
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);
const entries = async (accountId: string) => (await Ledger.find({ accountId }).sort({ seq: 1 }).lean()) as Earn[];

test('20 different ops at once on one account: each written once, seq 1..20 contiguous, totals built on the real head', async () => {
  const results = await Promise.all(range(1, 20).map((i) => appendOnce(Ledger, 'acct-race', `race-${i}`, earn(1))));
  expect(results.every((r) => r !== null)).toBe(true);
  const stored = await entries('acct-race');
  expect(stored.map((e) => e.seq)).toEqual(range(1, 20));
  expect(stored.map((e) => e.total)).toEqual(range(1, 20));
  expect(new Set(stored.map((e) => e.op)).size).toBe(20);
});

test('the same op delivered 15 times at once: one entry, every other delivery gets null', async () => {
  await appendOnce(Ledger, 'acct-replay', 'order-0', earn(5));
  const results = await Promise.all(range(1, 15).map(() => appendOnce(Ledger, 'acct-replay', 'order-1', earn(3))));
  expect(results.filter((r) => r !== null)).toHaveLength(1);
  expect(results.find((r) => r !== null)).toMatchObject({ _id: 'acct-replay:2', seq: 2, op: 'order-1', total: 8 });
  // A late replay, with older entries on top of the op's: still null, nothing written.
  await appendOnce(Ledger, 'acct-replay', 'order-2', earn(1));
  expect(await appendOnce(Ledger, 'acct-replay', 'order-1', earn(3))).toBeNull();
  expect((await entries('acct-replay')).map((e) => [e.op, e.total])).toEqual([
    ['order-0', 5],
    ['order-1', 8],
    ['order-2', 9],
  ]);
});

test('a stale known head costs a retry on the real head, never a fork or a lost op', async () => {
  const first = (await appendOnce(Ledger, 'acct-known', 'a', earn(1)))!;
  expect(knownLedgerHead(Ledger, 'acct-known')).toMatchObject({ seq: 1 });
  // Another replica appends behind this process's back.
  await db.collection('earns').insertOne({ _id: 'acct-known:2', accountId: 'acct-known', seq: 2, op: 'b', points: 1, total: 2 } as never);
  const third = await appendOnce(Ledger, 'acct-known', 'c', earn(1), { knownHead: first, raw: true });
  expect(third).toMatchObject({ _id: 'acct-known:3', seq: 3, total: 3 });
  // The op the other replica wrote, seen only through the stale head: already applied.
  expect(await appendOnce(Ledger, 'acct-known', 'b', earn(1), { knownHead: first })).toBeNull();
  expect((await entries('acct-known')).map((e) => e.op)).toEqual(['a', 'b', 'c']);
});

test('an op whose every seq is taken by another op gives up with LedgerContentionError', async () => {
  await appendOnce(Ledger, 'acct-jam', 'jam-1', earn(1));
  // The next id is held by an entry the head read does not see (another account's): each try collides.
  await Ledger.create({ _id: 'acct-jam:2', accountId: 'elsewhere', seq: 1, op: 'other', points: 0, total: 0 });
  const err = await appendOnce(Ledger, 'acct-jam', 'jam-2', earn(1), { maxAttempts: 3 }).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(LedgerContentionError);
  expect(await Ledger.countDocuments({ accountId: 'acct-jam' })).toBe(1);
});
