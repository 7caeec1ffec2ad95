import { connect, StringCodec } from 'nats';
import { Types } from 'mongoose';
import {
  asGateway,
  customer,
  gql,
  privateNats,
  serviceEnv,
  TEST_INTERNAL_SECRET,
  TEST_AUTH_SECRET,
  staff,
  type InfraProcess,
} from '@flywheel/testing';
import { encryptPii, lookupHash, piiKeys, signInternalToken, verifyJwt, type RunningService } from '@flywheel/service-kit';
import { streamName } from '@flywheel/events';
import { loadServiceConfig, type Config } from '../config';
import { start } from '../main';
import { ACCESS_TOKEN_AUDIENCE, ACCESS_TOKEN_ISSUER, defaultNickname, normalizePhone, type MembershipService } from '../service';

let nats: InfraProcess;
let config: Config;
let svc: RunningService & { service: MembershipService };

beforeAll(async () => {
  nats = await privateNats();
  config = loadServiceConfig(serviceEnv('membership', nats.url));
  svc = await start(config);
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const anon = () => asGateway('membership', null);
const call = (query: string, variables: Record<string, unknown> = {}, headers = anon()) => gql(svc.url, query, variables, headers);
const REQUEST = 'mutation($phone: String!) { requestLoginCode(input: { phone: $phone }) { retryAfterSeconds devCode } }';
const LOGIN =
  'mutation($phone: String!, $code: String!) { login(input: { phone: $phone, code: $code }) { accessToken refreshToken expiresAt session { roles member { id nickname phone tier } } } }';

let phoneSeq = 13800000000;
const newPhone = () => String(++phoneSeq + Math.floor(Math.random() * 1000) * 1000);

async function loginAs(phone: string) {
  const req = await call(REQUEST, { phone });
  expect(req.errors).toBeUndefined();
  const res = await call(LOGIN, { phone, code: req.data!.requestLoginCode.devCode });
  expect(res.errors).toBeUndefined();
  return res.data!.login;
}

describe('the internal token guards every call', () => {
  test('a call without the internal token is refused with UNAUTHENTICATED and 401', async () => {
    const res = await gql(svc.url, '{ session { roles } }');
    expect(res.status).toBe(401);
    expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('_entities and _service are refused too without the token', async () => {
    for (const q of ['{ _service { sdl } }', '{ _entities(representations: [{ __typename: "Member", id: "x" }]) { __typename } }']) {
      const res = await gql(svc.url, q);
      expect(res.status).toBe(401);
      expect(res.data ?? null).toBeNull();
    }
  });

  test('a token signed with the wrong secret, for another subgraph, or expired is refused', async () => {
    const bad = [
      signInternalToken('another-secret-another-secret-0123456789', 'membership', null),
      signInternalToken(TEST_INTERNAL_SECRET, 'catalog', null),
      signInternalToken(TEST_INTERNAL_SECRET, 'membership', null, Date.now() - 10 * 60_000),
    ];
    for (const token of bad) {
      const res = await gql(svc.url, '{ session { roles } }', {}, { 'flywheel-internal-token': token });
      expect(res.status).toBe(401);
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
  });

  test('an anonymous visitor token has no viewer', async () => {
    const res = await call('{ me { id } session { roles member { id } } }');
    expect(res.data).toEqual({ me: null, session: { roles: [], member: null } });
  });
});

describe('login by phone code', () => {
  test('phone normalisation accepts +86 and separators, rejects the rest', () => {
    expect(normalizePhone('+86 138-0013-8000')).toBe('13800138000');
    expect(normalizePhone('12800138000')).toBeNull();
    expect(normalizePhone('1380013800')).toBeNull();
  });

  test('first login registers the member, stores the phone encrypted, and returns working tokens', async () => {
    const phone = newPhone();
    const login = await loginAs(phone);
    const claims = verifyJwt(login.accessToken, TEST_AUTH_SECRET, { iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE });
    expect(claims.roles).toEqual(['CUSTOMER']);
    expect(claims.sub).toBe(login.session.member.id);
    expect(login.session.member.tier).toBe('REGULAR');
    const me = await call('{ me { id phone } }', {}, asGateway('membership', customer(claims.sub!)));
    expect(me.data?.me).toEqual({ id: claims.sub, phone: `${phone.slice(0, 3)}****${phone.slice(-4)}` });

    const raw = await svc.db.collection('members').findOne({ _id: new Types.ObjectId(claims.sub) });
    expect(JSON.stringify(raw)).not.toContain(phone);
    expect(raw?.phoneEnc).toMatch(/^v1\./);
  });

  test('the registration event goes to JetStream exactly once, from the outbox', async () => {
    const phone = newPhone();
    const { session } = await loginAs(phone);
    const nc = await connect({ servers: nats.url });
    try {
      const jsm = await nc.jetstreamManager();
      const found = await (async () => {
        for (let i = 0; i < 50; i++) {
          const info = await jsm.streams.info(streamName('membership'));
          for (let seq = 1; seq <= info.state.last_seq; seq++) {
            const m = await jsm.streams.getMessage(streamName('membership'), { seq }).catch(() => null);
            const env = m ? JSON.parse(StringCodec().decode(m.data)) : null;
            if (env?.type === 'membership.member.registered' && env.data?.memberId === session.member.id)
              return { env, count: info.state.messages };
          }
          await new Promise((r) => setTimeout(r, 100));
        }
        return null;
      })();
      expect(found?.env).toMatchObject({ type: 'membership.member.registered', source: 'membership', version: 1 });
      // Ids and facts only: no phone, and no nickname (which used to carry its last four digits).
      // The phone only as referral's keyed fraud hash, never the members' own index value.
      expect(Object.keys(found!.env.data).sort()).toEqual(['memberId', 'phoneHash', 'registeredAt']);
      expect(JSON.stringify(found!.env)).not.toContain(phone);
      const stored = await svc.db.collection('members').findOne({ _id: new Types.ObjectId(session.member.id) });
      expect(found!.env.data.phoneHash).not.toBe(stored?.phoneHash);
      // A relay pass re-run publishes no registration again (sent markers; Nats-Msg-Id dedupe
      // behind them). Other events (the RFM placements of registrations) may still be on their way,
      // so only this subject is counted.
      const registrations = async () =>
        (await jsm.streams.info(streamName('membership'), { subjects_filter: 'membership.member.registered' })).state.subjects?.[
          'membership.member.registered'
        ];
      const before = await registrations();
      expect(before).toBeGreaterThanOrEqual(1);
      await svc.relay!.flush();
      await svc.relay!.flush();
      expect(await registrations()).toBe(before);
    } finally {
      await nc.close();
    }
  });

  test('a bad phone number is BAD_USER_INPUT and writes nothing', async () => {
    const before = await svc.db.collection('claims').countDocuments();
    const res = await call(REQUEST, { phone: '12345' });
    expect(res.errors?.[0]?.extensions?.code).toBe('BAD_USER_INPUT');
    expect(await svc.db.collection('claims').countDocuments()).toBe(before);
  });

  test('a wrong code is UNAUTHENTICATED, registers nobody, and five wrong guesses burn the code', async () => {
    const phone = newPhone();
    const { devCode } = (await call(REQUEST, { phone })).data!.requestLoginCode;
    const wrong = devCode === '000000' ? '111111' : '000000';
    const members = await svc.db.collection('members').countDocuments();
    for (let i = 0; i < 5; i++) {
      const res = await call(LOGIN, { phone, code: wrong });
      expect(res.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    }
    const late = await call(LOGIN, { phone, code: devCode });
    expect(late.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
    expect(await svc.db.collection('members').countDocuments()).toBe(members);
  });

  test('50 parallel wrong guesses: 5 are compared, the other 45 are refused unseen, then even the right code is refused', async () => {
    const phone = newPhone();
    const { devCode } = (await call(REQUEST, { phone })).data!.requestLoginCode;
    const wrong = Array.from({ length: 50 }, (_, i) => String((Number(devCode) + 1 + i) % 1_000_000).padStart(6, '0'));
    const results = await Promise.all(wrong.map((code) => call(LOGIN, { phone, code })));
    expect(results.every((r) => r.errors?.[0]?.extensions?.code === 'UNAUTHENTICATED')).toBe(true);
    // A guess that was compared is told the code is wrong; one that found no attempt left was never compared.
    const exhausted = results.filter((r) => r.errors?.[0]?.extensions?.reason === 'ATTEMPTS_EXHAUSTED');
    expect(exhausted).toHaveLength(45);
    const right = await call(LOGIN, { phone, code: devCode });
    expect(right.errors?.[0]?.extensions).toMatchObject({ code: 'UNAUTHENTICATED', reason: 'ATTEMPTS_EXHAUSTED' });
  });

  test('the right code among 50 parallel guesses succeeds only by winning one of the 5 attempts', async () => {
    const phone = newPhone();
    const { devCode } = (await call(REQUEST, { phone })).data!.requestLoginCode;
    const guesses = Array.from({ length: 50 }, (_, i) => String((Number(devCode) + 1 + i) % 1_000_000).padStart(6, '0'));
    guesses[25] = devCode;
    const results = await Promise.all(guesses.map((code) => call(LOGIN, { phone, code })));
    const signedIn = results.filter((r) => !r.errors).length;
    const compared = results.filter((r) => r.errors?.[0]?.extensions?.reason !== 'ATTEMPTS_EXHAUSTED').length;
    expect(signedIn).toBeLessThanOrEqual(1);
    expect(compared).toBe(5);
  });

  test('a code works once', async () => {
    const phone = newPhone();
    const { devCode } = (await call(REQUEST, { phone })).data!.requestLoginCode;
    expect((await call(LOGIN, { phone, code: devCode })).errors).toBeUndefined();
    expect((await call(LOGIN, { phone, code: devCode })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('code requests are rate-limited per phone: concurrent requests send one code', async () => {
    const phone = newPhone();
    const results = await Promise.all(Array.from({ length: 8 }, () => call(REQUEST, { phone })));
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    expect(results.filter((r) => r.errors?.[0]?.extensions?.code === 'RATE_LIMITED')).toHaveLength(7);
  });

  test('two first logins racing for one phone register one member', async () => {
    const phone = newPhone();
    const { devCode } = (await call(REQUEST, { phone })).data!.requestLoginCode;
    const results = await Promise.all([call(LOGIN, { phone, code: devCode }), call(LOGIN, { phone, code: devCode })]);
    expect(results.filter((r) => !r.errors)).toHaveLength(1);
    const ids = await svc.db.collection('members').find({}).toArray();
    expect(new Set(ids.map((m) => m.phoneHash)).size).toBe(ids.length);
  });

  test("a new member's nickname carries no digit of their phone, for them or for anyone who sees them", async () => {
    const phone = newPhone();
    const { session } = await loginAs(phone);
    expect(session.member.nickname).not.toMatch(/\d/);
    expect(session.member.nickname).toBe(defaultNickname(session.member.id));
    // What an invite code's holder sees of its owner: the Member entity, anonymously.
    const res = await call('query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { nickname phone } } }', {
      r: [{ __typename: 'Member', id: session.member.id }],
    });
    expect(res.data?._entities).toEqual([{ nickname: session.member.nickname, phone: null }]);
  });

  test('members stored with the phone-derived default nickname are renamed at start-up; a chosen nickname stays', async () => {
    const keys = piiKeys(config.PII_ENCRYPTION_KEY, config.PII_LOOKUP_KEY);
    const stored = (phone: string, nickname: string) => ({
      _id: new Types.ObjectId(),
      phoneHash: lookupHash(keys, phone),
      phoneEnc: encryptPii(keys, phone),
      nickname,
      tier: 'REGULAR',
      registeredAt: new Date(),
    });
    const oldPhone = newPhone();
    const old = stored(oldPhone, `会员${oldPhone.slice(-4)}`);
    const chosenPhone = `${newPhone().slice(0, 7)}1357`;
    const chosen = stored(chosenPhone, '会员2024');
    await svc.db.collection('members').insertMany([old, chosen]);

    const restarted = await start(config, { sweepers: false });
    try {
      const read = async (id: Types.ObjectId) => (await svc.db.collection('members').findOne({ _id: id }))?.nickname;
      expect(await read(old._id)).toBe(defaultNickname(old._id.toHexString()));
      expect(await read(chosen._id)).toBe('会员2024');
      // The same login as before, with the member's new name.
      const login = await loginAs(oldPhone);
      expect(login.session.member).toMatchObject({ id: old._id.toHexString(), nickname: defaultNickname(old._id.toHexString()) });
    } finally {
      await restarted.stop();
    }
  });

  test('a refresh token works once', async () => {
    const { refreshToken } = await loginAs(newPhone());
    const q = 'mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { accessToken session { roles } } }';
    const first = await call(q, { t: refreshToken });
    expect(first.data?.refreshSession.session.roles).toEqual(['CUSTOMER']);
    expect((await call(q, { t: refreshToken })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });
});

describe('staff and authorization', () => {
  test('staff log in with email and password and get the STAFF role; a wrong password does not', async () => {
    await svc.service.ensureStaff('ops@example.com', 'Ops', 'correct horse battery');
    const q = 'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { session { roles staff { email } } } }';
    const ok = await call(q, { e: 'OPS@example.com', p: 'correct horse battery' });
    expect(ok.data?.staffLogin.session).toEqual({ roles: ['STAFF'], staff: { email: 'ops@example.com' } });
    const bad = await call(q, { e: 'ops@example.com', p: 'wrong' });
    expect(bad.errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
  });

  test('staff create STAFF and HOST (主播) accounts; a host signs in (and refreshes) with the HOST role only', async () => {
    const CREATE = 'mutation($i: CreateStaffAccountInput!) { createStaffAccount(input: $i) { id email name role } }';
    const asStaff = asGateway('membership', staff());
    const i = { email: ' Host.Lin@Example.com ', password: 'a long host password', name: '小林', role: 'HOST' };
    const created = await call(CREATE, { i }, asStaff);
    expect(created.errors).toBeUndefined();
    expect(created.data?.createStaffAccount).toMatchObject({ email: 'host.lin@example.com', name: '小林', role: 'HOST' });
    const hostId = created.data?.createStaffAccount.id;
    const errorOf = async (input: object, headers = asStaff) => (await call(CREATE, { i: input }, headers)).errors?.[0]?.extensions;
    expect(await errorOf({ ...i, email: 'HOST.LIN@example.com' })).toMatchObject({ code: 'CONFLICT' });
    expect(await errorOf({ ...i, email: 'x@example.com', password: 'short' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'password' });
    expect(await errorOf({ ...i, email: 'not-an-email' })).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email' });
    const host = asGateway('membership', { id: hostId, roles: ['HOST'], scopes: [] });
    for (const who of [host, asGateway('membership', customer('m1'))])
      expect(await errorOf({ ...i, email: 'y@example.com' }, who)).toMatchObject({ code: 'FORBIDDEN' });
    expect(await errorOf({ ...i, email: 'y@example.com' }, anon())).toMatchObject({ code: 'UNAUTHENTICATED' });
    const plain = await call(CREATE, { i: { email: 'ops2@example.com', password: 'a long staff password', name: 'Ops' } }, asStaff);
    expect(plain.data?.createStaffAccount.role).toBe('STAFF');

    const LOGIN_STAFF =
      'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { accessToken refreshToken session { roles staff { id role } } } }';
    const login = (await call(LOGIN_STAFF, { e: 'host.lin@example.com', p: i.password })).data?.staffLogin;
    expect(login.session).toEqual({ roles: ['HOST'], staff: { id: hostId, role: 'HOST' } });
    expect(verifyJwt(login.accessToken, TEST_AUTH_SECRET, { iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE }).roles).toEqual([
      'HOST',
    ]);
    const session = await call('{ session { roles staff { email } } }', {}, host);
    expect(session.data?.session).toEqual({ roles: ['HOST'], staff: { email: 'host.lin@example.com' } });
    const refreshed = await call('mutation($t: String!) { refreshSession(input: { refreshToken: $t }) { session { roles } } }', {
      t: login.refreshToken,
    });
    expect(refreshed.data?.refreshSession.session.roles).toEqual(['HOST']);
    // A host is not staff: staff-only reads refuse it.
    expect((await call('{ members(first: 1) { edges { cursor } } }', {}, host)).errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
  });

  test('members(...) is staff only; a member sees their own masked phone, others see none', async () => {
    const login = await loginAs(newPhone());
    const id = login.session.member.id;
    const asCustomer = await call('{ members(first: 5) { edges { node { id } } } }', {}, asGateway('membership', customer(id)));
    expect(asCustomer.errors?.[0]?.extensions?.code).toBe('FORBIDDEN');
    const asStaff = await call('{ members(first: 100) { edges { node { id phone } } } }', {}, asGateway('membership', staff()));
    expect(asStaff.data?.members.edges.map((e: { node: { id: string } }) => e.node.id)).toContain(id);
    const other = await call('{ me { id } }', {}, asGateway('membership', customer(id)));
    expect(other.data?.me.id).toBe(id);
  });

  test('_entities resolves members in one batch, unknown ids as null', async () => {
    const a = (await loginAs(newPhone())).session.member.id;
    const b = (await loginAs(newPhone())).session.member.id;
    const res = await call(
      'query($r: [_Any!]!) { _entities(representations: $r) { ... on Member { id nickname } } }',
      {
        r: [
          { __typename: 'Member', id: a },
          { __typename: 'Member', id: 'nope' },
          { __typename: 'Member', id: b },
        ],
      },
      asGateway('membership', staff()),
    );
    expect(res.errors).toBeUndefined();
    expect(res.data?._entities.map((e: { id: string } | null) => e?.id ?? null)).toEqual([a, null, b]);
  });
});
