import { randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Schema, type Connection, type Model } from 'mongoose';
import { eventually, freePort, mongoUrl, privateNats, startNats, uniqueDbName, type InfraProcess } from '@flywheel/testing';
import {
  connectBus,
  connectMongo,
  createLogger,
  createOutboxRelay,
  outboxPath,
  outboxRecord,
  type Bus,
  type OutboxRecord,
  type OutboxRelay,
} from '@flywheel/service-kit';
import { streamName } from '@flywheel/events';
import { sleep, storedEventIds, storedMessages } from './support';

// docs/concurrency.md ("The outbox"), outbox without transactions: the entry carries its event; the relay publishes
// unsent entries with Nats-Msg-Id = event id and records them sent. Real FerretDB, real NATS.

const logger = createLogger('test', 'silent');
const STREAM = streamName('membership');

interface Entry {
  _id: string;
  accountId: string;
  seq: number;
  outbox?: OutboxRecord;
}

let db: Connection;
let nats: InfraProcess;
const cleanup: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  db = await connectMongo(mongoUrl(), uniqueDbName('outbox'));
  nats = await privateNats();
});
afterEach(async () => {
  // Last started, first stopped: relays, then buses, then servers.
  for (const fn of cleanup.splice(0).reverse()) await fn().catch(() => undefined);
});
afterAll(async () => {
  await db.dropDatabase();
  await db.close();
  await nats.stop();
});

let models = 0;
async function entryModel(): Promise<Model<Entry>> {
  const schema = new Schema<Entry>({ _id: String, accountId: String, seq: Number, outbox: outboxPath }, { versionKey: false });
  const model = db.model<Entry>(`Entry${++models}`, schema, `entries_${models}`);
  await model.createIndexes();
  return model;
}

async function busOn(url: string): Promise<Bus> {
  const b = await connectBus({ url, service: 'membership', logger, db });
  cleanup.push(() => b.drain());
  return b;
}

function relayFor(bus: Bus, model: Model<Entry>, intervalMs = 60_000): OutboxRelay {
  const relay = createOutboxRelay({ db, bus, sources: [model], logger, intervalMs });
  cleanup.push(() => relay.stop());
  return relay;
}

/** Writes entries (each one insert: state change + its event) and returns their event ids. */
async function writeEntries(model: Model<Entry>, prefix: string, n: number, from = 1): Promise<string[]> {
  const ids: string[] = [];
  for (let i = from; i < from + n; i++) {
    const id = `${prefix}-${i}`;
    ids.push(id);
    await model.create({
      _id: `acct-${prefix}:${i}`,
      accountId: `acct-${prefix}`,
      seq: i,
      outbox: outboxRecord('membership.member.registered', { memberId: `m-${id}`, registeredAt: new Date().toISOString() }, id),
    });
  }
  return ids;
}

const sentMarkers = (ids: string[]) => db.collection('outbox_sent').countDocuments({ _id: { $in: ids as any[] } });

/** How many times each of `ids` is in the stream. */
async function occurrences(bus: Bus, ids: string[]): Promise<Record<string, number>> {
  const stored = await storedEventIds(bus.jsm, STREAM);
  return Object.fromEntries(ids.map((id) => [id, stored.filter((s) => s === id).length]));
}
const once = (ids: string[]) => Object.fromEntries(ids.map((id) => [id, 1]));

test('entries carrying an outbox record are published; a flush after all are sent publishes 0', async () => {
  const model = await entryModel();
  const bus = await busOn(nats.url);
  const ids = await writeEntries(model, 'basic', 5);
  await model.create({ _id: 'acct-basic:no-event', accountId: 'acct-basic', seq: 99 }); // no event: ignored
  const before = await model.find().sort({ _id: 1 }).lean();

  const relay = relayFor(bus, model);
  await relay.flush();
  expect(await occurrences(bus, ids)).toEqual(once(ids));
  expect(await sentMarkers(ids)).toBe(5);
  expect((await storedMessages(bus.jsm, STREAM)).length).toBe(5);

  // What is published is the envelope the entry carried, under its id.
  const stored = (await storedMessages(bus.jsm, STREAM)).find((m) => m.json<{ id: string }>().id === ids[0])!;
  const entry = await model.findById(`acct-basic:1`).lean();
  expect(stored.header.get('Nats-Msg-Id')).toBe(ids[0]);
  expect(stored.json()).toEqual(JSON.parse(JSON.stringify(entry!.outbox!.envelope)));
  expect(stored.subject).toBe('membership.member.registered');

  expect(await relay.flush()).toBe(0);

  const more = await writeEntries(model, 'basic', 2, 6);
  expect(await relay.flush()).toBe(2);
  expect(await relay.flush()).toBe(0);
  expect(await occurrences(bus, [...ids, ...more])).toEqual(once([...ids, ...more]));

  // The entries themselves are never rewritten (being sent is recorded elsewhere).
  const after = await model
    .find({ _id: { $in: before.map((d) => d._id) } })
    .sort({ _id: 1 })
    .lean();
  expect(after).toEqual(before);
});

test('an entry stamped 10 s in the past, written after a relay pass, is still published', async () => {
  const model = await entryModel();
  const bus = await busOn(nats.url);
  const relay = relayFor(bus, model);
  await writeEntries(model, 'late-before', 1);
  await relay.flush();
  // A sweep that began 10 s ago stamps its changes with its own start; the relay has passed since.
  const occurredAt = new Date(Date.now() - 10_000);
  await model.create({
    _id: 'acct-late:1',
    accountId: 'acct-late',
    seq: 1,
    outbox: outboxRecord(
      'membership.member.registered',
      { memberId: 'm-late', registeredAt: occurredAt.toISOString() },
      'late-1',
      occurredAt,
    ),
  });
  expect(await relay.flush()).toBe(1);
  expect(await occurrences(bus, ['late-1'])).toEqual({ 'late-1': 1 });
  // What was published keeps the business time; the write time is the relay's business only.
  const stored = (await storedMessages(bus.jsm, STREAM)).find((m) => m.json<{ id: string }>().id === 'late-1')!;
  expect(stored.json<{ occurredAt: string }>().occurredAt).toBe(occurredAt.toISOString());
  const entry = await model.findById('acct-late:1').lean();
  expect(entry!.outbox!.writtenAt!.getTime()).toBeGreaterThan(occurredAt.getTime() + 9_000);
});

test('an entry whose insert lands after the margin is caught by the next deep pass', async () => {
  const model = await entryModel();
  const bus = await busOn(nats.url);
  const relay = createOutboxRelay({ db, bus, sources: [model], logger, intervalMs: 60_000, marginMs: 0, deepPassMs: 300 });
  cleanup.push(() => relay.stop());
  await relay.flush();
  // Written with a write time older than the watermark (a writer whose insert stalled, or whose
  // clock lags by more than the margin): a normal pass no longer looks that far back.
  await db.collection(model.collection.name).insertOne({
    _id: 'acct-stalled:1' as never,
    accountId: 'acct-stalled',
    seq: 1,
    outbox: {
      ...outboxRecord('membership.member.registered', { memberId: 'm-stalled', registeredAt: new Date().toISOString() }, 'stalled-1'),
      writtenAt: new Date(Date.now() - 60_000),
    },
  });
  expect(await relay.flush()).toBe(0);
  await sleep(350);
  expect(await relay.flush()).toBe(1);
  expect(await occurrences(bus, ['stalled-1'])).toEqual({ 'stalled-1': 1 });
});

test('kick publishes a newly written entry without waiting for the interval', async () => {
  const model = await entryModel();
  const bus = await busOn(nats.url);
  const relay = relayFor(bus, model);
  await relay.flush();
  const [id] = await writeEntries(model, 'kick', 1);
  relay.kick();
  await eventually(async () => (await sentMarkers([id!])) === 1, 5_000, 25);
  expect(await occurrences(bus, [id!])).toEqual({ [id!]: 1 });
});

test('a second relay (another replica) running at the same time does not double-publish into the stream', async () => {
  const model = await entryModel();
  const ids = await writeEntries(model, 'replicas', 30);
  const [a, b] = await Promise.all([busOn(nats.url), busOn(nats.url)]);
  // Both start together: their first passes race over the same unsent entries.
  const relayA = relayFor(a, model);
  const relayB = relayFor(b, model);
  const published = await Promise.all([relayA.flush(), relayB.flush()]);
  await Promise.all([relayA.flush(), relayB.flush()]);
  expect(published.every((n) => n >= 0)).toBe(true);
  expect(await occurrences(a, ids)).toEqual(once(ids));
  expect(await sentMarkers(ids)).toBe(30);
  expect(await Promise.all([relayA.flush(), relayB.flush()])).toEqual([0, 0]);
});

test('entries written while NATS is down are published once it is back: none lost, none doubled', async () => {
  const dir = join(process.env.FLYWHEEL_TEST_DIR ?? tmpdir(), `nats-outbox-${randomBytes(4).toString('hex')}`);
  const port = await freePort();
  let server = await startNats(dir, port);
  cleanup.push(() => server.stop());
  const model = await entryModel();
  const bus = await busOn(server.url);
  const relay = relayFor(bus, model, 200);

  const beforeOutage = await writeEntries(model, 'outage', 2);
  await relay.flush();
  expect(await occurrences(bus, beforeOutage)).toEqual(once(beforeOutage));

  await server.stop();
  await eventually(async () => !bus.connected(), 5_000, 20);
  const duringOutage = await writeEntries(model, 'outage', 3, 3);
  relay.kick();
  await sleep(500);
  expect(await sentMarkers(duringOutage)).toBe(0); // nothing is marked sent while nothing could be

  server = await startNats(dir, port); // same port, same store
  await eventually(async () => (await sentMarkers(duringOutage)) === 3, 25_000);
  expect(bus.connected()).toBe(true);
  await relay.flush();
  const all = [...beforeOutage, ...duringOutage];
  expect(await occurrences(bus, all)).toEqual(once(all));
  expect((await storedMessages(bus.jsm, STREAM)).length).toBe(5);
}, 60_000);

test('a burst larger than one relay batch is published in full, and later entries still go out', async () => {
  const bus = await busOn(nats.url);
  const model = await entryModel();
  // Inserted in bulk so many entries share a timestamp: paging must not stall or skip on ties.
  const at = new Date();
  const ids = Array.from({ length: 520 }, (_, i) => `burst-${i}`);
  await model.insertMany(
    ids.map((id, i) => ({
      _id: `acct-burst:${i + 1}`,
      accountId: 'acct-burst',
      seq: i + 1,
      outbox: outboxRecord('membership.member.registered', { memberId: `m-${id}`, registeredAt: at.toISOString() }, id, at),
    })),
  );
  // The relay's first pass starts at creation; flush() waits for it and runs one more.
  const relay = relayFor(bus, model);
  await relay.flush();
  expect(await sentMarkers(ids)).toBe(520);
  const later = await writeEntries(model, 'after-burst', 1);
  expect(await relay.flush()).toBe(1);
  expect(await occurrences(bus, [...ids, ...later])).toEqual(once([...ids, ...later]));
}, 60_000);
