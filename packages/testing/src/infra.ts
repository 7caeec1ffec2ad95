import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join, resolve } from 'node:path';
import { Client, escapeIdentifier } from 'pg';

/** Repository root (this file lives in packages/testing/{src,dist}). */
export const ROOT = resolve(__dirname, '../../..');
export const TOOLS_BIN = join(ROOT, '.tools/bin');

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', rej);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => res(port));
    });
  });
}

export async function waitForPort(port: number, timeoutMs = 30_000, host = '127.0.0.1'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const ok = await new Promise<boolean>((res) => {
      const s = netConnect({ port, host }, () => {
        s.end();
        res(true);
      });
      s.on('error', () => res(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`nothing listening on ${host}:${port} after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

/** Builds the pinned FerretDB and nats-server into .tools/bin if missing (scripts/install-tools.sh). */
export function ensureTools(): void {
  if (existsSync(join(TOOLS_BIN, 'ferretdb')) && existsSync(join(TOOLS_BIN, 'nats-server'))) return;
  execFileSync('bash', [join(ROOT, 'scripts/install-tools.sh')], {
    stdio: 'inherit',
    env: { ...process.env, MONGO_URL: '', NATS_URL: '' },
  });
}

export interface InfraProcess {
  url: string;
  port: number;
  proc: ChildProcess;
  stop(): Promise<void>;
}

function stopProc(proc: ChildProcess): Promise<void> {
  return new Promise((res) => {
    if (proc.exitCode !== null || proc.signalCode !== null) return res();
    const kill = setTimeout(() => proc.kill('SIGKILL'), 5_000);
    proc.once('exit', () => {
      clearTimeout(kill);
      res();
    });
    proc.kill('SIGTERM');
  });
}

async function launch(bin: string, args: string[], port: number, url: string, logName: string): Promise<InfraProcess> {
  const proc = spawn(join(TOOLS_BIN, bin), args, { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr?.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4_000);
  });
  const exited = new Promise<never>((_, rej) =>
    proc.once('exit', (code) => rej(new Error(`${logName} exited with ${code} before listening:\n${stderr}`))),
  );
  await Promise.race([waitForPort(port), exited]);
  return { url, port, proc, stop: () => stopProc(proc) };
}

/** Which FerretDB handler the launcher, the benches and the test run start: FLYWHEEL_DB, default sqlite. */
export type DbProfile = 'sqlite' | 'postgres';

export function dbProfile(env: NodeJS.ProcessEnv = process.env): DbProfile {
  const v = env.FLYWHEEL_DB || 'sqlite';
  if (v !== 'sqlite' && v !== 'postgres') throw new Error(`FLYWHEEL_DB must be sqlite or postgres, not ${JSON.stringify(v)}`);
  return v;
}

/**
 * The PostgreSQL server of the postgres profile: FLYWHEEL_PG_URL, else PG_URL, else the machine's.
 * Its database is only where CREATE/DROP DATABASE are sent from; FerretDB gets a database of its own.
 */
export function pgServerUrl(env: NodeJS.ProcessEnv = process.env): string {
  return env.FLYWHEEL_PG_URL || env.PG_URL || 'postgres://postgres@127.0.0.1:5432/postgres';
}

async function withPg<T>(url: string, fn: (c: Client) => Promise<T>): Promise<T> {
  const client = new Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  try {
    await client.connect();
  } catch (err) {
    throw new Error(`FLYWHEEL_DB=postgres: cannot reach PostgreSQL at ${url.replace(/:[^:@/]*@/, ':***@')} (${String(err)})`);
  }
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/**
 * Creates `database` on the PostgreSQL server unless it exists, and makes every session on it plan
 * with the parameters' values (`plan_cache_mode = force_custom_plan`): FerretDB prepares its
 * queries with the field name as a parameter, and a generic plan cannot match the GIN indexes
 * the services add (service-kit ferretdb-pg.ts), so it would scan. Returns the database's URL.
 */
export async function createFerretPgDatabase(database: string, serverUrl = pgServerUrl()): Promise<string> {
  await withPg(serverUrl, async (c) => {
    const found = await c.query('SELECT 1 FROM pg_database WHERE datname = $1', [database]);
    // UTF8 and the C locale: what FerretDB accepts, whatever the server's template says.
    if (!found.rowCount) {
      await c.query(`CREATE DATABASE ${escapeIdentifier(database)} TEMPLATE template0 ENCODING 'UTF8' LC_COLLATE 'C' LC_CTYPE 'C'`);
    }
    await c.query(`ALTER DATABASE ${escapeIdentifier(database)} SET plan_cache_mode = force_custom_plan`);
  });
  const url = new URL(serverUrl);
  url.pathname = `/${encodeURIComponent(database)}`;
  return url.toString();
}

export async function dropFerretPgDatabase(database: string, serverUrl = pgServerUrl()): Promise<void> {
  await withPg(serverUrl, (c) => c.query(`DROP DATABASE IF EXISTS ${escapeIdentifier(database)} WITH (FORCE)`));
}

export interface FerretDbOptions {
  /** The handler; FLYWHEEL_DB when not given. */
  db?: DbProfile;
  /**
   * postgres only: the PostgreSQL database to use (created if missing, kept by stop()). Without
   * it, a fresh `flywheel_ferret_<random>` that stop() drops.
   */
  pgDatabase?: string;
}

export interface FerretDbProcess extends InfraProcess {
  handler: 'sqlite' | 'postgresql';
  /** postgres profile: FerretDB's PostgreSQL database (services get it as FERRETDB_PG_URL). */
  pgUrl?: string;
}

/**
 * FerretDB v1 on `port`, telemetry off: the SQLite handler with its data under `dataDir`, or with
 * the postgres profile the PostgreSQL handler on a database of its own (`dataDir` keeps its state file).
 */
export async function startFerretDb(dataDir: string, port?: number, opts: FerretDbOptions = {}): Promise<FerretDbProcess> {
  mkdirSync(dataDir, { recursive: true });
  const p = port ?? (await freePort());
  const common = [`--state-dir=${dataDir}`, `--listen-addr=127.0.0.1:${p}`, '--debug-addr=-', '--telemetry=disable', '--log-level=warn'];
  if ((opts.db ?? dbProfile()) === 'sqlite') {
    const f = await launch(
      'ferretdb',
      ['--handler=sqlite', `--sqlite-url=file:${dataDir}/`, ...common],
      p,
      `mongodb://127.0.0.1:${p}/`,
      'ferretdb',
    );
    return { ...f, handler: 'sqlite' };
  }
  const database = opts.pgDatabase ?? `flywheel_ferret_${randomBytes(4).toString('hex')}`;
  const pgUrl = await createFerretPgDatabase(database);
  let f: InfraProcess;
  try {
    f = await launch(
      'ferretdb',
      ['--handler=postgresql', `--postgresql-url=${pgUrl}`, ...common],
      p,
      `mongodb://127.0.0.1:${p}/`,
      'ferretdb',
    );
  } catch (err) {
    if (!opts.pgDatabase) await dropFerretPgDatabase(database);
    throw err;
  }
  const stop = async () => {
    await f.stop();
    if (!opts.pgDatabase) await dropFerretPgDatabase(database);
  };
  return { ...f, stop, handler: 'postgresql', pgUrl };
}

/** nats-server with JetStream, its own store under `dataDir`. */
export async function startNats(dataDir: string, port?: number): Promise<InfraProcess> {
  mkdirSync(dataDir, { recursive: true });
  const p = port ?? (await freePort());
  return launch('nats-server', ['-a', '127.0.0.1', '-p', String(p), '-js', '-sd', dataDir], p, `nats://127.0.0.1:${p}`, 'nats-server');
}
