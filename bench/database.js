#!/usr/bin/env node
// The local database's look-up by `_id` as collections grow: a fresh FerretDB (the one the
// project builds, or MONGO_URL), one collection of SMALL documents and one of LARGE, the same
// random findById reads from CLIENTS concurrent clients against each. A look-up through the
// `_id` index costs about the same at any size; a scan grows with the collection.
// Prints one JSON line: {"small":{docs,mean,p50,p99 (ms)},"large":{…},"ratioLargeToSmall"}.
// FLYWHEEL_DB=postgres: FerretDB's PostgreSQL handler on a fresh database, with the GIN indexes a
// service creates at start (service-kit ferretdb-pg.ts) made before the collections are filled.
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const { performance } = require('node:perf_hooks');
// The driver mongoose brings (the one every service uses).
const mongoose = require('mongoose');
const { closedLoop, round } = require('./lib');
const { ensureTools, startFerretDb } = require('../packages/testing/dist/infra');
const { ensureFerretGinIndexes } = require('../packages/service-kit/dist/ferretdb-pg');

const SMALL = Number(process.env.SMALL ?? 1_000);
const LARGE = Number(process.env.LARGE ?? 50_000);
const READS = Number(process.env.READS ?? 2_000);
const CLIENTS = Number(process.env.CLIENTS ?? 8);

async function fill(coll, n) {
  const doc = (i) => ({ _id: `acct-${i}:1`, accountId: `acct-${i}`, seq: 1, balance: i, note: 'x'.repeat(200) });
  for (let i = 0; i < n; i += 1_000) {
    await coll.insertMany(Array.from({ length: Math.min(1_000, n - i) }, (_, j) => doc(i + j)));
  }
}

async function measure(coll, n) {
  // Warm up, then READS random look-ups of documents that exist.
  for (let i = 0; i < 50; i++) await coll.findOne({ _id: `acct-${i % n}:1` });
  const r = await closedLoop(READS, CLIENTS, async (i) => {
    const id = `acct-${(i * 7_919) % n}:1`;
    const doc = await coll.findOne({ _id: id });
    return doc ? { data: doc } : null;
  });
  if (r.errors) throw new Error(`${r.errors} look-ups found nothing`);
  const mean = r.latencies.reduce((a, b) => a + b, 0) / r.latencies.length;
  return { docs: n, mean: round(mean), p50: round(r.p50), p99: round(r.p99), rps: round(r.rps) };
}

async function main() {
  const dir = mkdtempSync(join(tmpdir(), 'flywheel-bench-db-'));
  let ferret = null;
  let url = process.env.MONGO_URL;
  if (!url) {
    ensureTools();
    ferret = await startFerretDb(join(dir, 'ferretdb'));
    url = ferret.url;
  }
  const dbName = `bench_db_${Date.now()}`;
  const conn = await mongoose.createConnection(url, { dbName }).asPromise();
  try {
    const db = conn.db;
    if (ferret?.pgUrl) {
      await db.createCollection('small');
      await db.createCollection('large');
      await ensureFerretGinIndexes(ferret.pgUrl, dbName);
    }
    const t0 = performance.now();
    await fill(db.collection('small'), SMALL);
    await fill(db.collection('large'), LARGE);
    const fillSeconds = round((performance.now() - t0) / 1000);
    // Interleaved twice, so a slow moment of the machine does not land on one side only.
    const runs = { small: [], large: [] };
    for (let round = 0; round < 2; round++) {
      runs.small.push(await measure(db.collection('small'), SMALL));
      runs.large.push(await measure(db.collection('large'), LARGE));
    }
    const best = (xs) => xs.reduce((a, b) => (b.mean < a.mean ? b : a));
    const small = best(runs.small);
    const large = best(runs.large);
    const result = {
      database: !ferret
        ? 'MONGO_URL'
        : ferret.pgUrl
          ? 'ferretdb (postgresql handler, GIN indexes, custom plans)'
          : 'ferretdb (sqlite, as built by the project)',
      clients: CLIENTS,
      reads: READS,
      fillSeconds,
      small,
      large,
      ratioLargeToSmall: round(large.mean / small.mean),
    };
    await db.dropDatabase();
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await conn.close();
    if (ferret) await ferret.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}

main().catch((err) => {
  process.stderr.write(`${err.stack ?? err}\n`);
  process.exit(1);
});
