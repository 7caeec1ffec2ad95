// Shared by the bench scripts: a stack of its own (fresh FerretDB + NATS, the 7 subgraphs and
// the gateway as separate processes from dist/), tokens, a GraphQL client and percentiles.
// FLYWHEEL_DB=postgres runs that FerretDB on the machine's PostgreSQL (a fresh database, dropped after).
// Set BENCH_GATEWAY_URL (+ BENCH_AUTH_TOKEN_SECRET, BENCH_INTERNAL_TOKEN_SECRET, BENCH_NATS_URL) to use a running stack.
const { spawn } = require('node:child_process');
const { closeSync, cpSync, mkdirSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } = require('node:fs');
const { performance } = require('node:perf_hooks');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const http = require('node:http');
const { startFerretDb, startNats, freePort } = require('../packages/testing/dist/infra');
const { startStack, STACK_SERVICES } = require('../packages/testing/dist/stack');
const { signJwt, signInternalToken } = require('../packages/service-kit/dist/tokens');

// Enough keep-alive sockets for a thousand concurrent clients on loopback.
const agent = new http.Agent({ keepAlive: true, maxSockets: 2048 });

async function benchStack(extraEnv = {}) {
  if (process.env.BENCH_GATEWAY_URL) {
    return {
      gatewayUrl: process.env.BENCH_GATEWAY_URL,
      natsUrl: process.env.BENCH_NATS_URL,
      subgraphUrl: (name) => process.env[`BENCH_${name.toUpperCase()}_URL`],
      authSecret: process.env.BENCH_AUTH_TOKEN_SECRET,
      internalSecret: process.env.BENCH_INTERNAL_TOKEN_SECRET,
      stop: async () => undefined,
    };
  }
  const dir = mkdtempSync(join(tmpdir(), 'flywheel-bench-'));
  // Every service sums its database commands into <profile>/<db>.json every few seconds (the
  // kit's DB_PROFILE_DIR): what `commandsPerOp` reads.
  const profileDir = join(dir, 'db-profile');
  mkdirSync(profileDir);
  const [ferret, nats] = await Promise.all([startFerretDb(join(dir, 'ferret')), startNats(join(dir, 'nats'))]);
  const ports = { gateway: await freePort() };
  for (const s of STACK_SERVICES) ports[s] = await freePort();
  const authSecret = randomBytes(32).toString('hex');
  const internalSecret = randomBytes(32).toString('hex');
  const env = {
    NODE_ENV: 'production',
    LOG_LEVEL: 'warn',
    MONGO_URL: ferret.url,
    ...(ferret.pgUrl ? { FERRETDB_PG_URL: ferret.pgUrl } : {}),
    NATS_URL: nats.url,
    INTERNAL_TOKEN_SECRET: internalSecret,
    AUTH_TOKEN_SECRET: authSecret,
    PII_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    PII_LOOKUP_KEY: randomBytes(32).toString('base64'),
    PAYMENT_TEST_SECRET: randomBytes(32).toString('hex'),
    DB_PROFILE_DIR: profileDir,
    // A bench is a flood from one address: the per-identity limit would measure itself.
    RATE_LIMIT_PER_MINUTE: '100000000',
    SENSITIVE_CALLS_PER_MINUTE: '100000000',
    // A flash sale queues a thousand checkouts behind one SKU: measure the queue, not the bound.
    SUBGRAPH_TIMEOUT_MS: '60000',
    ...extraEnv,
  };
  const stack = await startStack({ env, ports, logDir: join(dir, 'logs') });
  const subgraphUrl = (name) => `http://127.0.0.1:${ports[name]}/graphql`;
  const gateways = [];
  return {
    gatewayUrl: stack.gatewayUrl,
    natsUrl: nats.url,
    subgraphUrl,
    authSecret,
    internalSecret,
    processes: stack.processes,
    profileDir,
    /** Another gateway process on the same subgraphs, with `moreEnv` over the stack's environment; its URL once ready. */
    async startGateway(moreEnv = {}) {
      const port = await freePort();
      const log = openSync(join(dir, 'logs', `gateway-${port}.log`), 'a');
      const proc = spawn(process.execPath, ['--enable-source-maps', join(__dirname, '../gateway/dist/main.js')], {
        env: {
          ...process.env,
          ...env,
          ...Object.fromEntries(STACK_SERVICES.map((s) => [`${s.toUpperCase()}_URL`, subgraphUrl(s)])),
          PORT: String(port),
          OTEL_SERVICE_NAME: 'gateway',
          ...moreEnv,
        },
        stdio: ['ignore', log, log],
      });
      closeSync(log);
      gateways.push(proc);
      for (const deadline = Date.now() + 30_000; ; await sleep(150)) {
        if (proc.exitCode !== null) throw new Error(`extra gateway exited with code ${proc.exitCode} (see gateway-${port}.log)`);
        if (await isReady(port)) break;
        if (Date.now() > deadline) throw new Error('extra gateway not ready in time');
      }
      return `http://127.0.0.1:${port}/graphql`;
    },
    async stop() {
      await Promise.all(gateways.filter((p) => p.exitCode === null).map((p) => new Promise((r) => (p.once('exit', r), p.kill('SIGTERM')))));
      await stack.stop();
      await Promise.all([ferret.stop(), nats.stop()]);
      // BENCH_PROFILE_OUT=<dir> keeps the command profiles (which command, filter shape, how often).
      if (process.env.BENCH_PROFILE_OUT) cpSync(profileDir, process.env.BENCH_PROFILE_OUT, { recursive: true });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

const isReady = (port) =>
  fetch(`http://127.0.0.1:${port}/readyz`)
    .then((r) => r.ok)
    .catch(() => false);

const token = (secret, sub, roles) =>
  signJwt({ iss: 'flywheel-membership', aud: 'flywheel-gateway', sub, roles, typ: 'access' }, secret, 3600);
const objectId = () => randomBytes(12).toString('hex');

function gql(url, query, variables = {}, headers = {}) {
  const body = JSON.stringify({ query, variables });
  return new Promise((resolve, reject) => {
    const req = http.request(
      url,
      { method: 'POST', agent, headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...headers } },
      (res) => {
        let text = '';
        res.setEncoding('utf8');
        res.on('data', (c) => (text += c));
        res.on('end', () => {
          try {
            resolve(JSON.parse(text));
          } catch {
            reject(new Error(`non-JSON ${res.statusCode}: ${text.slice(0, 200)}`));
          }
        });
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

function must(result, what) {
  if (result.errors?.length || !result.data) throw new Error(`${what}: ${JSON.stringify(result.errors ?? result)}`);
  return result.data;
}

function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)];
}
const round = (n) => (n === null ? null : Math.round(n * 10) / 10);

/** Database commands each service has sent so far: `{ <service>: n }` from the profile files. */
function dbCommands(profileDir) {
  const out = {};
  for (const f of readdirSync(profileDir).filter((n) => n.endsWith('.json'))) {
    const service = f.replace(/^flywheel_/, '').replace(/\.json$/, '');
    try {
      out[service] = JSON.parse(readFileSync(join(profileDir, f), 'utf8')).reduce((sum, row) => sum + row.n, 0);
    } catch {
      out[service] = out[service] ?? 0; // caught mid-write: the next read has it
    }
  }
  return out;
}

/** Services write their profile every 3 s (kit db-profile.ts). */
const PROFILE_FLUSH_MS = 3_500;

/**
 * Database commands per operation of `run()` (which resolves with how many operations it made),
 * per service and in all: the count after minus before, less what the same stack sends idle in
 * as long (sweepers, the outbox relay). This is the figure that carries over to MongoDB.
 */
async function commandsPerOp(stack, run) {
  if (!stack.profileDir) return null; // a stack this bench did not start
  const idleFrom = (await sleep(PROFILE_FLUSH_MS), dbCommands(stack.profileDir));
  const idleTo = (await sleep(PROFILE_FLUSH_MS), dbCommands(stack.profileDir));
  const t0 = performance.now();
  const ops = await run();
  const ms = performance.now() - t0 + PROFILE_FLUSH_MS;
  await sleep(PROFILE_FLUSH_MS);
  const after = dbCommands(stack.profileDir);
  const per = {};
  let total = 0;
  for (const service of Object.keys(after)) {
    const idle = (((idleTo[service] ?? 0) - (idleFrom[service] ?? 0)) * ms) / PROFILE_FLUSH_MS;
    const n = Math.max(0, (after[service] ?? 0) - (idleTo[service] ?? 0) - idle);
    if (n / ops >= 0.05) per[service] = round(n / ops);
    total += n;
  }
  return { ops, total: round(total / ops), ...per };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A closed loop: `concurrency` clients send `total` requests between them, each as soon as its
 * previous one is answered. `send(i)` returns a GraphQL result (or null when the request failed);
 * a result with errors or without data counts as an error. Latencies in ms, sorted.
 */
async function closedLoop(total, concurrency, send) {
  const latencies = [];
  let errors = 0;
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < total) {
        const i = next++;
        const s = performance.now();
        const res = await send(i).catch(() => null);
        latencies.push(performance.now() - s);
        if (!res || res.errors?.length || !res.data) errors++;
      }
    }),
  );
  const wallMs = performance.now() - t0;
  latencies.sort((a, b) => a - b);
  return { latencies, wallMs, errors, rps: total / (wallMs / 1000), p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

module.exports = { benchStack, token, objectId, gql, must, percentile, round, signInternalToken, closedLoop, commandsPerOp };
