import { gql, privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import type { RunningService } from '@flywheel/service-kit';
import * as membership from '../../../services/membership/src/main';
import * as membershipConfig from '../../../services/membership/src/config';
import { loadGatewayConfig } from '../config';
import { start as startGateway, type RunningGateway } from '../main';
import { gatewayTestEnv } from './in-process-stack';

// Issue 10.7: every string argument that is stored or logged has a bound, refused with a clear
// error naming the field before anything is written. Real gateway, real membership subgraph.

let nats: InfraProcess;
let member: RunningService;
let gateway: RunningGateway;

beforeAll(async () => {
  nats = await privateNats();
  member = await membership.start(membershipConfig.loadServiceConfig(serviceEnv('membership', nats.url)));
  gateway = await startGateway(loadGatewayConfig(gatewayTestEnv({ membership: member.url })));
});
afterAll(async () => {
  await gateway?.stop();
  await member?.db.dropDatabase().catch(() => undefined);
  await member?.stop();
  await nats?.stop();
});

const LOGIN = 'mutation($p: String!, $c: String!, $i: String) { login(input: { phone: $p, code: $c, inviteCode: $i }) { accessToken } }';

test('a 20,000-character invite code at registration is BAD_USER_INPUT naming inviteCode; nothing is registered or used up', async () => {
  const phone = '13912345678';
  const req = await gql(gateway.url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone });
  const code = req.data?.requestLoginCode?.devCode as string;
  expect(code).toMatch(/^\d{6}$/);

  const hostile = await gql(gateway.url, LOGIN, { p: phone, c: code, i: 'X'.repeat(20_000) });
  expect(hostile.data?.login ?? null).toBeNull();
  expect(hostile.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'inviteCode', maxLength: 16 });
  expect(hostile.errors?.[0]?.message).toBe('inviteCode must be at most 16 characters');
  expect(await member.db.collection('members').countDocuments()).toBe(0);

  // The code was not spent and no attempt was counted: the member signs in with it.
  const ok = await gql(gateway.url, LOGIN, { p: phone, c: code, i: 'ABCDEFGH' });
  expect(ok.errors).toBeUndefined();
  expect(ok.data?.login?.accessToken).toEqual(expect.any(String));
  const stored = await member.db.collection('members').find().toArray();
  expect(stored).toHaveLength(1);
  expect(stored[0]!.invitedByCode).toBe('ABCDEFGH');
});

test('an over-long phone or e-mail is refused before any look-up, whatever the mutation', async () => {
  const code = await gql(gateway.url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', {
    p: '1'.repeat(5_000),
  });
  expect(code.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'phone' });
  const staff = await gql(
    gateway.url,
    'mutation($e: String!) { staffLogin(input: { email: $e, password: "whatever-password" }) { accessToken } }',
    {
      e: `${'a'.repeat(300)}@example.com`,
    },
  );
  expect(staff.errors?.[0]?.extensions).toMatchObject({ code: 'BAD_USER_INPUT', field: 'email', maxLength: 254 });
});
