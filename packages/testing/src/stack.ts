import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, mkdirSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORTS, SERVICES } from '@flywheel/events';
import { ROOT } from './infra';

/** The subgraphs, in the registry's order (packages/events/src/services.json); the gateway starts after them. */
export const STACK_SERVICES = SERVICES;
export { DEFAULT_PORTS };

export interface StackProcess {
  name: string;
  port: number;
  proc: ChildProcess;
}

export interface RunningStack {
  gatewayUrl: string;
  processes: StackProcess[];
  /** Wall time from spawn to every /readyz answering 200. */
  startupMs: number;
  stop(): Promise<void>;
}

export interface StackOptions {
  /**
   * Environment shared by every process (MONGO_URL, NATS_URL, secrets …). PAYMENT_TEST_SECRET,
   * when not given, is a random one of this stack's own.
   */
  env: NodeJS.ProcessEnv;
  ports?: Partial<typeof DEFAULT_PORTS>;
  /** Each process writes its JSON log lines to <logDir>/<name>.log. */
  logDir: string;
  /** Called with each log line at warn level or above (the launcher prints them). */
  onLogLine?: (name: string, line: string) => void;
  readyTimeoutMs?: number;
}

function entry(name: string): string {
  const file = name === 'gateway' ? join(ROOT, 'gateway/dist/main.js') : join(ROOT, 'services', name, 'dist/main.js');
  if (!existsSync(file)) throw new Error(`${file} is missing: build first (npm run build)`);
  return file;
}

async function waitReady(port: number, proc: ChildProcess, name: string, deadline: number): Promise<void> {
  for (;;) {
    if (proc.exitCode !== null) throw new Error(`${name} exited with code ${proc.exitCode} while starting (see its log)`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/readyz`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${name} not ready on port ${port} in time (see its log)`);
    await new Promise((r) => setTimeout(r, 150));
  }
}

function stopProcess(p: StackProcess, graceMs: number): Promise<void> {
  return new Promise((resolve) => {
    if (p.proc.exitCode !== null || p.proc.signalCode !== null) return resolve();
    const kill = setTimeout(() => p.proc.kill('SIGKILL'), graceMs);
    p.proc.once('exit', () => {
      clearTimeout(kill);
      resolve();
    });
    p.proc.kill('SIGTERM');
  });
}

/**
 * Boots the seven subgraphs and the gateway as separate Node processes from their built
 * output, exactly as they run in production, and waits until each reports ready.
 */
export async function startStack(opts: StackOptions): Promise<RunningStack> {
  const ports = { ...DEFAULT_PORTS, ...opts.ports };
  mkdirSync(opts.logDir, { recursive: true });
  const started = Date.now();
  const deadline = started + (opts.readyTimeoutMs ?? 90_000);
  const processes: StackProcess[] = [];
  // No payment secret is ever a constant: a stack that was not given one makes its own.
  const shared = { PAYMENT_TEST_SECRET: randomBytes(32).toString('base64url'), ...process.env, ...opts.env };
  const spawnOne = (name: string, extra: NodeJS.ProcessEnv) => {
    const port = ports[name as keyof typeof ports];
    const proc = spawn(process.execPath, ['--enable-source-maps', entry(name)], {
      cwd: ROOT,
      env: { ...shared, ...extra, PORT: String(port), OTEL_SERVICE_NAME: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const log = createWriteStream(join(opts.logDir, `${name}.log`), { flags: 'a' });
    let partial = '';
    const onData = (chunk: Buffer) => {
      log.write(chunk);
      if (!opts.onLogLine) return;
      const lines = (partial + chunk.toString()).split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) {
        let level = 50;
        try {
          level = (JSON.parse(line) as { level?: number }).level ?? 50;
        } catch {
          // not JSON: a crash trace; always shown
        }
        if (level >= 40) opts.onLogLine(name, line);
      }
    };
    proc.stdout?.on('data', onData);
    proc.stderr?.on('data', onData);
    proc.once('exit', () => log.end());
    processes.push({ name, port, proc });
    return processes.at(-1)!;
  };
  const stop = async () => {
    await Promise.all(processes.map((p) => stopProcess(p, 15_000)));
  };
  try {
    const subgraphs = STACK_SERVICES.map((s) => spawnOne(s, {}));
    const urls = Object.fromEntries(STACK_SERVICES.map((s) => [`${s.toUpperCase()}_URL`, `http://127.0.0.1:${ports[s]}/graphql`]));
    const gateway = spawnOne('gateway', urls);
    await Promise.all([...subgraphs, gateway].map((p) => waitReady(p.port, p.proc, p.name, deadline)));
  } catch (err) {
    await stop();
    throw err;
  }
  return { gatewayUrl: `http://127.0.0.1:${ports.gateway}/graphql`, processes, startupMs: Date.now() - started, stop };
}
