// Ambassador trials (体验官试用) through the community subgraph against the real FerretDB and NATS:
// membership's `membership.coupon.grant` is answered on the real bus by this test (community alone).
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';

let nats: InfraProcess;
let svc: RunningCommunity;
const grants: { key: string; memberId: string; templateId: string }[] = [];

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)), { sweepers: false });
  // Idempotent per key, as membership is.
  svc.bus.reply('membership.coupon.grant', async (req) => {
    if (!grants.some((g) => g.key === req.key)) grants.push(req);
    return { couponId: `coupon-${req.key}` };
  });
}, 60_000);
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const oid = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown>, viewer: ReturnType<typeof staff> | null) =>
  gql(svc.url, query, variables, asGateway('community', viewer));
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const SEND = 'mutation($i: SendAmbassadorTrialInput!) { sendAmbassadorTrial(input: $i) { id couponId status } }';
const TRIALS = 'query($m: ID!) { ambassadorStatus(memberId: $m) { trials { id status orderId showcasePostId } } }';
const trialsOf = async (m: string) => (await call(TRIALS, { m }, staff())).data!.ambassadorStatus.trials;

async function approved() {
  const m = oid();
  expect((await call('mutation { applyForAmbassador(note: "想试用") { status } }', {}, customer(m))).errors).toBeUndefined();
  expect(
    (await call('mutation($m: ID!) { approveAmbassador(memberId: $m, showcaseDueDays: 7) { status } }', { m }, staff())).errors,
  ).toBeUndefined();
  return m;
}

function paid(memberId: string, couponIds?: string[]) {
  const orderId = randomUUID();
  return {
    orderId,
    publish: () =>
      svc.bus.publish('orders.order.paid', {
        orderId,
        memberId,
        total: 100,
        currency: 'CNY',
        lines: [{ skuId: 's1', productId: oid(), quantity: 1, unitPrice: 3900, priceKind: 'LIST' }],
        source: { kind: 'DIRECT' },
        paymentId: randomUUID(),
        paidAt: new Date().toISOString(),
        ...(couponIds ? { couponIds } : {}),
      }),
  };
}

test('ISSUED → ORDERED by the paid order that used its coupon (not another) → SHOWCASED by its showcase; replays are one trial', async () => {
  const m = await approved();
  const input = { memberId: m, couponTemplateId: 'tpl-1', idempotencyKey: randomUUID() };
  const sent = await Promise.all([call(SEND, { i: input }, staff()), call(SEND, { i: input }, staff())]);
  expect(sent.map((r) => r.errors)).toEqual([undefined, undefined]);
  const trial = sent[0]!.data!.sendAmbassadorTrial;
  expect(sent[1]!.data!.sendAmbassadorTrial).toEqual(trial);
  expect(trial.status).toBe('ISSUED');
  expect(grants.filter((g) => g.memberId === m)).toEqual([
    { key: `community:trial:${trial.id}`, memberId: m, templateId: 'tpl-1', reason: expect.any(String) },
  ]);
  // The same key for another template is refused.
  expect(code(await call(SEND, { i: { ...input, couponTemplateId: 'tpl-2' } }, staff()))).toBe('CONFLICT');

  // Another paid order of the member (no coupon, or another coupon) leaves the trial ISSUED.
  const plain = paid(m);
  await plain.publish();
  const other = paid(m, ['coupon-other']);
  await other.publish();
  const used = paid(m, [trial.couponId]);
  await used.publish();
  await used.publish();
  await eventually(async () => (await trialsOf(m))[0]?.status === 'ORDERED', 20_000);
  expect(await trialsOf(m)).toEqual([{ id: trial.id, status: 'ORDERED', orderId: used.orderId, showcasePostId: null }]);

  const posted = await eventually(async () => {
    const r = await call(
      'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id ambassador } }',
      { i: { orderId: used.orderId, skuId: 's1', rating: 5, body: '试用报告' } },
      customer(m),
    );
    return r.errors ? null : r.data!.postShowcase;
  }, 20_000);
  expect(posted.ambassador).toBe(true);
  await eventually(async () => (await trialsOf(m))[0]?.status === 'SHOWCASED', 20_000);
  expect((await trialsOf(m))[0]).toMatchObject({ orderId: used.orderId, showcasePostId: posted.id });
});

test('refusals: a member is FORBIDDEN, a non-ambassador or revoked one CONFLICT with the status as reason; no grant asked', async () => {
  const m = await approved();
  const send = (memberId: string, viewer: ReturnType<typeof staff>) =>
    call(SEND, { i: { memberId, couponTemplateId: 'tpl-1', idempotencyKey: randomUUID() } }, viewer);
  expect(code(await send(m, customer(m)))).toBe('FORBIDDEN');
  const never = await send(oid(), staff());
  expect([code(never), never.errors?.[0]?.extensions?.reason]).toEqual(['CONFLICT', 'NONE']);
  await call('mutation($m: ID!) { revokeAmbassador(memberId: $m, reason: "违规") { status } }', { m }, staff());
  const revoked = await send(m, staff());
  expect([code(revoked), revoked.errors?.[0]?.extensions?.reason]).toEqual(['CONFLICT', 'REVOKED']);
  expect(grants.filter((g) => g.memberId === m)).toEqual([]);
  expect(code(await call(TRIALS, { m }, customer(oid())))).toBe('FORBIDDEN');
});
