// Ambassadors (体验官) through the community subgraph against the real FerretDB and NATS, with a moved clock.
import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../../config';
import { start, type RunningCommunity } from '../../main';

let nats: InfraProcess;
let svc: RunningCommunity;
let clock = new Date('2026-04-01T02:00:00Z');

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)), { sweepers: false, now: () => clock });
}, 60_000);
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const DAY = 86_400_000;
const oid = () => new Types.ObjectId().toHexString();
const call = (query: string, variables: Record<string, unknown>, viewer: ReturnType<typeof staff> | null) =>
  gql(svc.url, query, variables, asGateway('community', viewer));
const code = (res: { errors?: readonly { extensions?: Record<string, unknown> }[] }) => res.errors?.[0]?.extensions?.code;

const FIELDS = 'memberId status note appliedAt approvedAt showcaseDueAt overdue revokedAt revokeReason';
const APPLY = `mutation($n: String!) { applyForAmbassador(note: $n) { ${FIELDS} } }`;
const APPROVE = `mutation($m: ID!, $d: Int!) { approveAmbassador(memberId: $m, showcaseDueDays: $d) { ${FIELDS} } }`;
const REVOKE = `mutation($m: ID!, $r: String!) { revokeAmbassador(memberId: $m, reason: $r) { ${FIELDS} } }`;
const STATUS = `query($m: ID!) { ambassadorStatus(memberId: $m) { ${FIELDS} } }`;
const LIST = '{ ambassadors { memberId } }';
const PUBLISH = 'mutation($i: PublishPostInput!) { publishPost(input: $i) { id ambassador } }';
const POST = 'query($id: ID!) { post(id: $id) { ambassador } }';

async function status(memberId: string) {
  const res = await call(STATUS, { m: memberId }, staff());
  expect(res.errors).toBeUndefined();
  return res.data!.ambassadorStatus;
}
const badge = async (postId: string) => (await call(POST, { id: postId }, null)).data!.post.ambassador as boolean;
const listed = async () => ((await call(LIST, {}, staff())).data!.ambassadors as { memberId: string }[]).map((a) => a.memberId);

async function showcase(memberId: string) {
  const orderId = randomUUID();
  await svc.bus.publish('orders.order.paid', {
    orderId,
    memberId,
    total: 1000,
    currency: 'CNY',
    lines: [{ skuId: 's1', productId: oid(), quantity: 1, unitPrice: 1000, priceKind: 'LIST' }],
    source: { kind: 'DIRECT' },
    paymentId: randomUUID(),
    paidAt: clock.toISOString(),
  });
  await eventually(async () => (await svc.db.collection('community_paid_orders').countDocuments({ _id: orderId as never })) === 1);
  const res = await call(
    'mutation($i: PostShowcaseInput!) { postShowcase(input: $i) { id } }',
    { i: { orderId, skuId: 's1', rating: 5, body: '体验官试用报告' } },
    customer(memberId),
  );
  expect(res.errors).toBeUndefined();
}

test('apply → approve → overdue until a showcase → revoke → apply again; the badge follows the status', async () => {
  const m = oid();
  const other = oid();
  expect(await status(m)).toBeNull();
  const applies = await Promise.all([call(APPLY, { n: '敏感肌，愿意试用' }, customer(m)), call(APPLY, { n: '再申请' }, customer(m))]);
  expect(applies.filter((r) => !r.errors)).toHaveLength(1);
  expect(applies.filter((r) => code(r) === 'CONFLICT')).toHaveLength(1);
  expect(await status(m)).toMatchObject({ memberId: m, status: 'APPLIED', approvedAt: null, overdue: false });

  const post = (await call(PUBLISH, { i: { body: '新品试用中' } }, customer(m))).data!.publishPost.id as string;
  const otherPost = (await call(PUBLISH, { i: { body: '路过' } }, customer(other))).data!.publishPost.id as string;
  expect(await badge(post)).toBe(false);

  expect(code(await call(APPROVE, { m, d: 7 }, customer(other)))).toBe('FORBIDDEN');
  expect(code(await call(APPROVE, { m, d: 61 }, staff()))).toBe('BAD_USER_INPUT');
  expect(code(await call(APPROVE, { m: other, d: 7 }, staff()))).toBe('CONFLICT');
  const approved = await call(APPROVE, { m, d: 7 }, staff());
  expect(approved.data!.approveAmbassador).toMatchObject({
    status: 'APPROVED',
    approvedAt: clock.toISOString(),
    showcaseDueAt: new Date(clock.getTime() + 7 * DAY).toISOString(),
    overdue: false,
  });
  expect(code(await call(APPLY, { n: '再来' }, customer(m)))).toBe('CONFLICT');
  expect(code(await call(APPROVE, { m, d: 7 }, staff()))).toBe('CONFLICT');
  expect(await badge(post)).toBe(true);
  expect(await badge(otherPost)).toBe(false);
  expect(await listed()).toContain(m);
  expect(code(await call(STATUS, { m }, customer(other)))).toBe('FORBIDDEN');
  expect((await call(STATUS, { m }, customer(m))).data!.ambassadorStatus.status).toBe('APPROVED');

  clock = new Date(clock.getTime() + 8 * DAY);
  expect((await status(m)).overdue).toBe(true);
  await showcase(m);
  expect((await status(m)).overdue).toBe(false);

  const revoked = await call(REVOKE, { m, r: '未按时提交体验报告' }, staff());
  expect(revoked.data!.revokeAmbassador).toMatchObject({ status: 'REVOKED', revokeReason: '未按时提交体验报告', overdue: false });
  expect(code(await call(REVOKE, { m, r: '重复' }, staff()))).toBe('CONFLICT');
  expect(await badge(post)).toBe(false);
  expect(await listed()).not.toContain(m);

  const again = await call(APPLY, { n: '第二次申请' }, customer(m));
  expect(again.data!.applyForAmbassador).toMatchObject({ status: 'APPLIED', note: '第二次申请', approvedAt: null, revokedAt: null });
  expect(await svc.db.collection('ambassador_entries').countDocuments({ accountId: m })).toBe(4);
}, 60_000);

test('a showcase published before approval does not pay the debt', async () => {
  const m = oid();
  await showcase(m);
  clock = new Date(clock.getTime() + 1000);
  expect((await call(APPLY, { n: '老用户' }, customer(m))).errors).toBeUndefined();
  expect((await call(APPROVE, { m, d: 1 }, staff())).errors).toBeUndefined();
  clock = new Date(clock.getTime() + 2 * DAY);
  expect((await status(m)).overdue).toBe(true);
  expect(code(await call(APPLY, { n: '' }, customer(oid())))).toBe('BAD_USER_INPUT');
}, 60_000);
