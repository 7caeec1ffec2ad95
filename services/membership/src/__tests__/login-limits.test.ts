import { asGateway, gql, privateNats, serviceEnv, type InfraProcess } from '@flywheel/testing';
import { loadServiceConfig } from '../config';
import { start, type RunningMembership } from '../main';

// Limits over time, on a clock the tests move (no waiting): a fixed day, so no run crosses a UTC
// midnight by accident.
let nats: InfraProcess;
let svc: RunningMembership;
let clock = Date.parse('2030-03-12T02:00:00Z');
const advance = (seconds: number) => {
  clock += seconds * 1000;
};

const LIMITS = {
  LOGIN_CODE_TTL_SECONDS: '300',
  LOGIN_CODE_INTERVAL_SECONDS: '60',
  LOGIN_CODES_PER_DAY: '2',
  LOGIN_CODE_MAX_INTERVAL_SECONDS: '600',
  STAFF_LOGIN_MAX_FAILURES: '5',
  STAFF_LOGIN_WINDOW_SECONDS: '900',
};

beforeAll(async () => {
  nats = await privateNats();
  svc = await start(loadServiceConfig(serviceEnv('membership', nats.url, LIMITS)), { sweepers: false, now: () => new Date(clock) });
});
afterAll(async () => {
  await svc.db.dropDatabase();
  await svc.stop();
  await nats.stop();
});

const call = (query: string, variables: Record<string, unknown> = {}) => gql(svc.url, query, variables, asGateway('membership', null));
const REQUEST = 'mutation($phone: String!) { requestLoginCode(input: { phone: $phone }) { retryAfterSeconds devCode } }';
const LOGIN = 'mutation($phone: String!, $code: String!) { login(input: { phone: $phone, code: $code }) { session { member { id } } } }';
const STAFF_LOGIN = 'mutation($e: String!, $p: String!) { staffLogin(input: { email: $e, password: $p }) { session { staff { email } } } }';

let phoneSeq = 13900000000 + Math.floor(Math.random() * 1000) * 1000;
const newPhone = () => String(++phoneSeq);

describe('login codes: a stranger cannot lock a member out', () => {
  test("a stranger requesting codes for a member's phone cannot stop the member logging in: every live code works, and a fresh one is never more than LOGIN_CODE_MAX_INTERVAL_SECONDS away", async () => {
    const phone = newPhone();
    const mine = (await call(REQUEST, { phone })).data!.requestLoginCode.devCode as string;

    // The stranger asks for codes for this phone as fast as they are given, well past the day's
    // LOGIN_CODES_PER_DAY. Each is sent to the member's phone (in development it is handed back).
    advance(60);
    const strangers: string[] = [];
    const waits: number[] = [];
    for (let i = 0; i < 6; i++) {
      const res = await call(REQUEST, { phone });
      expect(res.errors).toBeUndefined();
      strangers.push(res.data!.requestLoginCode.devCode);
      waits.push(res.data!.requestLoginCode.retryAfterSeconds);
      // The member's own code still works while it is live, whatever was requested after it.
      if (i === 0) {
        expect((await call(LOGIN, { phone, code: mine })).errors).toBeUndefined();
      }
      advance(res.data!.requestLoginCode.retryAfterSeconds);
    }
    // Waits grow once the day's allowance is used, but never beyond the maximum.
    expect(waits).toEqual([120, 240, 480, 600, 600, 600]);

    // Right after the stranger's last code, the member asking for one is told how long to wait:
    // never longer than the maximum, never "come back tomorrow".
    advance(-600 + 1);
    const refused = await call(REQUEST, { phone });
    expect(refused.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const retryAfter = refused.errors![0]!.extensions!.retryAfterSeconds as number;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(600);
    // Meanwhile the code the stranger triggered reached the member's phone, and works.
    expect((await call(LOGIN, { phone, code: strangers[strangers.length - 1] })).errors).toBeUndefined();

    // After the announced wait the member gets a code of their own, and it works.
    advance(retryAfter);
    const fresh = await call(REQUEST, { phone });
    expect(fresh.errors).toBeUndefined();
    expect((await call(LOGIN, { phone, code: fresh.data!.requestLoginCode.devCode })).errors).toBeUndefined();
  });

  test('an expired code is refused, and a code requested just after midnight still waits for the interval', async () => {
    const phone = newPhone();
    const saved = clock;
    clock = Date.parse('2030-03-12T23:59:30Z');
    try {
      const first = (await call(REQUEST, { phone })).data!.requestLoginCode.devCode as string;
      advance(40); // past midnight: a new day's allowance, but not a free extra code
      const early = await call(REQUEST, { phone });
      expect(early.errors?.[0]?.extensions).toMatchObject({ code: 'RATE_LIMITED', retryAfterSeconds: 20 });
      advance(300);
      expect((await call(LOGIN, { phone, code: first })).errors?.[0]?.extensions?.code).toBe('UNAUTHENTICATED');
      expect((await call(REQUEST, { phone })).errors).toBeUndefined();
    } finally {
      clock = saved;
    }
  });
});

describe('staff login is throttled per account', () => {
  test('after 5 wrong passwords in a window (sent concurrently) even the right one is RATE_LIMITED, other accounts are not, and the right one works once the window ends', async () => {
    await svc.service.ensureStaff('night@example.com', 'Night', 'correct horse battery');
    await svc.service.ensureStaff('day@example.com', 'Day', 'staple battery horse');
    const wrong = await Promise.all(Array.from({ length: 12 }, (_, i) => call(STAFF_LOGIN, { e: 'night@example.com', p: `guess-${i}` })));
    const codes = wrong.map((r) => r.errors?.[0]?.extensions?.code);
    expect(codes.filter((c) => c === 'UNAUTHENTICATED')).toHaveLength(5);
    expect(codes.filter((c) => c === 'RATE_LIMITED')).toHaveLength(7);

    const locked = await call(STAFF_LOGIN, { e: 'Night@example.com', p: 'correct horse battery' });
    expect(locked.errors?.[0]?.extensions?.code).toBe('RATE_LIMITED');
    const retryAfter = locked.errors![0]!.extensions!.retryAfterSeconds as number;
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(900);

    const other = await call(STAFF_LOGIN, { e: 'day@example.com', p: 'staple battery horse' });
    expect(other.data?.staffLogin.session.staff.email).toBe('day@example.com');

    advance(retryAfter);
    const back = await call(STAFF_LOGIN, { e: 'night@example.com', p: 'correct horse battery' });
    expect(back.errors).toBeUndefined();
    expect(back.data?.staffLogin.session.staff.email).toBe('night@example.com');
  });

  test('right passwords do not use up the allowance, and an unknown email is throttled the same way (no account enumeration)', async () => {
    await svc.service.ensureStaff('busy@example.com', 'Busy', 'a long enough password');
    for (let i = 0; i < 8; i++) {
      expect((await call(STAFF_LOGIN, { e: 'busy@example.com', p: 'a long enough password' })).errors).toBeUndefined();
    }
    const unknown = [];
    for (let i = 0; i < 6; i++) unknown.push(await call(STAFF_LOGIN, { e: 'nobody@example.com', p: `guess-${i}` }));
    expect(unknown.map((r) => r.errors?.[0]?.extensions?.code)).toEqual([...Array(5).fill('UNAUTHENTICATED'), 'RATE_LIMITED']);
  });
});
