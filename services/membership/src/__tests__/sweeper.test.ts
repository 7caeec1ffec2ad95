import { Types } from 'mongoose';
import { eventually, privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../config';
import { start, type RunningMembership } from '../main';

let nats: InfraProcess;
const replicas: RunningMembership[] = [];
// Both replicas' clock: a year on, so points granted "now" by the first one have expired.
let shift = 0;

beforeAll(async () => {
  nats = await privateNats();
  const env = serviceEnv('membership', nats.url, { SWEEP_INTERVAL_SECONDS: '1' });
  for (let i = 0; i < 2; i++) replicas.push(await start(loadServiceConfig(env), { now: () => new Date(Date.now() + shift) }));
});
afterAll(async () => {
  await replicas[0]?.db.dropDatabase();
  for (const r of replicas) await r.stop();
  await nats.stop();
});

test('the sweeper runs on its own timer, one replica per period: lots expire once without anyone calling sweep', async () => {
  const memberId = new Types.ObjectId().toHexString();
  const loyalty = replicas[0]!.modules.loyalty.loyalty;
  await loyalty.grantPoints(memberId, `timer:${memberId}`, 70, 'test');
  shift = 400 * 86_400_000;
  const db = replicas[0]!.db;
  await eventually(
    async () => (await db.collection('loyalty_entries').countDocuments({ accountId: `p:${memberId}`, kind: 'EXPIRE' })) === 1,
    10_000,
  );
  // Each period was claimed by one replica (the claim is unique per period).
  const periods = await db.collection('claims').countDocuments({ _id: { $regex: '^sweep:' } } as never);
  expect(periods).toBeGreaterThanOrEqual(1);
  await new Promise((r) => setTimeout(r, 1_500));
  expect(await db.collection('loyalty_entries').countDocuments({ accountId: `p:${memberId}`, kind: 'EXPIRE' })).toBe(1);
  expect(await loyalty.pointsOf(memberId)).toBe(0);
});
