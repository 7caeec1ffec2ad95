#!/usr/bin/env node
// `npm start`: the whole stack locally, from nothing. Installs what is missing, starts FerretDB
// and NATS (unless MONGO_URL / NATS_URL are set), the seven subgraphs and the gateway as
// separate processes, seeds demo data once, prints how to use it. Ctrl-C stops everything.
// FLYWHEEL_DB=postgres runs FerretDB on the machine's PostgreSQL (database `flywheel`) instead
// of SQLite files under .data/ferretdb.
const { execSync } = require('node:child_process');
const { existsSync, mkdirSync, readFileSync, writeFileSync } = require('node:fs');
const { randomBytes } = require('node:crypto');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');
const DATA = join(ROOT, '.data');
const run = (cmd) => execSync(cmd, { cwd: ROOT, stdio: 'inherit' });
const say = (msg) => process.stdout.write(`flywheel: ${msg}\n`);

function secrets() {
  // Generated once per checkout, kept out of git (.data/ is ignored), reused so data stays readable.
  // A key added since the file was written is generated and added to it (older checkouts).
  const file = join(DATA, 'secrets.json');
  const fresh = {
    INTERNAL_TOKEN_SECRET: () => randomBytes(32).toString('base64url'),
    AUTH_TOKEN_SECRET: () => randomBytes(32).toString('base64url'),
    PII_ENCRYPTION_KEY: () => randomBytes(32).toString('base64'),
    PII_LOOKUP_KEY: () => randomBytes(32).toString('base64'),
    BOOTSTRAP_STAFF_PASSWORD: () => randomBytes(9).toString('base64url'),
    // Signs the test payment provider's callbacks: whoever knows it can mark orders paid.
    PAYMENT_TEST_SECRET: () => randomBytes(32).toString('base64url'),
  };
  const s = existsSync(file) ? JSON.parse(readFileSync(file, 'utf8')) : {};
  const missing = Object.keys(fresh).filter((k) => !s[k]);
  for (const k of missing) s[k] = fresh[k]();
  if (missing.length) writeFileSync(file, JSON.stringify(s, null, 2), { mode: 0o600 });
  return s;
}

async function main() {
  const started = Date.now();
  mkdirSync(DATA, { recursive: true });
  if (!existsSync(join(ROOT, 'node_modules/.package-lock.json'))) {
    say('installing npm dependencies…');
    run('npm install --no-audit --no-fund');
  }
  run('bash scripts/install-tools.sh');
  say('building…');
  run('npx tsc -b');

  const { dbProfile, startFerretDb, startNats } = require('../packages/testing/dist/infra');
  const { startStack, DEFAULT_PORTS } = require('../packages/testing/dist/stack');
  const { seedDemo } = require('../packages/testing/dist/seed');

  const infra = [];
  const stopAll = async (stack) => {
    if (stack) await stack.stop();
    await Promise.all(infra.map((p) => p.stop()));
  };
  let mongoUrl = process.env.MONGO_URL;
  let natsUrl = process.env.NATS_URL;
  let ferretPgUrl;
  if (!mongoUrl) {
    const port = Number(process.env.FLYWHEEL_MONGO_PORT ?? 27117);
    if (dbProfile() === 'postgres') {
      // A fixed database, kept between runs like .data/ferretdb is (the seed is reused).
      const f = await startFerretDb(join(DATA, 'ferretdb-postgres'), port, { db: 'postgres', pgDatabase: 'flywheel' });
      infra.push(f);
      mongoUrl = f.url;
      ferretPgUrl = f.pgUrl;
      say(`FerretDB (PostgreSQL handler) on ${mongoUrl} (data in ${ferretPgUrl.replace(/:[^:@/]*@/, ':***@')})`);
    } else {
      const f = await startFerretDb(join(DATA, 'ferretdb'), port, { db: 'sqlite' });
      infra.push(f);
      mongoUrl = f.url;
      say(`FerretDB on ${mongoUrl} (data in .data/ferretdb)`);
    }
  }
  if (!natsUrl) {
    const n = await startNats(join(DATA, 'nats'), Number(process.env.FLYWHEEL_NATS_PORT ?? 4333));
    infra.push(n);
    natsUrl = n.url;
    say(`NATS JetStream on ${natsUrl} (data in .data/nats)`);
  }

  const s = secrets();
  const staffEmail = process.env.BOOTSTRAP_STAFF_EMAIL ?? 'admin@flywheel.local';
  const staffPassword = process.env.BOOTSTRAP_STAFF_PASSWORD ?? s.BOOTSTRAP_STAFF_PASSWORD;
  let stack;
  let stopping = false;
  const shutdown = async (signal) => {
    if (stopping) return;
    stopping = true;
    say(`${signal}: stopping…`);
    await stopAll(stack);
    say('stopped.');
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown('SIGINT'));
  process.on('SIGTERM', () => void shutdown('SIGTERM'));

  try {
    stack = await startStack({
      env: {
        NODE_ENV: 'development',
        LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
        MONGO_URL: mongoUrl,
        // The services add GIN indexes for their indexed fields there (service-kit ferretdb-pg.ts).
        ...(ferretPgUrl ? { FERRETDB_PG_URL: ferretPgUrl } : {}),
        NATS_URL: natsUrl,
        INTERNAL_TOKEN_SECRET: s.INTERNAL_TOKEN_SECRET,
        AUTH_TOKEN_SECRET: s.AUTH_TOKEN_SECRET,
        PII_ENCRYPTION_KEY: s.PII_ENCRYPTION_KEY,
        PII_LOOKUP_KEY: s.PII_LOOKUP_KEY,
        DEV_LOGIN_CODES: 'true',
        // Short for local work: the seed signs the demo member in just before you do.
        LOGIN_CODE_INTERVAL_SECONDS: '5',
        BOOTSTRAP_STAFF_EMAIL: staffEmail,
        BOOTSTRAP_STAFF_PASSWORD: staffPassword,
        PAYMENT_TEST_SECRET: s.PAYMENT_TEST_SECRET,
        // Every process listens on loopback only (the kit's default, made explicit here): the
        // development shortcuts (login codes in responses, /payments/test/simulate) never face
        // the network. HOST=0.0.0.0 npm start opts in.
        HOST: process.env.HOST ?? '127.0.0.1',
      },
      logDir: join(DATA, 'logs'),
      onLogLine: (name, line) => process.stdout.write(`[${name}] ${line}\n`),
    });
    const orders = stack.processes.find((p) => p.name === 'orders');
    const seeded = await seedDemo(stack.gatewayUrl, {
      staffEmail,
      staffPassword,
      // The demo member's order is paid through the test provider's development route.
      paymentsUrl: orders && `http://127.0.0.1:${orders.port}/payments/test/simulate`,
    });
    const port = DEFAULT_PORTS.gateway;
    say(`stack up in ${((Date.now() - started) / 1000).toFixed(1)} s (processes ready in ${(stack.startupMs / 1000).toFixed(1)} s)`);
    say(seeded.created ? 'demo data seeded' : 'demo data already present (reused)');
    process.stdout.write(
      [
        '',
        `  GraphQL endpoint   http://localhost:${port}/graphql`,
        `  GraphiQL (IDE)     http://localhost:${port}/`,
        `  Subscriptions      ws://localhost:${port}/graphql (graphql-ws; connectionParams { authorization: "Bearer <accessToken>" })`,
        '',
        `  Demo member        phone ${seeded.demoPhone}: mutation { requestLoginCode(input: { phone: "${seeded.demoPhone}" }) { devCode } }`,
        `                     then mutation { login(input: { phone: "${seeded.demoPhone}", code: "<devCode>" }) { accessToken } }`,
        `  Staff              mutation { staffLogin(input: { email: "${staffEmail}", password: "${staffPassword}" }) { accessToken } }`,
        '                     (the password is generated once into .data/secrets.json)',
        '  Send the token as  Authorization: Bearer <accessToken>',
        '',
        '  Logs: .data/logs/<service>.log   Ctrl-C stops everything.',
        '',
      ].join('\n'),
    );
  } catch (err) {
    process.stderr.write(`flywheel: start failed: ${err && err.stack ? err.stack : err}\n`);
    await stopAll(stack);
    process.exit(1);
  }
}

void main();
