import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import {
  asGateway,
  customer,
  recordIdReads,
  eventually,
  gql,
  privateNats,
  serviceEnv,
  staff,
  uniqueDbName,
  type InfraProcess,
} from '@flywheel/testing';
import { ensureIndexes, type RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import { createModels } from '../model';
import { createCommunityService, DEFAULT_WELCOME_GROUP, type CommunityService } from '../service';

let nats: InfraProcess;
let svc: RunningService & { service: CommunityService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('community', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const asStaff = () => asGateway('community', staff());
const anon = () => asGateway('community', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);
const newMemberId = () => new Types.ObjectId().toHexString();
const memberships = (memberId: string) => svc.db.collection('group_memberships').find({ memberId }).toArray();

const CREATE = 'mutation($input: CreateGroupInput!) { createGroup(input: $input) { id name description tags welcome memberCount } }';
const MEMBER_GROUPS = 'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id groups { id name } } } }';

async function createGroup(input: Record<string, unknown>): Promise<string> {
  const res = await call(CREATE, { input }, asStaff());
  expect(res.errors).toBeUndefined();
  return res.data!.createGroup.id;
}

function register(memberId: string, id?: string) {
  return svc.bus.publish('membership.member.registered', { memberId, registeredAt: new Date().toISOString() }, id ? { id } : {});
}

describe('welcoming new members (membership.member.registered)', () => {
  test('with no welcome group yet, the first registration creates the default one and the member joins it', async () => {
    const memberId = newMemberId();
    await register(memberId);
    const rows = await eventually(async () => {
      const r = await memberships(memberId);
      return r.length ? r : null;
    });
    expect(rows.map((r) => r._id)).toEqual([`welcome:${memberId}`]);
    const group = await call('{ group(id: "welcome") { id name welcome memberCount } }');
    expect(group.data?.group).toEqual({ id: 'welcome', name: '新人福利群', welcome: true, memberCount: 1 });
  });

  test('concurrent first registrations create one default group', async () => {
    const db = svc.db.useDb(uniqueDbName('community_race'));
    try {
      const service = createCommunityService({ models: createModels(db) });
      await ensureIndexes(db);
      const members = Array.from({ length: 6 }, newMemberId);
      await Promise.all(members.map((m) => service.welcomeMember(m)));
      expect(await db.collection('groups').find({}).toArray()).toEqual([expect.objectContaining({ _id: DEFAULT_WELCOME_GROUP._id })]);
      expect(await db.collection('group_memberships').countDocuments()).toBe(6);
    } finally {
      await db.dropDatabase();
    }
  });

  test('a member joins every welcome group, and not the others', async () => {
    const vip = await createGroup({ name: '会员福利二群', welcome: true });
    const other = await createGroup({ name: '宝妈交流群', welcome: false });
    const memberId = newMemberId();
    await register(memberId);
    const rows = await eventually(async () => {
      const r = await memberships(memberId);
      return r.length === 2 ? r : null;
    });
    expect(rows.map((r) => r.groupId).sort()).toEqual([vip, 'welcome'].sort());
    expect(rows.some((r) => r.groupId === other)).toBe(false);
  });

  test('the same event published twice has one effect; replaying the handler is a no-op', async () => {
    const memberId = newMemberId();
    const eventId = randomUUID();
    const before = (await call('{ group(id: "welcome") { memberCount } }')).data?.group.memberCount;
    await register(memberId, eventId);
    await register(memberId, eventId);
    // A later event on the same ordered consumer: once it is applied, both copies have been seen.
    const marker = newMemberId();
    await register(marker);
    await eventually(async () => (await memberships(marker)).length > 0);
    const rows = await memberships(memberId);
    expect(new Set(rows.map((r) => r.groupId)).size).toBe(rows.length);
    expect(rows.every((r) => r.eventId === eventId)).toBe(true);

    await svc.service.welcomeMember(memberId, eventId);
    expect(await memberships(memberId)).toHaveLength(rows.length);
    const after = (await call('{ group(id: "welcome") { memberCount } }')).data?.group.memberCount;
    expect(after).toBe(before + 2);
  });
});

describe('groups', () => {
  test('staff create a group; tags are trimmed and de-duplicated', async () => {
    const res = await call(
      CREATE,
      { input: { name: ' 护肤打卡群 ', description: '每天一起打卡', tags: ['护肤', ' 护肤', '打卡'] } },
      asStaff(),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?.createGroup).toMatchObject({ name: '护肤打卡群', tags: ['护肤', '打卡'], welcome: false, memberCount: 0 });
  });

  test('a customer is FORBIDDEN, an anonymous visitor UNAUTHENTICATED; nothing is written', async () => {
    const before = await svc.db.collection('groups').countDocuments();
    expect((await call(CREATE, { input: { name: 'x' } }, asGateway('community', customer('m1')))).errors?.[0]?.extensions?.code).toBe(
      'FORBIDDEN',
    );
    expect((await call(CREATE, { input: { name: 'x' } }, anon())).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await svc.db.collection('groups').countDocuments()).toBe(before);
  });

  test('bad input is BAD_USER_INPUT and writes nothing', async () => {
    const before = await svc.db.collection('groups').countDocuments();
    const bad = [
      { name: '' },
      { name: '群'.repeat(41) },
      { name: 'ok', description: 'd'.repeat(501) },
      { name: 'ok', tags: Array.from({ length: 11 }, (_, i) => `t${i}`) },
      { name: 'ok', tags: [' '] },
    ];
    for (const input of bad) expect((await call(CREATE, { input }, asStaff())).errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await svc.db.collection('groups').countDocuments()).toBe(before);
  });

  test('memberCount counts membership rows', async () => {
    const id = await createGroup({ name: '计数群' });
    for (const m of [newMemberId(), newMemberId(), newMemberId()]) await svc.service.addMember(id, m);
    const res = await call('query($id: ID!) { group(id: $id) { memberCount } }', { id });
    expect(res.data?.group.memberCount).toBe(3);
  });

  test('groups pages newest first without gaps or repeats', async () => {
    const created: string[] = [];
    for (let i = 0; i < 3; i++) created.unshift(await createGroup({ name: `分页群 ${i}` }));
    const q = 'query($after: String) { groups(first: 2, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }';
    const seen: string[] = [];
    let after: string | null = null;
    for (;;) {
      const res = await call(q, { after });
      expect(res.errors).toBeUndefined();
      const conn = res.data!.groups;
      seen.push(...conn.edges.map((e: { node: { id: string } }) => e.node.id));
      if (!conn.pageInfo.hasNextPage) break;
      after = conn.pageInfo.endCursor;
    }
    expect(seen.length).toBe(await svc.db.collection('groups').countDocuments());
    expect(new Set(seen).size).toBe(seen.length);
    // Time-ordered ids: the fixed `welcome` id sorts above them, the newest created come next.
    expect(seen.slice(0, 4)).toEqual(['welcome', ...created]);
  });
});

describe('federation', () => {
  test('_entities resolves groups in one batch, unknown ids as null', async () => {
    const a = await createGroup({ name: 'A 群' });
    const reads = recordIdReads(svc.db, 'groups');
    const res = await call('query($r: [_Any!]!) { _entities(representations: $r) { ... on Group { id name memberCount } } }', {
      r: [a, 'nope', 'welcome', a].map((id) => ({ __typename: 'Group', id })),
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e: { id: string } | null) => e?.id ?? null)).toEqual([a, null, 'welcome', a]);
    // One batch: each id read once, by id.
    expect(reads.stop()).toEqual([a, 'nope', 'welcome'].sort());
  });

  test('Member.groups answers the member and staff; another member is FORBIDDEN, a visitor UNAUTHENTICATED', async () => {
    const me = newMemberId();
    const other = newMemberId();
    await svc.service.welcomeMember(me);
    const r = [{ __typename: 'Member', id: me }];
    const mine = await call(MEMBER_GROUPS, { r }, asGateway('community', customer(me)));
    expect(mine.errors).toBeUndefined();
    expect(mine.data?._entities[0].groups.map((g: { id: string }) => g.id)).toContain('welcome');
    const asStaffRes = await call(MEMBER_GROUPS, { r }, asStaff());
    expect(asStaffRes.data?._entities[0].groups).toEqual(mine.data?._entities[0].groups);
    expect((await call(MEMBER_GROUPS, { r }, asGateway('community', customer(other)))).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect((await call(MEMBER_GROUPS, { r }, anon())).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test("several members' groups load in one batch; a member in no group has none", async () => {
    const a = newMemberId();
    const b = newMemberId();
    await svc.service.welcomeMember(a);
    const find = jest.spyOn(svc.db.model('GroupMembership'), 'find');
    const res = await call(MEMBER_GROUPS, { r: [a, b].map((id) => ({ __typename: 'Member', id })) }, asStaff());
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities[0].groups.length).toBeGreaterThan(0);
    expect(res.data?._entities[1]).toEqual({ id: b, groups: [] });
    expect(find).toHaveBeenCalledTimes(1);
    find.mockRestore();
  });
});
