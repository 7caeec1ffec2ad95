import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Schema, type Connection } from 'mongoose';
import { Client, escapeLiteral } from 'pg';
import { ensureTools, startFerretDb, type FerretDbProcess } from '@flywheel/testing';
import { connectMongo, ensureFerretGinIndexes, ensureIndexes, ferretGinIndexes } from '@flywheel/service-kit';

// The FLYWHEEL_DB=postgres profile on the machine's PostgreSQL, whatever handler the rest of the
// run uses: FerretDB v1.24's PostgreSQL handler on a fresh database, a collection indexed through
// mongoose, the kit's GIN step, then PostgreSQL's own plans for the SQL FerretDB sends.

let dir: string;
let ferret: FerretDbProcess;
let conn: Connection;
let pg: Client;
const dbName = 'flywheel_gin_probe';

interface Item {
  _id: string;
  sku: string;
  cat: string;
  n: number;
  nested: { a: string };
}

beforeAll(async () => {
  ensureTools();
  dir = mkdtempSync(join(tmpdir(), 'flywheel-ferret-pg-'));
  ferret = await startFerretDb(join(dir, 'ferretdb'), undefined, { db: 'postgres' });
  conn = await connectMongo(ferret.url, dbName);
  pg = new Client({ connectionString: ferret.pgUrl });
  await pg.connect();
}, 60_000);

afterAll(async () => {
  await pg?.end();
  await conn?.close();
  await ferret?.stop(); // drops the fresh PostgreSQL database
  if (dir) rmSync(dir, { recursive: true, force: true });
});

/** The plan's node types and index names, flattened (EXPLAIN … FORMAT JSON). */
function planNodes(plan: Record<string, unknown>): string[] {
  const here = [`${String(plan['Node Type'])}${plan['Index Name'] ? ` on ${String(plan['Index Name'])}` : ''}`];
  return here.concat(((plan.Plans ?? []) as Record<string, unknown>[]).flatMap(planNodes));
}

test('FerretDB on PostgreSQL: indexed equality look-ups are served by GIN indexes under custom plans, not scans', async () => {
  expect(ferret.handler).toBe('postgresql');
  // Every session on the database plans with the parameters' values, FerretDB's included.
  expect((await pg.query('SHOW plan_cache_mode')).rows[0].plan_cache_mode).toBe('force_custom_plan');

  const schema = new Schema<Item>({ _id: String, sku: { type: String, unique: true }, cat: String, n: Number, nested: { a: String } });
  schema.index({ cat: 1, n: -1 });
  schema.index({ 'nested.a': 1 });
  const Items = conn.model<Item>('Item', schema, 'items');
  await ensureIndexes(conn);
  for (let i = 0; i < 4_000; i += 1_000) {
    await Items.insertMany(
      Array.from({ length: 1_000 }, (_, j) => ({
        _id: `item-${i + j}`,
        sku: `S-${i + j}`,
        cat: `c${(i + j) % 40}`,
        n: i + j,
        nested: { a: `a${j}` },
      })),
    );
  }

  // FerretDB's own indexes are btree: they cannot serve its `@>` equality.
  const btree = await pg.query<{ indexdef: string }>('SELECT indexdef FROM pg_indexes WHERE schemaname = $1', [dbName]);
  expect(btree.rows.some((r) => /USING gin/.test(r.indexdef))).toBe(false);

  const created = await ensureFerretGinIndexes(ferret.pgUrl!, dbName);
  // Every field of every index, `_id` included; a dotted field is never pushed down by FerretDB v1.
  expect(created.map((g) => `${g.collection}.${g.field}`).sort()).toEqual(['items._id', 'items.cat', 'items.n', 'items.sku']);
  expect(await ensureFerretGinIndexes(ferret.pgUrl!, dbName)).toEqual([]); // idempotent: once per start is enough
  const table = created[0]!.table;
  const gin = await pg.query<{ indexname: string; indexdef: string }>(
    "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 AND indexdef LIKE '%USING gin%'",
    [dbName],
  );
  expect(gin.rows).toHaveLength(4);
  expect(gin.rows.find((r) => r.indexname === created.find((g) => g.field === 'sku')!.index)?.indexdef).toContain(
    `USING gin (((_jsonb -> 'sku'::text))) WITH (fastupdate=off)`,
  );

  // FerretDB's query shape (v1.24.2 postgresql/query.go), prepared as its driver does: the field
  // is a parameter. Past the planner's five custom plans, `auto` may settle on a generic plan.
  await pg.query(`PREPARE ferret_find(text, jsonb) AS SELECT _jsonb FROM "${dbName}"."${table}" WHERE _jsonb->$1 @> $2`);
  const explain = async (field: string, value: unknown) => {
    const args = `${escapeLiteral(field)}, ${escapeLiteral(JSON.stringify(value))}`;
    return planNodes((await pg.query(`EXPLAIN (FORMAT JSON) EXECUTE ferret_find(${args})`)).rows[0]['QUERY PLAN'][0].Plan);
  };
  const ginOf = (field: string) => created.find((g) => g.field === field)!.index;
  for (let i = 0; i < 8; i++) {
    for (const [field, value] of [
      ['sku', `S-${i * 97}`],
      ['_id', `item-${i * 31}`],
      ['n', i * 11],
    ] as const) {
      const nodes = await explain(field, value);
      expect(nodes).toContain(`Bitmap Index Scan on ${ginOf(field)}`);
      expect(nodes.join()).not.toMatch(/Seq Scan/);
    }
  }
  // The same statement under a generic plan: the field is unknown, no index expression matches.
  await pg.query('SET plan_cache_mode = force_generic_plan');
  expect(await explain('sku', 'S-5')).toEqual(['Seq Scan']);
  await pg.query('RESET plan_cache_mode');

  // And FerretDB itself: its explain of a find runs EXPLAIN on the very SQL it sends.
  const explained = await conn.db!.command({ explain: { find: 'items', filter: { sku: 'S-1234' } } });
  expect(explained.filterPushdown).toBe(true);
  expect(planNodes(explained.queryPlanner.Plan)).toContain(`Bitmap Index Scan on ${ginOf('sku')}`);
  expect(await Items.findOne({ sku: 'S-1234' }).lean()).toMatchObject({ _id: 'item-1234', n: 1234 });
  expect(await Items.findById('item-77').lean()).toMatchObject({ sku: 'S-77' });
  expect(await Items.countDocuments({ cat: 'c3' })).toBe(100);

  // A collection created later is covered by the next start (ferretGinIndexes lists what is due).
  await conn.db!.collection('later').insertOne({ _id: 'x' } as never);
  expect((await ferretGinIndexes(pg, dbName)).filter((g) => g.collection === 'later').map((g) => g.field)).toEqual(['_id']);
});
