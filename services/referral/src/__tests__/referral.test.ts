import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { asGateway, customer, eventually, gql, privateNats, serviceEnv, staff, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import { loadServiceConfig } from '../config';
import { start } from '../main';
import { CODE_ALPHABET, generateCode, normalizeCode, type ReferralService } from '../service';

let nats: InfraProcess;
let svc: RunningService & { service: ReferralService };

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('referral', nats.url)));
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const anon = () => asGateway('referral', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);
const newMemberId = () => new Types.ObjectId().toHexString();
const codesOf = (memberId: string) => svc.db.collection('invite_codes').find({ memberId }).toArray();
const bindingOf = (memberId: string) => svc.db.collection('invite_bindings').findOne({ _id: memberId as never });

function register(memberId: string, invitedByCode?: string, id?: string) {
  return svc.bus.publish(
    'membership.member.registered',
    { memberId, registeredAt: new Date().toISOString(), ...(invitedByCode ? { invitedByCode } : {}) },
    id ? { id } : {},
  );
}

/** Registers a member through the event and waits for their code. */
async function registered(invitedByCode?: string): Promise<{ memberId: string; code: string }> {
  const memberId = newMemberId();
  await register(memberId, invitedByCode);
  const [doc] = await eventually(async () => {
    const c = await codesOf(memberId);
    return c.length ? c : null;
  });
  return { memberId, code: doc!.code };
}

/** Events on one consumer are applied in order: once a later one shows, the earlier ones are done. */
async function settled(): Promise<void> {
  await registered();
}

const MEMBER =
  'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id inviteCode { code inviteeCount } invitedBy { id } } } }';

describe('invite codes', () => {
  test('codes are 8 characters from the unambiguous alphabet; lookups forgive case and spaces', () => {
    for (let i = 0; i < 200; i++) expect(generateCode()).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    expect(CODE_ALPHABET).not.toMatch(/[01ILO]/);
    expect(normalizeCode(' abcd2345 ')).toBe('ABCD2345');
    expect(normalizeCode('ABCD0123')).toBeNull();
    expect(normalizeCode('ABC')).toBeNull();
  });

  test('a registration issues the member one code, readable through inviteCode(code)', async () => {
    const { memberId, code } = await registered();
    expect(code).toMatch(/^[23456789ABCDEFGHJKMNPQRSTUVWXYZ]{8}$/);
    const res = await call('query($c: ID!) { inviteCode(code: $c) { code owner { id } inviteeCount } }', { c: code.toLowerCase() });
    expect(res.errors).toBeUndefined();
    expect(res.data?.inviteCode).toEqual({ code, owner: { id: memberId }, inviteeCount: 0 });
    expect((await call('{ inviteCode(code: "ZZZZZZZZ") { code } }')).data?.inviteCode).toBeNull();
    expect((await call('{ inviteCode(code: "not a code!") { code } }')).data?.inviteCode).toBeNull();
  });

  test('the same event published twice issues one code; replays and races return the first code', async () => {
    const memberId = newMemberId();
    const eventId = randomUUID();
    await register(memberId, undefined, eventId);
    await register(memberId, undefined, eventId);
    await settled();
    const codes = await codesOf(memberId);
    expect(codes).toHaveLength(1);
    const again = await Promise.all([1, 2, 3].map(() => svc.service.onMemberRegistered({ memberId }, eventId)));
    expect(again.map((r) => r.inviteCode.code)).toEqual([codes[0]!.code, codes[0]!.code, codes[0]!.code]);

    const racer = newMemberId();
    const raced = await Promise.all(Array.from({ length: 5 }, () => svc.service.issueInviteCode(racer)));
    expect(new Set(raced.map((c) => c.code)).size).toBe(1);
    expect(await codesOf(racer)).toHaveLength(1);
  });
});

describe('inviter binding', () => {
  test("registering with another member's code binds the inviter and counts the invitee", async () => {
    const inviter = await registered();
    const invitee = await registered(inviter.code.toLowerCase());
    const binding = await eventually(() => bindingOf(invitee.memberId));
    expect(binding).toMatchObject({ inviterId: inviter.memberId, code: inviter.code });
    const res = await call(
      MEMBER,
      { r: [{ __typename: 'Member', id: invitee.memberId }] },
      asGateway('referral', customer(invitee.memberId)),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities[0]).toEqual({
      id: invitee.memberId,
      inviteCode: { code: invitee.code, inviteeCount: 0 },
      invitedBy: { id: inviter.memberId },
    });
    const count = await call('query($c: ID!) { inviteCode(code: $c) { inviteeCount } }', { c: inviter.code });
    expect(count.data?.inviteCode.inviteeCount).toBe(1);
  });

  test('a member is bound once: a second registration event with another code changes nothing', async () => {
    const first = await registered();
    const second = await registered();
    const invitee = await registered(first.code);
    await register(invitee.memberId, second.code); // a new event id, not a redelivery
    await settled();
    expect(await bindingOf(invitee.memberId)).toMatchObject({ inviterId: first.memberId });
    expect(await svc.db.collection('invite_bindings').countDocuments({ inviterId: second.memberId })).toBe(0);
  });

  test('the same invited registration published twice counts once', async () => {
    const inviter = await registered();
    const memberId = newMemberId();
    const eventId = randomUUID();
    await register(memberId, inviter.code, eventId);
    await register(memberId, inviter.code, eventId);
    await settled();
    await svc.service.onMemberRegistered({ memberId, invitedByCode: inviter.code }, eventId);
    const count = await call('query($c: ID!) { inviteCode(code: $c) { inviteeCount } }', { c: inviter.code });
    expect(count.data?.inviteCode.inviteeCount).toBe(1);
  });

  test('a self-invite is refused and logged; an unknown code binds nobody', async () => {
    const warn = jest.spyOn(svc.logger, 'warn');
    try {
      const self = await registered();
      await register(self.memberId, self.code);
      const stranger = await registered('ZZZZ2222');
      await settled();
      expect(await bindingOf(self.memberId)).toBeNull();
      expect(await bindingOf(stranger.memberId)).toBeNull();
      expect((await codesOf(stranger.memberId)).length).toBe(1);
      const messages = warn.mock.calls.map((c) => c[c.length - 1]);
      expect(messages).toContain('self-invite refused');
      expect(messages).toContain('unknown invite code ignored');
      expect(await svc.service.bindInviter(self.memberId, self.code)).toEqual({ status: 'SELF_INVITE', binding: null });
    } finally {
      warn.mockRestore();
    }
  });
});

describe('federation and authorization', () => {
  test('Member fields answer the member and staff; another member is FORBIDDEN, a visitor UNAUTHENTICATED', async () => {
    const a = await registered();
    const r = [{ __typename: 'Member', id: a.memberId }];
    const asStaffRes = await call(MEMBER, { r }, asGateway('referral', staff()));
    expect(asStaffRes.data?._entities[0]).toEqual({ id: a.memberId, inviteCode: { code: a.code, inviteeCount: 0 }, invitedBy: null });
    const other = await call(MEMBER, { r }, asGateway('referral', customer(newMemberId())));
    expect(other.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    expect(JSON.stringify(other.data)).not.toContain(a.code);
    expect((await call(MEMBER, { r }, anon())).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('_entities resolves invite codes by code in one batch, unknown codes as null', async () => {
    const a = await registered();
    const b = await registered();
    const find = jest.spyOn(svc.db.model('InviteCode'), 'find');
    const res = await call('query($r: [_Any!]!) { _entities(representations: $r) { ... on InviteCode { code owner { id } } } }', {
      r: [a.code, 'ZZZZZZZZ', b.code].map((code) => ({ __typename: 'InviteCode', code })),
    });
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities).toEqual([{ code: a.code, owner: { id: a.memberId } }, null, { code: b.code, owner: { id: b.memberId } }]);
    expect(find).toHaveBeenCalledTimes(1);
    find.mockRestore();
  });

  test("several members' codes load in one batch", async () => {
    const a = await registered();
    const b = await registered();
    const find = jest.spyOn(svc.db.model('InviteCode'), 'find');
    const res = await call(
      MEMBER,
      { r: [a.memberId, b.memberId].map((id) => ({ __typename: 'Member', id })) },
      asGateway('referral', staff()),
    );
    expect(res.data?._entities.map((m: { inviteCode: { code: string } }) => m.inviteCode.code)).toEqual([a.code, b.code]);
    expect(find).toHaveBeenCalledTimes(1);
    find.mockRestore();
  });
});
