// Applies the chart's production settings to every JetStream stream Flywheel publishes to: replicas,
// retention limits, the dedupe window, delete/purge protection. Runs as a Helm post-install and
// post-upgrade Job in a subgraph image, so it names streams and subjects with the very code the
// services use (@flywheel/events). Services create a missing stream themselves at start-up with one
// replica and only ever add subjects; this job creates what is still missing and raises the rest,
// so the outcome does not depend on which started first. Idempotent: run it as often as you like.
//
//   NATS_URL            comma-separated servers (from the Secret)
//   JETSTREAM_CONFIG    the chart's jetstream.defaults/streams as JSON (default: the mounted file)
//   JETSTREAM_TIMEOUT_S how long to keep trying to reach NATS (default 300)
'use strict';
const { readFileSync } = require('node:fs');
const { connect, DiscardPolicy, RetentionPolicy, StorageType } = require('nats');
const events = require('@flywheel/events');

const UNITS = { ms: 1e6, s: 1e9, m: 60e9, h: 3600e9, d: 86400e9 };

/** "0" → 0 (no limit); "2m", "720h", "30d" → nanoseconds, as JetStream wants them. */
function nanos(value) {
  if (value === '0' || value === 0) return 0;
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(String(value));
  if (!m) throw new Error(`bad duration ${JSON.stringify(value)}: use 0 or a number with ms, s, m, h or d`);
  return Number(m[1]) * UNITS[m[2]];
}

/** Every stream the services would create, with the subjects they would give it. */
function streamsFromCode() {
  // One per publishing service (key: its name), and NOTIFICATIONS (key: notifications), shared by
  // every service that sends a notification.
  const streams = events.eventStreams().map((s) => ({ ...s }));
  streams.push({ key: 'deadletter', name: events.DEAD_LETTER_STREAM, subjects: [`${events.DEAD_LETTER_PREFIX}.>`] });
  return streams;
}

function wantedSettings(config, key) {
  const s = { ...config.defaults, ...(config.streams?.[key] ?? {}) };
  return {
    num_replicas: s.replicas,
    max_age: nanos(s.maxAge),
    max_bytes: s.maxBytes,
    duplicate_window: nanos(s.duplicateWindow),
    deny_delete: Boolean(s.denyDelete),
    deny_purge: Boolean(s.denyPurge),
  };
}

async function connectWithRetry(servers, deadline) {
  for (;;) {
    try {
      return await connect({ servers, name: 'jetstream-setup', timeout: 5_000 });
    } catch (err) {
      if (Date.now() > deadline) throw err;
      console.warn(`jetstream-setup: NATS not reachable yet (${err.message}); retrying`);
      await new Promise((r) => setTimeout(r, 2_000));
    }
  }
}

async function applyStream(jsm, stream, wanted) {
  let info = await jsm.streams.info(stream.name).catch((err) => {
    if (err.code === '404') return null;
    throw err;
  });
  if (!info) {
    try {
      await jsm.streams.add({
        name: stream.name,
        subjects: stream.subjects,
        retention: RetentionPolicy.Limits,
        storage: StorageType.File,
        discard: DiscardPolicy.Old,
        ...wanted,
      });
      return 'created';
    } catch (err) {
      // A service created it between our info and add: fall through to an update.
      info = await jsm.streams.info(stream.name).catch(() => {
        throw err;
      });
    }
  }
  const current = info.config;
  if (current.storage !== StorageType.File) {
    throw new Error(`${stream.name} uses ${current.storage} storage; JetStream cannot change that in place`);
  }
  const next = {
    ...current,
    ...wanted,
    // Keep subjects a newer service version may already have added.
    subjects: [...new Set([...current.subjects, ...stream.subjects])],
    // JetStream refuses to lift delete/purge protection once set.
    deny_delete: wanted.deny_delete || Boolean(current.deny_delete),
    deny_purge: wanted.deny_purge || Boolean(current.deny_purge),
  };
  if (current.deny_delete && !wanted.deny_delete) console.warn(`jetstream-setup: ${stream.name} keeps deny_delete (cannot be lifted)`);
  if (current.deny_purge && !wanted.deny_purge) console.warn(`jetstream-setup: ${stream.name} keeps deny_purge (cannot be lifted)`);
  await jsm.streams.update(stream.name, next);
  return 'updated';
}

async function main() {
  const file = process.env.JETSTREAM_CONFIG ?? '/etc/flywheel/jetstream/streams.json';
  const config = JSON.parse(readFileSync(file, 'utf8'));
  if (!process.env.NATS_URL) throw new Error('NATS_URL is not set');
  const deadline = Date.now() + Number(process.env.JETSTREAM_TIMEOUT_S ?? 300) * 1000;
  const nc = await connectWithRetry(process.env.NATS_URL.split(','), deadline);
  try {
    const jsm = await nc.jetstreamManager();
    for (const stream of streamsFromCode()) {
      const wanted = wantedSettings(config, stream.key);
      const outcome = await applyStream(jsm, stream, wanted);
      const { config: c } = await jsm.streams.info(stream.name);
      console.info(
        JSON.stringify({
          stream: stream.name,
          outcome,
          replicas: c.num_replicas,
          storage: c.storage,
          retention: c.retention,
          max_age_s: c.max_age / 1e9,
          max_bytes: c.max_bytes,
          duplicate_window_s: c.duplicate_window / 1e9,
          deny_delete: Boolean(c.deny_delete),
          deny_purge: Boolean(c.deny_purge),
          subjects: c.subjects.length,
        }),
      );
    }
  } finally {
    await nc.drain();
  }
}

main().catch((err) => {
  console.error(`jetstream-setup: ${err.stack ?? err}`);
  process.exit(1);
});
