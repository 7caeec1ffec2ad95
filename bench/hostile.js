#!/usr/bin/env node
// Hostile documents: a normal storefront query's latency through the gateway alone; while
// ATTACKERS other clients send, back to back, a cheap valid query (`{ __typename }`: the cost of
// any traffic at that rate); and while they send documents the gateway must refuse (a fragment
// bomb, cyclic fragments, an alias flood, a token flood) at the same rate. The per-request rate
// limit is off (lib.js), so this measures what refusing the documents costs, not the limiter.
// Prints one JSON line: {"alone","underBenignFlood","underAttack":{rps,p50Ms,p99Ms,errors},
// "hostile":{"<kind>":{"sent","refused","p50Ms","p99Ms"}}, …}.
const { performance } = require('node:perf_hooks');
const { benchStack, closedLoop, gql, percentile, round } = require('./lib');

const REQUESTS = Number(process.env.REQUESTS ?? 600); // normal queries per phase
const CONCURRENCY = Number(process.env.CONCURRENCY ?? 4);
const ATTACKERS = Number(process.env.ATTACKERS ?? 4);
const BOMB_LEVELS = Number(process.env.BOMB_LEVELS ?? 40);

const NORMAL = '{ products(first: 5) { edges { node { id name price { amount currency } } } } }';

const bomb = () => {
  const fragments = Array.from({ length: BOMB_LEVELS }, (_, i) => `fragment F${i} on Query { ...F${i + 1} ...F${i + 1} }`);
  return `query Bomb { ...F0 }\n${fragments.join('\n')}\nfragment F${BOMB_LEVELS} on Query { session { roles } }`;
};
const BENIGN = { benign: '{ __typename }' };
const HOSTILE = {
  fragmentBomb: bomb(),
  cyclicFragments: 'query Cycle { ...A } fragment A on Query { session { roles } ...B } fragment B on Query { me { id } ...A }',
  aliasFlood: `{ ${Array.from({ length: 300 }, (_, i) => `a${i}: session { roles }`).join(' ')} }`,
  tokenFlood: `{ session { ${'roles '.repeat(20_000)} } }`,
};

const summary = (latencies, wallMs) => {
  latencies.sort((a, b) => a - b);
  return {
    rps: round(latencies.length / (wallMs / 1000)),
    p50Ms: round(percentile(latencies, 50)),
    p99Ms: round(percentile(latencies, 99)),
  };
};

async function normalPhase(url) {
  const { latencies, wallMs, errors } = await closedLoop(REQUESTS, CONCURRENCY, () => gql(url, NORMAL));
  return { ...summary(latencies, wallMs), errors };
}

/** The normal phase while ATTACKERS clients send `documents` in turn, back to back. */
async function whileFlooded(url, documents) {
  const kinds = Object.keys(documents);
  const flood = Object.fromEntries(kinds.map((k) => [k, { sent: 0, refused: 0, latencies: [] }]));
  let flooding = true;
  const clients = Array.from({ length: ATTACKERS }, async (_, a) => {
    for (let i = a; flooding; i++) {
      const kind = kinds[i % kinds.length];
      const f = flood[kind];
      const s = performance.now();
      const res = await gql(url, documents[kind]).catch(() => null);
      f.latencies.push(performance.now() - s);
      f.sent++;
      const code = res?.errors?.[0]?.extensions?.code;
      if (code === 'GRAPHQL_VALIDATION_FAILED' || code === 'GRAPHQL_PARSE_FAILED') f.refused++;
    }
  });
  const normal = await normalPhase(url);
  flooding = false;
  await Promise.all(clients);
  for (const f of Object.values(flood)) {
    f.latencies.sort((x, y) => x - y);
    f.p50Ms = round(percentile(f.latencies, 50));
    f.p99Ms = round(percentile(f.latencies, 99));
    delete f.latencies;
  }
  return { normal, flood };
}

async function main() {
  const stack = await benchStack();
  try {
    const url = stack.gatewayUrl;
    for (let i = 0; i < 50; i++) await gql(url, NORMAL); // warm the document cache and the connections
    const alone = await normalPhase(url);
    const benign = await whileFlooded(url, BENIGN);
    const attack = await whileFlooded(url, HOSTILE);
    const underAttack = attack.normal;
    const hostile = attack.flood;

    console.log(
      JSON.stringify({
        requests: REQUESTS,
        concurrency: CONCURRENCY,
        attackers: ATTACKERS,
        bombLevels: BOMB_LEVELS,
        alone,
        underBenignFlood: benign.normal,
        underAttack,
        p99RatioAttackVsAlone: round(underAttack.p99Ms / alone.p99Ms),
        p99RatioAttackVsBenignFlood: round(underAttack.p99Ms / benign.normal.p99Ms),
        benignFlood: benign.flood.benign,
        hostile,
      }),
    );
  } finally {
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
