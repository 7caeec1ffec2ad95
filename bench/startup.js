#!/usr/bin/env node
// Cold start of the whole stack (7 subgraphs + gateway as separate processes, fresh FerretDB
// and NATS) and each process's resident memory once ready and after a little traffic.
// Prints figures; asserts nothing. Needs a build (npm run build) and the tools (npm run tools).
const { mkdtempSync, readFileSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { randomBytes } = require('node:crypto');
const { startFerretDb, startNats, freePort } = require('../packages/testing/dist/infra');
const { startStack, STACK_SERVICES } = require('../packages/testing/dist/stack');

const rssMiB = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Math.round(Number(m[1]) / 1024) : null;
};

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'flywheel-bench-'));
  const t0 = Date.now();
  const [ferret, nats] = await Promise.all([startFerretDb(join(dir, 'ferret')), startNats(join(dir, 'nats'))]);
  const infraMs = Date.now() - t0;
  const ports = { gateway: await freePort() };
  for (const s of STACK_SERVICES) ports[s] = await freePort();
  const stack = await startStack({
    env: {
      NODE_ENV: 'production',
      LOG_LEVEL: 'warn',
      MONGO_URL: ferret.url,
      NATS_URL: nats.url,
      INTERNAL_TOKEN_SECRET: randomBytes(32).toString('hex'),
      AUTH_TOKEN_SECRET: randomBytes(32).toString('hex'),
      PII_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
      PII_LOOKUP_KEY: randomBytes(32).toString('base64'),
      PAYMENT_TEST_SECRET: randomBytes(32).toString('hex'),
    },
    ports,
    logDir: join(dir, 'logs'),
  });
  const rssReady = Object.fromEntries(stack.processes.map((p) => [p.name, rssMiB(p.proc.pid)]));
  const query =
    '{ products(first: 10) { edges { node { id name } } } articles(first: 5) { edges { node { id title } } } liveRooms(first: 5) { edges { node { id title } } } }';
  for (let i = 0; i < 200; i++) {
    await fetch(stack.gatewayUrl, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ query }) });
  }
  const rssAfter = Object.fromEntries(stack.processes.map((p) => [p.name, rssMiB(p.proc.pid)]));
  await stack.stop();
  await Promise.all([ferret.stop(), nats.stop()]);
  rmSync(dir, { recursive: true, force: true });
  const total = (o) => Object.values(o).reduce((a, b) => a + (b ?? 0), 0);
  console.log(
    JSON.stringify({
      infraStartMs: infraMs,
      stackReadyMs: stack.startupMs,
      coldStartMs: infraMs + stack.startupMs,
      rssMiBReady: rssReady,
      rssMiBAfter200Queries: rssAfter,
      rssMiBTotalReady: total(rssReady),
    }),
  );
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
