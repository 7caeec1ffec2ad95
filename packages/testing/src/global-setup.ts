import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ensureTools, startFerretDb, startNats, type InfraProcess } from './infra';

// One real FerretDB and one real NATS for the whole jest run (unless MONGO_URL / NATS_URL point
// at servers already running). Test files isolate themselves by database name and stream use.
declare global {
  var __flywheelInfra: InfraProcess[] | undefined;
}

export default async function globalSetup(): Promise<void> {
  const started: InfraProcess[] = [];
  const dir = mkdtempSync(join(tmpdir(), 'flywheel-test-'));
  process.env.FLYWHEEL_TEST_DIR = dir;
  if (!process.env.MONGO_URL || !process.env.NATS_URL) ensureTools();
  if (!process.env.MONGO_URL) {
    // FLYWHEEL_DB=postgres: the PostgreSQL handler on a fresh database, dropped by the teardown.
    const f = await startFerretDb(join(dir, 'ferretdb'));
    started.push(f);
    process.env.MONGO_URL = f.url;
    if (f.pgUrl) process.env.FERRETDB_PG_URL = f.pgUrl;
  }
  if (!process.env.NATS_URL) {
    const n = await startNats(join(dir, 'nats'));
    started.push(n);
    process.env.NATS_URL = n.url;
  }
  globalThis.__flywheelInfra = started;
}
