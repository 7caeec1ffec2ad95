import { ApolloServer } from '@apollo/server';
import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { z } from 'zod';
import { TEST_LOOKUP_KEY, TEST_PII_KEY } from '@flywheel/testing';
import {
  AppError,
  badInput,
  base64Key,
  createErrorFormatter,
  decryptPii,
  encryptPii,
  INTERNAL_TOKEN_TTL_SECONDS,
  loadConfig,
  lookupHash,
  onShutdown,
  piiCipherKey,
  piiKeys,
  serviceConfigShape,
  signInternalToken,
  signJwt,
  TokenError,
  verifyInternalToken,
  verifyJwt,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';

// Pure units: no database, no NATS.

const SECRET = 'unit-test-secret-0123456789abcdef0123456789';
const b64url = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

function reasonOf(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(TokenError);
    return (err as TokenError).reason;
  }
  throw new Error('expected a TokenError');
}

describe('JWT', () => {
  const expect_ = { iss: 'flywheel-membership', aud: 'flywheel' };

  test('a signed token verifies and returns its claims with iat and exp', () => {
    const now = Date.UTC(2030, 0, 1, 12);
    const token = signJwt({ ...expect_, sub: 'm-1', roles: ['CUSTOMER'] }, SECRET, 900, now);
    const claims = verifyJwt(token, SECRET, expect_, now + 1_000);
    expect(claims).toEqual({ ...expect_, sub: 'm-1', roles: ['CUSTOMER'], iat: now / 1000, exp: now / 1000 + 900 });
  });

  test('a tampered payload fails the signature', () => {
    const token = signJwt({ ...expect_, sub: 'm-1', roles: ['CUSTOMER'] }, SECRET, 900);
    const [header, body, sig] = token.split('.');
    const claims = JSON.parse(Buffer.from(body!, 'base64url').toString());
    const forged = `${header}.${b64url({ ...claims, roles: ['STAFF'] })}.${sig}`;
    expect(reasonOf(() => verifyJwt(forged, SECRET, expect_))).toBe('signature');
    expect(reasonOf(() => verifyJwt(`${header}.${body}.${sig!.slice(0, -4)}`, SECRET, expect_))).toBe('signature');
    expect(reasonOf(() => verifyJwt(token, `${SECRET}-other`, expect_))).toBe('signature');
  });

  test('an expired token is refused as expired, up to and including its exp second', () => {
    const now = Date.UTC(2030, 0, 1, 12);
    const token = signJwt(expect_, SECRET, 60, now);
    expect(verifyJwt(token, SECRET, expect_, now + 59_999).exp).toBe(now / 1000 + 60);
    expect(reasonOf(() => verifyJwt(token, SECRET, expect_, now + 60_000))).toBe('expired');
    expect(reasonOf(() => verifyJwt(token, SECRET, expect_, now + 3_600_000))).toBe('expired');
  });

  test('a wrong audience or issuer is refused as such', () => {
    const token = signJwt(expect_, SECRET, 60);
    expect(reasonOf(() => verifyJwt(token, SECRET, { ...expect_, aud: 'partner-api' }))).toBe('audience');
    expect(reasonOf(() => verifyJwt(token, SECRET, { ...expect_, iss: 'flywheel-gateway' }))).toBe('issuer');
  });

  test('malformed tokens, including alg=none, are refused as malformed', () => {
    const token = signJwt(expect_, SECRET, 60);
    const [, body] = token.split('.');
    const none = `${b64url({ alg: 'none', typ: 'JWT' })}.${body}.`;
    for (const bad of [
      '',
      'abc',
      'a.b',
      `${token}.extra`,
      none,
      `${b64url({ alg: 'HS512', typ: 'JWT' })}.${token.split('.').slice(1).join('.')}`,
    ]) {
      expect(reasonOf(() => verifyJwt(bad, SECRET, expect_))).toBe('malformed');
    }
  });
});

describe('internal token', () => {
  const viewer: Viewer = { id: 'm-42', roles: ['CUSTOMER', 'PARTNER'], scopes: ['orders:read'] };

  test('carries the viewer to the subgraph it is addressed to', () => {
    const token = signInternalToken(SECRET, 'orders', viewer);
    expect(verifyInternalToken(token, SECRET, 'orders')).toEqual(viewer);
  });

  test('without a viewer it verifies as an anonymous visitor (null)', () => {
    const token = signInternalToken(SECRET, 'catalog', null);
    expect(verifyInternalToken(token, SECRET, 'catalog')).toBeNull();
  });

  test('is useless at another subgraph, with another secret, or after its short TTL', () => {
    const now = Date.now();
    const token = signInternalToken(SECRET, 'catalog', viewer, now);
    expect(reasonOf(() => verifyInternalToken(token, SECRET, 'orders', now))).toBe('audience');
    expect(reasonOf(() => verifyInternalToken(token, `${SECRET}x`, 'catalog', now))).toBe('signature');
    expect(reasonOf(() => verifyInternalToken(token, SECRET, 'catalog', now + INTERNAL_TOKEN_TTL_SECONDS * 1000 + 1_000))).toBe('expired');
  });

  test('a customer JWT signed with the same secret is not an internal token', () => {
    const token = signJwt({ iss: 'flywheel-membership', aud: 'catalog', sub: 'm-1', roles: ['STAFF'] }, SECRET, 60);
    expect(reasonOf(() => verifyInternalToken(token, SECRET, 'catalog'))).toBe('issuer');
  });
});

describe('PII encryption', () => {
  const keys = piiKeys(TEST_PII_KEY, TEST_LOOKUP_KEY);

  test('round trips, including empty and non-ASCII values', () => {
    for (const value of ['13800138000', '', '张三 · 上海市徐汇区 1 号', 'a'.repeat(10_000)]) {
      expect(decryptPii(keys, encryptPii(keys, value))).toBe(value);
    }
  });

  test('the encryption key alone reads what the full keys sealed, and refuses a key of the wrong size', () => {
    const cipher = piiCipherKey(TEST_PII_KEY);
    expect(decryptPii(cipher, encryptPii(keys, '上海市徐汇区 1 号'))).toBe('上海市徐汇区 1 号');
    expect(decryptPii(keys, encryptPii(cipher, '13800138000'))).toBe('13800138000');
    expect(() => piiCipherKey(Buffer.alloc(16).toString('base64'))).toThrow(/32 bytes/);
  });

  test('the ciphertext differs each time and does not contain the plaintext', () => {
    const a = encryptPii(keys, '13800138000');
    const b = encryptPii(keys, '13800138000');
    expect(a).not.toBe(b);
    expect(a.startsWith('v1.')).toBe(true);
    expect(a).not.toContain('13800138000');
    expect(Buffer.from(a.split('.')[3]!, 'base64url').toString()).not.toContain('13800138000');
  });

  test('a tampered ciphertext, tag or iv, or the wrong key, throws', () => {
    const sealed = encryptPii(keys, '13800138000');
    const [v, iv, tag, ct] = sealed.split('.') as [string, string, string, string];
    const flip = (s: string) => {
      const buf = Buffer.from(s, 'base64url');
      buf[0] = buf[0]! ^ 1;
      return buf.toString('base64url');
    };
    expect(() => decryptPii(keys, [v, iv, tag, flip(ct)].join('.'))).toThrow();
    expect(() => decryptPii(keys, [v, iv, flip(tag), ct].join('.'))).toThrow();
    expect(() => decryptPii(keys, [v, flip(iv), tag, ct].join('.'))).toThrow();
    // A genuine but truncated tag (Node accepts 4..16 bytes unless told otherwise) is refused.
    const shortTag = Buffer.from(tag, 'base64url').subarray(0, 4).toString('base64url');
    expect(() => decryptPii(keys, [v, iv, shortTag, ct].join('.'))).toThrow();
    const other = piiKeys(Buffer.alloc(32, 1).toString('base64'), TEST_LOOKUP_KEY);
    expect(() => decryptPii(other, sealed)).toThrow();
    expect(() => decryptPii(keys, 'v2.' + sealed.slice(3))).toThrow(/unrecognised/);
    expect(() => decryptPii(keys, 'plain text')).toThrow(/unrecognised/);
  });

  test('lookupHash is stable for a value and depends on the key', () => {
    const h = lookupHash(keys, '13800138000');
    expect(lookupHash(keys, '13800138000')).toBe(h);
    expect(lookupHash(keys, '13800138001')).not.toBe(h);
    const other = piiKeys(TEST_PII_KEY, Buffer.alloc(32, 3).toString('base64'));
    expect(lookupHash(other, '13800138000')).not.toBe(h);
    expect(h).not.toContain('13800138000');
  });

  test('keys of the wrong size are refused', () => {
    expect(() => piiKeys(Buffer.alloc(16).toString('base64'), TEST_LOOKUP_KEY)).toThrow(/32 bytes/);
    expect(() => piiKeys(TEST_PII_KEY, Buffer.alloc(16).toString('base64'))).toThrow(/32 bytes/);
  });
});

describe('loadConfig', () => {
  class Exited extends Error {
    constructor(public readonly code: number) {
      super(`exit ${code}`);
    }
  }
  const exit = (code: number): never => {
    throw new Exited(code);
  };
  const schema = z.object({ ...serviceConfigShape, PII_KEY: base64Key(32) });
  const good = {
    INTERNAL_TOKEN_SECRET: 'x'.repeat(32),
    MONGO_URL: 'mongodb://127.0.0.1:27017/',
    NATS_URL: 'nats://127.0.0.1:4222',
    PII_KEY: TEST_PII_KEY,
  };

  let written: string[];
  beforeEach(() => {
    written = [];
    jest.spyOn(process.stderr, 'write').mockImplementation((chunk: string | Uint8Array) => {
      written.push(String(chunk));
      return true;
    });
  });
  afterEach(() => jest.restoreAllMocks());

  test('several bad variables: every one is reported, then exit(1)', () => {
    const env = {
      INTERNAL_TOKEN_SECRET: 'short',
      MONGO_URL: 'http://127.0.0.1:27017',
      LOG_LEVEL: 'loud',
      SHUTDOWN_TIMEOUT_MS: '-5',
      PII_KEY: 'c2hvcnQ=',
      // NATS_URL missing
    };
    let exited: unknown;
    try {
      loadConfig(schema, env, exit);
    } catch (err) {
      exited = err;
    }
    expect(exited).toBeInstanceOf(Exited);
    expect((exited as Exited).code).toBe(1);
    const out = written.join('');
    expect(out).toMatch(/invalid configuration/);
    for (const name of ['INTERNAL_TOKEN_SECRET', 'MONGO_URL', 'LOG_LEVEL', 'SHUTDOWN_TIMEOUT_MS', 'PII_KEY', 'NATS_URL']) {
      expect(out).toMatch(new RegExp(`^  ${name}: .+$`, 'm'));
    }
    expect(out).not.toMatch(/HOST|NODE_ENV/);
    expect(out).not.toContain('short'); // values (secrets) are not echoed
  });

  test('a good environment parses with defaults and coercion, without exiting', () => {
    const cfg = loadConfig(schema, { ...good, SHUTDOWN_TIMEOUT_MS: '2500' }, exit);
    expect(cfg).toMatchObject({ ...good, NODE_ENV: 'development', LOG_LEVEL: 'info', HOST: '127.0.0.1', SHUTDOWN_TIMEOUT_MS: 2500 });
    expect(written).toEqual([]);
  });
});

describe('error formatter', () => {
  function capturingLogger() {
    const errors: unknown[][] = [];
    const logger = { error: (...args: unknown[]) => errors.push(args) } as unknown as Logger;
    return { logger, errors };
  }

  test('a known code keeps its message and extensions, without stacktrace', () => {
    const { logger, errors } = capturingLogger();
    const format = createErrorFormatter(logger);
    const formatted: GraphQLFormattedError = {
      message: 'Order not found',
      path: ['order'],
      locations: [{ line: 1, column: 3 }],
      extensions: {
        code: 'NOT_FOUND',
        stacktrace: ['Error: Order not found', '    at x.ts:1'],
        exception: { stacktrace: [] },
        field: 'id',
      },
    };
    expect(format(formatted, new AppError('NOT_FOUND', 'Order not found'))).toEqual({
      message: 'Order not found',
      path: ['order'],
      locations: [{ line: 1, column: 3 }],
      extensions: { code: 'NOT_FOUND', field: 'id' },
    });
    expect(errors).toEqual([]);
  });

  test('an unknown error becomes INTERNAL_SERVER_ERROR "Internal server error" and is logged', () => {
    const { logger, errors } = capturingLogger();
    const format = createErrorFormatter(logger);
    const original = new Error('E11000 at 10.0.0.7: secret detail');
    for (const extensions of [undefined, { code: 'SOMETHING_ELSE', stacktrace: ['x'] }]) {
      const out = format({ message: original.message, path: ['placeOrder'], extensions }, original);
      expect(out).toEqual({ message: 'Internal server error', path: ['placeOrder'], extensions: { code: 'INTERNAL_SERVER_ERROR' } });
    }
    expect(errors).toHaveLength(2);
    expect((errors[0]![0] as { err: unknown }).err).toBe(original);
  });

  test('through Apollo Server: AppError codes reach the client with their message and no stacktrace', async () => {
    const { logger } = capturingLogger();
    const server = new ApolloServer({
      typeDefs: 'type Query { missing: String, invalid: String, leaky: String }',
      resolvers: {
        Query: {
          missing: () => {
            throw new AppError('NOT_FOUND', 'Order not found');
          },
          invalid: () => {
            throw badInput('quantity must be positive', 'quantity');
          },
          leaky: () => {
            throw new Error('connect ECONNREFUSED mongodb://admin:hunter2@10.0.0.7');
          },
        },
      },
      includeStacktraceInErrorResponses: true,
      formatError: createErrorFormatter(logger),
    });
    await server.start();
    try {
      const res = await server.executeOperation({ query: '{ missing invalid leaky }' });
      expect(res.body.kind).toBe('single');
      const errors = res.body.kind === 'single' ? res.body.singleResult.errors : undefined;
      const byPath = Object.fromEntries((errors ?? []).map((e) => [String(e.path?.[0]), e]));
      expect(byPath.missing).toMatchObject({ message: 'Order not found', extensions: { code: 'NOT_FOUND' } });
      expect(byPath.invalid).toMatchObject({
        message: 'quantity must be positive',
        extensions: { code: 'BAD_USER_INPUT', field: 'quantity' },
      });
      // A plain Error gets INTERNAL_SERVER_ERROR from Apollo with its own message; that message must not leak.
      expect(byPath.leaky).toMatchObject({ message: 'Internal server error', extensions: { code: 'INTERNAL_SERVER_ERROR' } });
      expect(JSON.stringify(errors)).not.toContain('hunter2');
      for (const e of errors ?? []) expect(e.extensions).not.toHaveProperty('stacktrace');
    } finally {
      await server.stop();
    }
  });

  test('AppError is a GraphQLError carrying its code', () => {
    const err = new AppError('CONFLICT', 'Already paid', { orderId: 'o-1' });
    expect(err).toBeInstanceOf(GraphQLError);
    expect(err.extensions).toEqual({ orderId: 'o-1', code: 'CONFLICT' });
  });
});

describe('shutdown', () => {
  let before: { SIGTERM: NodeJS.SignalsListener[]; SIGINT: NodeJS.SignalsListener[] };
  beforeEach(() => {
    before = { SIGTERM: process.listeners('SIGTERM'), SIGINT: process.listeners('SIGINT') };
  });
  afterEach(() => {
    // Remove only the listeners this test's onShutdown added.
    for (const sig of ['SIGTERM', 'SIGINT'] as const) {
      for (const l of process.listeners(sig)) if (!before[sig].includes(l)) process.removeListener(sig, l);
    }
  });

  test('runs the steps once, in order, and a failing step does not stop the later ones', async () => {
    const warnings: unknown[] = [];
    const logger = { info: () => undefined, warn: (o: unknown) => warnings.push(o), error: () => undefined } as unknown as Logger;
    const ran: string[] = [];
    const trigger = onShutdown(
      logger,
      [
        { name: 'http', run: async () => ran.push('http') },
        {
          name: 'nats',
          run: async () => {
            ran.push('nats');
            throw new Error('drain failed');
          },
        },
        { name: 'mongo', run: async () => ran.push('mongo') },
      ],
      5_000,
    );
    expect(process.listeners('SIGTERM').length).toBe(before.SIGTERM.length + 1);
    await Promise.all([trigger('test'), trigger('again')]);
    await trigger('later');
    expect(ran).toEqual(['http', 'nats', 'mongo']);
    expect(warnings).toEqual([expect.objectContaining({ step: 'nats' })]);
  });
});
