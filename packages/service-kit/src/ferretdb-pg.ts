import { createHash } from 'node:crypto';
import { Client, escapeIdentifier, escapeLiteral } from 'pg';

// FerretDB v1's PostgreSQL handler (the FLYWHEEL_DB=postgres profile) keeps each database as a
// PostgreSQL schema and each collection as a table of one `_jsonb` column with a hashed name; the
// mapping and every index's key live in `<schema>._ferretdb_database_metadata` (v1.24.2,
// internal/backends/postgresql/metadata). Its find pushes scalar equality down as
// `_jsonb->$1 @> $2`, but `createIndex` builds btree indexes on `(_jsonb->'field')`, which
// cannot serve `@>` (FerretDB issue #4646): every look-up, even by `_id`, is a sequential scan.
// A GIN index on the same expression serves it. The planner only sees the field when it plans
// with the parameters (a custom plan), so the database also runs with
// `plan_cache_mode = force_custom_plan` (set by whoever creates it: packages/testing's infra).
// `fastupdate = off`: with GIN's default pending list, every insert since the last vacuum is
// read linearly by every look-up (measured: 2.7 ms against 0.03 ms at 50k fresh documents).

const METADATA_TABLE = '_ferretdb_database_metadata';

export interface GinIndex {
  collection: string;
  table: string;
  field: string;
  index: string;
}

/**
 * The GIN indexes that serve FerretDB's pushed-down equality for every field of every index of
 * `database` (the MongoDB database name), `_id` included. Dotted fields are left out: FerretDB v1
 * does not push them down.
 */
export async function ferretGinIndexes(client: Client, database: string): Promise<GinIndex[]> {
  const metadata = `${escapeIdentifier(database)}.${escapeIdentifier(METADATA_TABLE)}`;
  const exists = await client.query<{ t: string | null }>('SELECT to_regclass($1) AS t', [metadata]);
  if (!exists.rows[0]?.t) return []; // no collection yet: nothing to serve
  const { rows } = await client.query<{ collection: string; table: string; field: string }>(
    `SELECT DISTINCT m._jsonb->>'_id' AS collection, m._jsonb->>'table' AS table, k.field
       FROM ${metadata} m,
            jsonb_array_elements(m._jsonb->'indexes') i,
            jsonb_object_keys(i->'key') k(field)
      WHERE k.field NOT LIKE '$%' AND strpos(k.field, '.') = 0
      ORDER BY 1, 3`,
  );
  return rows.map((r) => ({ ...r, index: ginIndexName(r.table, r.field) }));
}

/**
 * Creates the missing GIN indexes of `database` (see ferretGinIndexes) and returns the ones this
 * call created. Idempotent; replicas starting together may race, and the loser's "already
 * exists" is success.
 */
export async function ensureFerretGinIndexes(pgUrl: string, database: string): Promise<GinIndex[]> {
  const client = new Client({ connectionString: pgUrl, application_name: 'flywheel-gin-indexes' });
  await client.connect();
  try {
    const created: GinIndex[] = [];
    for (const gin of await ferretGinIndexes(client, database)) {
      const present = await client.query('SELECT 1 FROM pg_indexes WHERE schemaname = $1 AND indexname = $2', [database, gin.index]);
      if (present.rowCount) continue;
      try {
        await client.query(
          `CREATE INDEX IF NOT EXISTS ${escapeIdentifier(gin.index)}
             ON ${escapeIdentifier(database)}.${escapeIdentifier(gin.table)} USING gin ((_jsonb->${escapeLiteral(gin.field)}))
             WITH (fastupdate = off)`,
        );
        created.push(gin);
      } catch (err) {
        // 42P07 duplicate relation, 23505 the catalog's unique name: another replica made it first.
        const code = (err as { code?: string }).code;
        if (code !== '42P07' && code !== '23505') throw err;
      }
    }
    return created;
  } finally {
    await client.end();
  }
}

/**
 * `<table>_<field>_<hash>_gin`, at most 63 bytes (PostgreSQL's limit). FerretDB names its own
 * indexes `…_idx` and checks only its own names, so the suffix keeps the two from colliding.
 */
export function ginIndexName(table: string, field: string): string {
  const hash = createHash('sha256').update(`${table}\0${field}`).digest('hex').slice(0, 8);
  const part = (s: string, n: number) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9_]/g, '_')
      .slice(0, n);
  return `${part(table, 28)}_${part(field, 20)}_${hash}_gin`;
}
