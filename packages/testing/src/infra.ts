import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { existsSync, mkdirSync } from 'node:fs';
import { createServer, connect as netConnect } from 'node:net';
import { join, resolve } from 'node:path';

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

/** FerretDB v1 (SQLite handler, telemetry off) on `port`, data under `dataDir`. */
export async function startFerretDb(dataDir: string, port?: number): Promise<InfraProcess> {
  mkdirSync(dataDir, { recursive: true });
  const p = port ?? (await freePort());
  return launch(
    'ferretdb',
    [
      '--handler=sqlite',
      `--sqlite-url=file:${dataDir}/`,
      `--state-dir=${dataDir}`,
      `--listen-addr=127.0.0.1:${p}`,
      '--debug-addr=-',
      '--telemetry=disable',
      '--log-level=warn',
    ],
    p,
    `mongodb://127.0.0.1:${p}/`,
    'ferretdb',
  );
}

/** nats-server with JetStream, its own store under `dataDir`. */
export async function startNats(dataDir: string, port?: number): Promise<InfraProcess> {
  mkdirSync(dataDir, { recursive: true });
  const p = port ?? (await freePort());
  return launch('nats-server', ['-a', '127.0.0.1', '-p', String(p), '-js', '-sd', dataDir], p, `nats://127.0.0.1:${p}`, 'nats-server');
}
