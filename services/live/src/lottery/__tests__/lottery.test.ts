// Live lotteries through the live subgraph against the real FerretDB and NATS: commit, draw once,
// verify by recomputation. Membership is played by repliers on the private NATS.
import { createHash, randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { AppError } from '@flywheel/service-kit';
import { loadServiceConfig } from '../../config';
import { start, type RunningLive } from '../../main';
import { lotteryWinners } from '..';

let nats: InfraProcess;
let svc: RunningLive;
const templates = new Map<string, { name: string; active: boolean }>();
const grants = new Map<string, string>();
let membershipDown = false;

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('live', nats.url)), { sweepers: false });
  svc.bus.reply('membership.coupon.template', async ({ templateId }) => {
    const t = templates.get(templateId);
    if (!t) throw new AppError('NOT_FOUND', 'Coupon template not found');
    return { templateId, ...t };
  });
  svc.bus.reply('membership.coupon.grant', async (req) => {
    if (membershipDown) throw new Error('membership is down');
    if (!grants.has(req.key)) grants.set(req.key, new Types.ObjectId().toHexString());
    return { couponId: grants.get(req.key)! };
  });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const STAFF = staff(oid());
const asStaff = () => asGateway('live', STAFF);
const call = (query: string, variables: Record<string, unknown>, headers: Record<string, string> = asStaff()) =>
  gql(svc.url, query, variables, headers);
const code = (res: { errors?: { extensions?: { code?: string } }[] }) => res.errors?.[0]?.extensions?.code;
const lottery = () => svc.modules.lottery;

function template(active = true): string {
  const id = oid();
  templates.set(id, { name: '幸运券', active });
  return id;
}
async function room(live = true): Promise<string> {
  const r = await svc.service.scheduleLiveRoom(STAFF, {
    title: '抽奖专场',
    hostName: '小林',
    scheduledAt: new Date(Date.now() + 3600_000),
  });
  if (live) await svc.service.startLiveRoom(STAFF, r._id.toHexString());
  return r._id.toHexString();
}

const FIELDS =
  'id status eligibility winnerCount prizeTemplateId prizeName commitment seed eligibleCount eligibleHash eligibleMemberIds winners { memberId couponId } drawnAt';
const CREATE = `mutation($input: CreateLiveLotteryInput!) { createLiveLottery(input: $input) { ${FIELDS} } }`;
const DRAW = `mutation($id: ID!) { drawLiveLottery(id: $id) { ${FIELDS} } }`;
const READ = `query($id: ID!) { liveLottery(id: $id) { ${FIELDS} } }`;

async function create(roomId: string, over: Record<string, unknown> = {}) {
  const res = await call(CREATE, { input: { roomId, prizeTemplateId: template(), winnerCount: 3, eligibility: 'COMMENTED', ...over } });
  expect(res.errors).toBeUndefined();
  return res.data!.createLiveLottery;
}
const sha256 = (data: Buffer | string) => createHash('sha256').update(data).digest('hex');

test('bad input creates nothing', async () => {
  const live = await room();
  const scheduled = await room(false);
  const before = await svc.db.collection('live_lotteries').countDocuments();
  const input = (over: Record<string, unknown>) => ({
    roomId: live,
    prizeTemplateId: template(),
    winnerCount: 3,
    eligibility: 'ANY',
    ...over,
  });
  const cases: [Record<string, unknown>, Record<string, string>, string][] = [
    [input({}), asGateway('live', customer(oid())), 'FORBIDDEN'],
    [input({ roomId: scheduled }), asStaff(), 'CONFLICT'],
    [input({ roomId: oid() }), asStaff(), 'NOT_FOUND'],
    [input({ prizeTemplateId: oid() }), asStaff(), 'NOT_FOUND'],
    [input({ prizeTemplateId: template(false) }), asStaff(), 'BAD_USER_INPUT'],
    [input({ winnerCount: 0 }), asStaff(), 'BAD_USER_INPUT'],
    [input({ winnerCount: 101 }), asStaff(), 'BAD_USER_INPUT'],
  ];
  for (const [i, headers, expected] of cases) expect([i, code(await call(CREATE, { input: i }, headers))]).toEqual([i, expected]);
  expect(await svc.db.collection('live_lotteries').countDocuments()).toBe(before);
  expect(code(await call(DRAW, { id: oid() }))).toBe('NOT_FOUND');
});

test('commit, draw once, reveal: anyone can verify the winners; the non-eligible never win', async () => {
  const roomId = await room();
  const commenters = Array.from({ length: 9 }, oid);
  const likersOnly = Array.from({ length: 6 }, oid);
  // Recorded twice and at once: each member once per kind.
  await Promise.all([...commenters, ...commenters].map((m) => lottery().recordParticipation(roomId, m, 'COMMENTED')));
  await Promise.all(likersOnly.map((m) => lottery().recordParticipation(roomId, m, 'LIKED')));
  await lottery().recordParticipation(roomId, commenters[0]!, 'LIKED');

  const created = await create(roomId, { winnerCount: 4, eligibility: 'COMMENTED' });
  expect(created).toMatchObject({
    status: 'OPEN',
    seed: null,
    eligibleCount: null,
    eligibleMemberIds: null,
    winners: [],
    prizeName: '幸运券',
  });
  expect(created.commitment).toMatch(/^[0-9a-f]{64}$/);
  // Nothing secret before the draw.
  expect(JSON.stringify((await call(READ, { id: created.id }, asGateway('live', null))).data)).not.toMatch(/"seed":"/);

  const drawn = (await call(DRAW, { id: created.id })).data!.drawLiveLottery;
  expect(drawn.status).toBe('DRAWN');
  // The seed matches the commitment published before.
  expect(sha256(Buffer.from(drawn.seed, 'hex'))).toBe(created.commitment);
  // The eligible list is the commenters, sorted, and its hash is over that list.
  expect(drawn.eligibleMemberIds).toEqual([...commenters].sort());
  expect(drawn.eligibleCount).toBe(9);
  expect(drawn.eligibleHash).toBe(sha256([...commenters].sort().join('\n')));
  // Recomputed from what is public now.
  const winners = drawn.winners.map((w: { memberId: string }) => w.memberId);
  expect(winners).toEqual(lotteryWinners(drawn.seed, drawn.eligibleMemberIds, 4));
  expect(winners).toHaveLength(4);
  for (const w of winners) expect(likersOnly).not.toContain(w);
  // Each winner's prize granted once, keyed by lottery and member.
  for (const w of drawn.winners) expect(w.couponId).toBe(grants.get(`live:lottery:${created.id}:${w.memberId}`));

  // A re-draw is CONFLICT and changes nothing.
  expect(code(await call(DRAW, { id: created.id }))).toBe('CONFLICT');
  expect((await call(READ, { id: created.id }, asGateway('live', null))).data!.liveLottery).toEqual(drawn);
});

test('two draws at once: one wins, the other is CONFLICT; nobody eligible draws nothing', async () => {
  const roomId = await room();
  const empty = await create(roomId, { eligibility: 'BOUGHT' });
  expect(code(await call(DRAW, { id: empty.id }))).toBe('CONFLICT');
  expect((await call(READ, { id: empty.id })).data!.liveLottery.status).toBe('OPEN');

  for (const m of Array.from({ length: 5 }, oid)) await lottery().recordParticipation(roomId, m, 'LIKED');
  const l = await create(roomId, { eligibility: 'ANY', winnerCount: 2 });
  const results = await Promise.all([call(DRAW, { id: l.id }), call(DRAW, { id: l.id }), call(DRAW, { id: l.id })]);
  expect(results.filter((r) => !r.errors)).toHaveLength(1);
  expect(results.filter((r) => r.errors).map(code)).toEqual(['CONFLICT', 'CONFLICT']);
});

test('buyers come from LIVE paid orders; only they win a BOUGHT lottery, over many draws', async () => {
  const roomId = await room();
  const buyers = Array.from({ length: 3 }, oid);
  const others = Array.from({ length: 12 }, oid);
  for (const m of others) await lottery().recordParticipation(roomId, m, m < others[6]! ? 'COMMENTED' : 'LIKED');
  const paid = (memberId: string, source: { kind: 'LIVE'; roomId: string } | { kind: 'DIRECT' }) =>
    svc.bus.publish('orders.order.paid', {
      orderId: randomUUID(),
      memberId,
      total: 1000,
      currency: 'CNY',
      lines: [{ skuId: 's1', productId: 'p1', quantity: 1, unitPrice: 1000, priceKind: 'LIST' }],
      source,
      paymentId: randomUUID(),
      paidAt: new Date().toISOString(),
    });
  for (const m of buyers) await paid(m, { kind: 'LIVE', roomId });
  await paid(others[0]!, { kind: 'DIRECT' });
  await eventually(async () => (await svc.db.collection('live_participations').countDocuments({ roomId, kind: 'BOUGHT' })) === 3);

  for (let i = 0; i < 5; i++) {
    const l = await create(roomId, { eligibility: 'BOUGHT', winnerCount: 2 });
    const drawn = (await call(DRAW, { id: l.id })).data!.drawLiveLottery;
    expect(drawn.eligibleMemberIds).toEqual([...buyers].sort());
    for (const w of drawn.winners) expect(buyers).toContain(w.memberId);
  }
});

test('prizes membership could not grant at the draw are granted by the sweep, once', async () => {
  const roomId = await room();
  const members = Array.from({ length: 3 }, oid);
  for (const m of members) await lottery().recordParticipation(roomId, m, 'COMMENTED');
  const l = await create(roomId, { winnerCount: 2 });
  membershipDown = true;
  try {
    const drawn = (await call(DRAW, { id: l.id })).data!.drawLiveLottery;
    expect(drawn.winners.map((w: { couponId: string | null }) => w.couponId)).toEqual([null, null]);
  } finally {
    membershipDown = false;
  }
  expect((await svc.sweep()).lottery).toEqual({ lotteryGrantsSettled: 1 });
  expect((await svc.sweep()).lottery).toEqual({ lotteryGrantsSettled: 0 });
  const after = (await call(READ, { id: l.id })).data!.liveLottery;
  for (const w of after.winners) expect(w.couponId).toBe(grants.get(`live:lottery:${l.id}:${w.memberId}`));
});
