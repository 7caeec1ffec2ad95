import mongoose, { Schema, type Connection } from 'mongoose';
import { mongoUrl, uniqueDbName } from '@flywheel/testing';
import { byIdLoader, connectMongo, findByIds, isDuplicateKey } from '@flywheel/service-kit';

// Proves the pinned mongoose works against the real FerretDB, and documents (as a canary) the
// FerretDB behaviour that makes the claim-by-unique-insert idiom necessary (docs/concurrency.md).

let conn: Connection;
beforeAll(async () => {
  conn = await connectMongo(mongoUrl(), uniqueDbName('ferret'));
});
afterAll(async () => {
  await conn.dropDatabase();
  await conn.close();
});

test('mongoose connects, builds a unique index, inserts, queries and reads a duplicate key as such', async () => {
  const Item = conn.model('Item', new Schema({ sku: { type: String, required: true, unique: true }, qty: Number }));
  await Item.createIndexes();
  const indexes = await Item.collection.indexes();
  expect(indexes.some((i) => i.unique && i.key.sku === 1)).toBe(true);

  await Item.create({ sku: 'A-1', qty: 3 });
  expect(await Item.findOne({ sku: 'A-1' }).lean()).toMatchObject({ sku: 'A-1', qty: 3 });

  const dup = await Item.create({ sku: 'A-1', qty: 9 }).catch((e: unknown) => e);
  expect(isDuplicateKey(dup)).toBe(true);
  expect(await Item.countDocuments({ sku: 'A-1' })).toBe(1);
  expect((await Item.findOne({ sku: 'A-1' }).lean())?.qty).toBe(3);
});

test('a look-up by _id is answered through the _id index (SQLite query plan of FerretDB itself)', async () => {
  // FerretDB's explain runs EXPLAIN QUERY PLAN on the very SQL its find sends. Unpatched v1.24.2
  // filters on `->'$._id'` while the index is on `->"_id"`: SCAN, a full read per look-up. The
  // patch in tools/ferretdb/patches makes the filter the index's own expression.
  const info = await conn.db!.admin().command({ buildInfo: 1 });
  const Doc = conn.model('PlanDoc', new Schema({ _id: String, n: Number }));
  await Doc.create(Array.from({ length: 50 }, (_, i) => ({ _id: `d${i}`, n: i })));
  const explained = await conn.db!.command({ explain: { find: Doc.collection.collectionName, filter: { _id: 'd7' } } });
  const raw: unknown = explained.queryPlanner?.Plan; // SQLite: rows of text; PostgreSQL: a JSON plan
  const plan = Array.isArray(raw) ? raw.join('\n') : JSON.stringify(raw ?? null);
  if (!info.ferretdbVersion || !/^id=\d+ parent=/.test(plan)) {
    // MONGO_URL points at a MongoDB or at FerretDB's PostgreSQL handler: another planner.
    console.info('not FerretDB with the SQLite handler: the SQLite plan check does not apply');
    return;
  }
  expect(explained.filterPushdown).toBe(true);
  expect(plan).toMatch(/SEARCH .* USING INDEX/);
  expect(plan).not.toMatch(/SCAN/);
  expect(await Doc.findById('d7').lean()).toMatchObject({ n: 7 });
});

test('canary: concurrent conditional decrements on one document — the FerretDB non-atomic update', async () => {
  // One unit of stock; many buyers each run the textbook "decrement if still >= 1".
  // On MongoDB exactly one succeeds. FerretDB v1 reads, applies $inc in memory and writes back
  // by _id, so several can succeed and stock goes negative — which is why we claim by insert.
  const Stock = conn.model('CanaryStock', new Schema({ _id: String, available: Number }));
  let observed = 0;
  for (let round = 0; round < 20 && observed <= 1; round++) {
    await Stock.deleteMany({});
    await Stock.create({ _id: 'sku', available: 1 });
    const results = await Promise.all(
      Array.from({ length: 16 }, () => Stock.updateOne({ _id: 'sku', available: { $gte: 1 } }, { $inc: { available: -1 } })),
    );
    observed = Math.max(observed, results.filter((r) => r.modifiedCount === 1).length);
  }
  // If this ever prints 1 on FerretDB, the backend became atomic: the idiom still holds, but
  // docs/concurrency.md should be updated.
  console.info(`canary: ${observed} of 16 racing conditional decrements succeeded on one unit of stock`);
  expect(observed).toBeGreaterThan(1);
});

test('claim by unique insert: many racers, exactly one winner', async () => {
  const Claim = conn.model('Claim', new Schema({ _id: String, by: Number }));
  const outcomes = await Promise.all(
    Array.from({ length: 20 }, (_, i) =>
      Claim.create({ _id: 'order-1:paid', by: i }).then(
        () => true,
        (e: unknown) => {
          if (isDuplicateKey(e)) return false;
          throw e;
        },
      ),
    ),
  );
  expect(outcomes.filter(Boolean)).toHaveLength(1);
  expect(await Claim.countDocuments()).toBe(1);
});

afterAll(() => mongoose.disconnect());

test('findByIds: documents by id without an `$in` scan on FerretDB — missing skipped, repeats read once', async () => {
  interface PointRead {
    _id: string;
    n: number;
    secret?: string;
  }
  const Doc = conn.model<PointRead>('PointRead', new Schema<PointRead>({ _id: String, n: Number, secret: String }));
  await Doc.insertMany(Array.from({ length: 30 }, (_, i) => ({ _id: `d${i}`, n: i, secret: 'x' })));
  const commands: Record<string, unknown>[] = [];
  const listen = (e: { command: Record<string, unknown> }) => {
    if (e.command.find === 'pointreads') commands.push(e.command);
  };
  // connectMongo turns command monitoring on only for DB_PROFILE_DIR; a second client does here.
  const watched = await mongoose.createConnection(mongoUrl(), { dbName: conn.name, monitorCommands: true }).asPromise();
  try {
    watched.getClient().on('commandStarted', listen);
    const W = watched.model<PointRead>('PointRead', Doc.schema);
    const docs = await findByIds<PointRead>(W, ['d3', 'd29', 'missing', 'd3', 'd0'], { n: 1 });
    expect(docs.map((d) => d._id).sort()).toEqual(['d0', 'd29', 'd3']);
    expect(docs.every((d) => d.secret === undefined && d.n === Number(d._id.slice(1)))).toBe(true);
    // FerretDB: one equality look-up per distinct id, never `$in` (a full scan there).
    const filters = commands.map((c) => (c.filter as { _id: unknown })._id);
    expect(filters.sort()).toEqual(['d0', 'd29', 'd3', 'missing']);

    const loader = byIdLoader<PointRead>(W);
    const loaded = await Promise.all(['d5', 'nope', 'd6', 'd5'].map((id) => loader.load(id)));
    expect(loaded.map((d) => d?.n ?? null)).toEqual([5, null, 6, 5]);
    expect(await findByIds(W, [])).toEqual([]);
  } finally {
    watched.getClient().off('commandStarted', listen);
    await watched.close();
  }
});
