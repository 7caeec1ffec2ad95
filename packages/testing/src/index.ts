import { randomBytes } from 'node:crypto';
import { signInternalToken, type Viewer } from '@flywheel/service-kit';
import type { Connection } from 'mongoose';

import { startNats, type InfraProcess } from './infra';
export * from './infra';
export * from './stack';

/** Shared secret the tests sign internal tokens with (never used outside tests). */
export const TEST_INTERNAL_SECRET = 'test-internal-token-secret-0123456789abcdef';

/** A database name no other test file uses. */
export function uniqueDbName(prefix: string): string {
  return `t_${prefix}_${randomBytes(4).toString('hex')}`;
}

export function mongoUrl(): string {
  const url = process.env.MONGO_URL;
  if (!url) throw new Error('MONGO_URL is not set: run tests through jest (global setup starts FerretDB)');
  return url;
}
export function natsUrl(): string {
  const url = process.env.NATS_URL;
  if (!url) throw new Error('NATS_URL is not set: run tests through jest (global setup starts NATS)');
  return url;
}

export interface GqlResult<T = Record<string, unknown>> {
  status: number;
  data?: T | null;
  errors?: { message: string; path?: (string | number)[]; extensions?: { code?: string; [k: string]: unknown } }[];
}

/** POSTs a GraphQL operation as a client would. */
export async function gql<T = Record<string, any>>( // eslint-disable-line @typescript-eslint/no-explicit-any
  url: string,
  query: string,
  variables: Record<string, unknown> = {},
  headers: Record<string, string> = {},
): Promise<GqlResult<T>> {
  const res = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: JSON.stringify({ query, variables }),
  });
  const text = await res.text();
  let body: GqlResult<T>;
  try {
    body = JSON.parse(text) as GqlResult<T>;
  } catch {
    throw new Error(`non-JSON response ${res.status}: ${text.slice(0, 200)}`);
  }
  return { ...body, status: res.status };
}

/** Calls a subgraph as the gateway would, with a valid internal token. */
export function asGateway(subgraph: string, viewer: Viewer | null, secret = TEST_INTERNAL_SECRET): Record<string, string> {
  return { 'flywheel-internal-token': signInternalToken(secret, subgraph, viewer) };
}

export const customer = (id: string): Viewer => ({ id, roles: ['CUSTOMER'], scopes: [] });
export const staff = (id = 'staff-1'): Viewer => ({ id, roles: ['STAFF'], scopes: [] });

/** Polls `fn` until it returns a truthy value (events are asynchronous). */
export async function eventually<T>(fn: () => Promise<T | null | undefined | false>, timeoutMs = 10_000, everyMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`condition not met within ${timeoutMs} ms${last ? `: ${String(last)}` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** Keys and secrets for tests only (32 bytes of a fixed pattern, base64). */
export const TEST_AUTH_SECRET = 'test-auth-token-secret-0123456789abcdef0123';
export const TEST_PII_KEY = Buffer.alloc(32, 7).toString('base64');
export const TEST_LOOKUP_KEY = Buffer.alloc(32, 9).toString('base64');
/**
 * The test payment provider's signing secret: random per test run, so no secret that signs
 * payments is written in the repository (tests sign through the provider, never with the value).
 */
export const TEST_PAYMENT_SECRET = randomBytes(32).toString('base64url');

/**
 * Environment for one service under test: the shared FerretDB with a database of its own, the
 * given NATS, an ephemeral port, quiet logs.
 */
export function serviceEnv(name: string, nats: string, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  return {
    NODE_ENV: 'test',
    LOG_LEVEL: process.env.TEST_LOG_LEVEL ?? 'silent',
    PORT: '0',
    HOST: '127.0.0.1',
    MONGO_URL: mongoUrl(),
    MONGO_DB: uniqueDbName(name),
    ...(process.env.FERRETDB_PG_URL ? { FERRETDB_PG_URL: process.env.FERRETDB_PG_URL } : {}),
    NATS_URL: nats,
    INTERNAL_TOKEN_SECRET: TEST_INTERNAL_SECRET,
    AUTH_TOKEN_SECRET: TEST_AUTH_SECRET,
    PII_ENCRYPTION_KEY: TEST_PII_KEY,
    PII_LOOKUP_KEY: TEST_LOOKUP_KEY,
    DEV_LOGIN_CODES: 'true',
    ...(name === 'orders' ? { PAYMENT_TEST_SECRET: TEST_PAYMENT_SECRET } : {}),
    ...extra,
  };
}

/** A NATS server of this test file's own (streams and durable consumers are not shared). */
export async function privateNats(): Promise<InfraProcess> {
  const base = process.env.FLYWHEEL_TEST_DIR ?? require('node:os').tmpdir();
  return startNats(require('node:path').join(base, `nats-${randomBytes(4).toString('hex')}`));
}

/**
 * Records the ids a collection is read by on a connection (`find`/`findOne` on `_id`, one id or
 * an `$in` list) until `stop()`, which returns them sorted: proves a loader batched (each id read
 * once) whether the kit sent point reads (FerretDB) or one `$in` (MongoDB).
 */
export function recordIdReads(db: Connection, collection: string): { stop(): string[] } {
  const ids: string[] = [];
  db.set('debug', (coll: string, method: string, query: { _id?: unknown } | undefined) => {
    if (coll !== collection || (method !== 'find' && method !== 'findOne') || !query?._id) return;
    const id = query._id as { $in?: unknown[] };
    ids.push(...(id.$in && Array.isArray(id.$in) ? id.$in : [id]).map(String));
  });
  return {
    stop() {
      db.set('debug', false);
      return ids.sort();
    },
  };
}

let memberPhoneSeq = Math.floor(Math.random() * 1e5) * 1000;
/**
 * A new member, registered on a membership subgraph through the real login flow (development
 * codes, as the gateway would call it): the member's id and access token. Phones are unique per
 * test process.
 */
export async function registerMember(membershipUrl: string): Promise<{ id: string; accessToken: string }> {
  const phone = `136${String(++memberPhoneSeq % 1e8).padStart(8, '0')}`;
  const headers = asGateway('membership', null);
  const req = await gql(
    membershipUrl,
    'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }',
    { p: phone },
    headers,
  );
  const code = req.data?.requestLoginCode?.devCode;
  if (!code) throw new Error(`requestLoginCode: ${JSON.stringify(req.errors)}`);
  const res = await gql(
    membershipUrl,
    'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken session { member { id } } } }',
    { p: phone, c: code },
    headers,
  );
  const login = res.data?.login;
  if (!login) throw new Error(`login: ${JSON.stringify(res.errors)}`);
  return { id: login.session.member.id as string, accessToken: login.accessToken as string };
}
