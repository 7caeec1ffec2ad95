// The chart's JetStream set-up job (charts/flywheel/files/jetstream-setup.js), run against a real
// nats-server of its own (never the shared one: it makes money streams undeletable), with the
// configuration the chart renders.
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, RetentionPolicy, StorageType, type NatsConnection, type StreamConfig } from 'nats';
import { DEAD_LETTER_STREAM, NOTIFICATIONS_STREAM, SERVICES, streamName, streamSubjects } from '@flywheel/events';
import { freePort, startNats, type InfraProcess } from '@flywheel/testing';
import { CHART, ROOT, find, helmTemplate, validate } from './support';

const SCRIPT = join(CHART, 'files/jetstream-setup.js');
const NANOS_PER_SECOND = 1e9;
const HOUR = 3600 * NANOS_PER_SECOND;

/** What the chart hands the job with the dev values (one NATS server, so replicas 1). */
const chartConfig = () => {
  const cm = find(validate(helmTemplate([join(CHART, 'values-dev.yaml')])), 'ConfigMap', 'jetstream-setup');
  return JSON.parse(cm.data!['streams.json']!);
};

let dir: string;
let nats: InfraProcess | undefined;
let nc: NatsConnection | undefined;

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'flywheel-jetstream-setup-'));
});
afterEach(async () => {
  await nc?.close();
  await nats?.stop();
  nc = undefined;
  nats = undefined;
  rmSync(dir, { recursive: true, force: true });
});

async function startOwnNats(): Promise<string> {
  nats = await startNats(join(dir, 'nats'));
  nc = await connect({ servers: nats.url });
  return nats.url;
}

function runSetup(natsUrl: string, config: object, timeoutSeconds = 20): Promise<{ code: number; stdout: string; stderr: string }> {
  const file = join(dir, 'streams.json');
  writeFileSync(file, JSON.stringify(config));
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [SCRIPT],
      {
        cwd: dir,
        env: {
          PATH: process.env.PATH,
          NATS_URL: natsUrl,
          JETSTREAM_CONFIG: file,
          JETSTREAM_TIMEOUT_S: String(timeoutSeconds),
          NODE_PATH: join(ROOT, 'node_modules'),
        },
      },
      (err, stdout, stderr) => resolve({ code: err ? ((err as { code?: number }).code ?? 1) : 0, stdout, stderr }),
    );
  });
}

const publishers = SERVICES.filter((s) => streamSubjects(s).length > 0);
const money = new Set(['orders', 'membership', 'referral', 'catalog']);

test('creates every stream the services publish to, with the chart settings, before any service started', async () => {
  const url = await startOwnNats();
  const config = chartConfig();
  const result = await runSetup(url, config);
  expect(result).toMatchObject({ code: 0, stderr: '' });

  const jsm = await nc!.jetstreamManager();
  for (const service of publishers) {
    const { config: c } = await jsm.streams.info(streamName(service));
    expect(c.subjects.sort()).toEqual(streamSubjects(service).sort());
    expect(c).toMatchObject({
      storage: StorageType.File,
      retention: RetentionPolicy.Limits,
      num_replicas: 1,
      duplicate_window: 120 * NANOS_PER_SECOND,
    });
    expect({ service, max_age: c.max_age, deny_delete: Boolean(c.deny_delete), deny_purge: Boolean(c.deny_purge) }).toEqual(
      money.has(service)
        ? { service, max_age: 0, deny_delete: true, deny_purge: true }
        : { service, max_age: 720 * HOUR, deny_delete: false, deny_purge: false },
    );
  }
  const { config: notifications } = await jsm.streams.info(NOTIFICATIONS_STREAM);
  expect(notifications).toMatchObject({ subjects: ['notifications.>'], max_age: 168 * HOUR, num_replicas: 1 });
  const { config: dlq } = await jsm.streams.info(DEAD_LETTER_STREAM);
  expect(dlq.max_age).toBe(336 * HOUR);
  expect(
    result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).outcome),
  ).toEqual([...publishers.map(() => 'created'), 'created', 'created']);
});

test('raises a stream a service created first, keeping subjects a newer service version added, and is idempotent', async () => {
  const url = await startOwnNats();
  const jsm = await nc!.jetstreamManager();
  // As packages/service-kit's bus creates it: one replica, no protection; plus a subject the chart's code does not know yet.
  const name = streamName('orders');
  await jsm.streams.add({
    name,
    subjects: [...streamSubjects('orders'), 'orders.order.archived'],
    storage: StorageType.File,
    retention: RetentionPolicy.Limits,
    num_replicas: 1,
    duplicate_window: 120 * NANOS_PER_SECOND,
  } as Partial<StreamConfig>);
  await nc!.jetstream().publish(streamSubjects('orders')[0]!, new TextEncoder().encode('{}'));

  const first = await runSetup(url, chartConfig());
  expect(first).toMatchObject({ code: 0, stderr: '' });
  expect(first.stdout).toContain(`"stream":"${name}","outcome":"updated"`);
  const after = await jsm.streams.info(name);
  expect(after.config.subjects).toContain('orders.order.archived');
  expect(after.config.subjects).toEqual(expect.arrayContaining(streamSubjects('orders')));
  expect(after.config).toMatchObject({ deny_delete: true, deny_purge: true, max_age: 0 });
  expect(after.state.messages).toBe(1);

  const second = await runSetup(url, chartConfig());
  expect(second).toMatchObject({ code: 0, stderr: '' });
  expect((await jsm.streams.info(name)).config).toEqual(after.config);
});

test('refuses a stream on memory storage instead of pretending it is durable', async () => {
  const url = await startOwnNats();
  const jsm = await nc!.jetstreamManager();
  await jsm.streams.add({
    name: streamName('live'),
    subjects: streamSubjects('live'),
    storage: StorageType.Memory,
  } as Partial<StreamConfig>);
  const result = await runSetup(url, chartConfig());
  expect(result.code).toBe(1);
  expect(result.stderr).toContain(`${streamName('live')} uses memory storage`);
});

test('keeps retrying while NATS is not there yet, then fails the job', async () => {
  const port = await freePort();
  const started = Date.now();
  const result = await runSetup(`nats://127.0.0.1:${port}`, chartConfig(), 1);
  expect(result.code).toBe(1);
  expect(result.stderr).toContain('NATS not reachable yet');
  expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
});
