import { Schema, type Connection, type Model } from 'mongoose';
import { mongoUrl, recordIdReads, uniqueDbName } from '@flywheel/testing';
import {
  appendToLedger,
  claimOnce,
  connectMongo,
  forgetLedgerHead,
  insertDoc,
  knownLedgerHead,
  ledgerHead,
  ledgerIndexes,
  LedgerContentionError,
  type LedgerEntry,
} from '@flywheel/service-kit';

// docs/concurrency.md ("Claims"), claim by unique insert: the one primitive atomic on FerretDB. These run real
// concurrent writers against the real FerretDB, where a conditional update would oversell.

interface Move extends LedgerEntry {
  delta: number;
  balance: number;
}

let db: Connection;
let Ledger: Model<Move>;
interface ClaimDoc {
  _id: string;
  by: number;
  note: string;
}
let Claim: Model<ClaimDoc>;

beforeAll(async () => {
  db = await connectMongo(mongoUrl(), uniqueDbName('claims'));
  const ledgerSchema = new Schema<Move>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      delta: { type: Number, required: true },
      balance: { type: Number, required: true },
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) ledgerSchema.index(idx);
  Ledger = db.model<Move>('Move', ledgerSchema, 'moves');
  Claim = db.model<ClaimDoc>(
    'Claim',
    new Schema<ClaimDoc>({ _id: String, by: Number, note: { type: String, required: true } }, { versionKey: false }),
  );
  await Promise.all([Ledger.createIndexes(), Claim.createIndexes()]);
});
afterAll(async () => {
  await db.dropDatabase();
  await db.close();
});

const deposit = (amount: number) => (head: Move | null) => ({ delta: amount, balance: (head?.balance ?? 0) + amount });
/** Refuses (null) when the withdrawal would take the balance below zero. */
const withdraw = (amount: number) => (head: Move | null) => {
  const balance = head?.balance ?? 0;
  return balance < amount ? null : { delta: -amount, balance: balance - amount };
};

async function entries(accountId: string): Promise<Move[]> {
  return (await Ledger.find({ accountId }).sort({ seq: 1 }).lean()) as Move[];
}
const range = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_, i) => from + i);

test('30 concurrent appenders on one account: seq 1..30, contiguous, no gaps, no duplicates', async () => {
  const results = await Promise.all(Array.from({ length: 30 }, () => appendToLedger(Ledger, 'acct-append', deposit(1))));
  expect(results.every((r) => r !== null)).toBe(true);
  expect(results.map((r) => r!.seq).sort((a, b) => a - b)).toEqual(range(1, 30));

  const stored = await entries('acct-append');
  expect(stored.map((e) => e.seq)).toEqual(range(1, 30));
  expect(stored.map((e) => e._id)).toEqual(range(1, 30).map((s) => `acct-append:${s}`));
  // Each entry was built on the real head: no lost update anywhere in the chain.
  expect(stored.map((e) => e.balance)).toEqual(range(1, 30));
});

test('40 concurrent withdrawals of 1 from a balance of 25: exactly 25 succeed and the balance ends at 0', async () => {
  await appendToLedger(Ledger, 'acct-stock', deposit(25));
  const results = await Promise.all(Array.from({ length: 40 }, () => appendToLedger(Ledger, 'acct-stock', withdraw(1))));
  expect(results.filter((r) => r !== null)).toHaveLength(25);
  expect(results.filter((r) => r === null)).toHaveLength(15);

  const stored = await entries('acct-stock');
  expect(stored.map((e) => e.seq)).toEqual(range(1, 26));
  expect(stored.at(-1)!.balance).toBe(0);
  expect(stored.reduce((sum, e) => sum + e.delta, 0)).toBe(0);
  expect(stored.every((e) => e.balance >= 0)).toBe(true);
  expect(stored.map((e) => e.balance)).toEqual(range(0, 25).reverse());

  // Empty now: a later withdrawal is refused against the real head, and nothing is written.
  expect(await appendToLedger(Ledger, 'acct-stock', withdraw(1))).toBeNull();
  expect(await Ledger.countDocuments({ accountId: 'acct-stock' })).toBe(26);
});

test('concurrent appends on different accounts keep separate sequences', async () => {
  await Promise.all(range(1, 24).map((i) => appendToLedger(Ledger, i % 2 ? 'acct-odd' : 'acct-even', deposit(i))));
  const odd = await entries('acct-odd');
  const even = await entries('acct-even');
  expect(odd.map((e) => e.seq)).toEqual(range(1, 12));
  expect(even.map((e) => e.seq)).toEqual(range(1, 12));
  expect(odd.at(-1)!.balance).toBe(
    range(1, 24)
      .filter((i) => i % 2)
      .reduce((a, b) => a + b, 0),
  );
  expect(even.at(-1)!.balance).toBe(
    range(1, 24)
      .filter((i) => !(i % 2))
      .reduce((a, b) => a + b, 0),
  );
});

test('next sees null for an empty account and the latest entry afterwards', async () => {
  const heads: (Move | null)[] = [];
  const spy = (head: Move | null) => {
    heads.push(head);
    return deposit(5)(head);
  };
  await appendToLedger(Ledger, 'acct-head', spy);
  await appendToLedger(Ledger, 'acct-head', spy);
  expect(heads[0]).toBeNull();
  expect(heads[1]).toMatchObject({ _id: 'acct-head:1', seq: 1, balance: 5 });
});

test('an append that keeps losing gives up with LedgerContentionError after maxAttempts', async () => {
  await appendToLedger(Ledger, 'acct-jam', deposit(1));
  // The next id is taken by an entry the head read does not see: every insert is a duplicate.
  await Ledger.create({ _id: 'acct-jam:2', accountId: 'elsewhere', seq: 1, delta: 0, balance: 0 });
  let calls = 0;
  const err = await appendToLedger(
    Ledger,
    'acct-jam',
    (h) => {
      calls++;
      return deposit(1)(h);
    },
    { maxAttempts: 3 },
  ).catch((e: unknown) => e);
  expect(err).toBeInstanceOf(LedgerContentionError);
  expect(calls).toBe(3);
  expect(await Ledger.countDocuments({ accountId: 'acct-jam' })).toBe(1);
});

test('claimOnce: true once, false for every other claimant', async () => {
  const outcomes = await Promise.all(range(1, 20).map((by) => claimOnce(Claim, { _id: 'order-7:paid', by, note: 'race' })));
  expect(outcomes.filter((o) => o)).toHaveLength(1);
  expect(await claimOnce(Claim, { _id: 'order-7:paid', by: 99, note: 'late' })).toBe(false);
  expect(await Claim.countDocuments({ _id: 'order-7:paid' })).toBe(1);
  const winner = await Claim.findById('order-7:paid').lean();
  expect(outcomes[winner!.by - 1]).toBe(true);
  // A different key is a different claim.
  expect(await claimOnce(Claim, { _id: 'order-7:cancelled', by: 1, note: 'x' })).toBe(true);
});

test('raw claims are written in groups, each with its own outcome: one winner per id, nothing else lost', async () => {
  // 60 claims of 12 ids at once: they share insertMany commands, a duplicate fails its own claim only.
  const outcomes = await Promise.all(
    range(1, 60).map((by) => claimOnce(Claim, { _id: `raw-${by % 12}`, by, note: 'race' }, { raw: true })),
  );
  expect(outcomes.filter((o) => o)).toHaveLength(12);
  const stored = await Claim.find({ _id: { $regex: '^raw-' } } as never).lean();
  expect(stored).toHaveLength(12);
  for (const doc of stored) expect(outcomes[doc.by - 1]).toBe(true);
  // Exactly as built: no casting, undefined fields left out.
  await insertDoc(Claim, { _id: 'raw-plain', by: 1, note: 'x', extra: undefined }, { raw: true });
  expect(await db.collection('claims').findOne({ _id: 'raw-plain' } as never)).toEqual({ _id: 'raw-plain', by: 1, note: 'x' });
});

test('raw appends on the head this process knows: 30 at once stay contiguous, and a stale known head forks nothing', async () => {
  const acc = 'acct-raw';
  const results = await Promise.all(
    range(1, 30).map(() => appendToLedger(Ledger, acc, deposit(1), { raw: true, knownHead: knownLedgerHead(Ledger, acc) })),
  );
  expect(results.map((r) => r!.seq).sort((a, b) => a - b)).toEqual(range(1, 30));
  const known = knownLedgerHead(Ledger, acc)!;
  expect(known.seq).toBe(30);
  // Another replica appends behind this process's back: its known head (30) is stale.
  await db.collection('moves').insertOne({ _id: `${acc}:31`, accountId: acc, seq: 31, delta: 1, balance: 31 } as never);
  const next = await appendToLedger(Ledger, acc, deposit(1), { raw: true, knownHead: known });
  expect(next).toMatchObject({ seq: 32, balance: 32 });
  expect((await entries(acc)).map((e) => e.balance)).toEqual(range(1, 32));
});

test('claimOnce does not swallow errors other than a duplicate key', async () => {
  await expect(claimOnce(Claim, { _id: 'order-8:paid', by: 1 })).rejects.toThrow(/note/);
  expect(await Claim.countDocuments({ _id: 'order-8:paid' })).toBe(0);
});

test('knownHead: a current one saves the read, a stale one never forks the chain, a refusal is re-checked', async () => {
  const first = (await appendToLedger(Ledger, 'acct-known', deposit(5)))!;
  // Current: builds on it directly.
  const second = (await appendToLedger(Ledger, 'acct-known', deposit(1), { knownHead: first }))!;
  expect(second).toMatchObject({ seq: 2, balance: 6 });
  // Stale (seq 2 exists): the insert collides, the real head is read, nothing is lost.
  const third = (await appendToLedger(Ledger, 'acct-known', deposit(1), { knownHead: first }))!;
  expect(third).toMatchObject({ seq: 3, balance: 7 });
  // A refusal on a stale head (balance 5 says no to 6) is decided against the real head (7).
  const fourth = await appendToLedger(Ledger, 'acct-known', withdraw(6), { knownHead: first });
  expect(fourth).toMatchObject({ seq: 4, balance: 1 });
  // …and a real refusal still writes nothing.
  expect(await appendToLedger(Ledger, 'acct-known', withdraw(6), { knownHead: fourth! })).toBeNull();
  const stored = await entries('acct-known');
  expect(stored.map((e) => [e.seq, e.balance])).toEqual([
    [1, 5],
    [2, 6],
    [3, 7],
    [4, 1],
  ]);
});

test('ledgerHead: one look-up when nothing was appended elsewhere; entries written behind its back are still found', async () => {
  const acc = 'head-cache';
  for (let i = 1; i <= 5; i++) await appendToLedger(Ledger, acc, (h) => ({ delta: 1, balance: (h?.balance ?? 0) + 1 }));
  const reads = recordIdReads(db, 'moves');
  expect((await ledgerHead(Ledger, acc))?.seq).toBe(5);
  expect(reads.stop()).toEqual([`${acc}:6`]);
  // Another replica appends 3 entries (a raw insert this process never saw).
  await db
    .collection<{ _id: string }>('moves')
    .insertMany([6, 7, 8].map((seq) => ({ _id: `${acc}:${seq}`, accountId: acc, seq, delta: 1, balance: seq })));
  expect(await ledgerHead(Ledger, acc)).toMatchObject({ seq: 8, balance: 8 });
  // An account whose entries were deleted is forgotten on request, then read afresh.
  await Ledger.deleteMany({ accountId: acc });
  forgetLedgerHead(Ledger, acc);
  expect(await ledgerHead(Ledger, acc)).toBeNull();
});
