import { createHmac, timingSafeEqual } from 'node:crypto';

/** HS256 JSON Web Tokens with node:crypto only; small, auditable, CommonJS-safe. */
export interface JwtClaims {
  iss: string;
  aud: string;
  sub?: string;
  iat: number;
  exp: number;
  [claim: string]: unknown;
}

const b64url = (buf: Buffer | string) => Buffer.from(buf).toString('base64url');
const HEADER = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));

export function signJwt(claims: Omit<JwtClaims, 'iat' | 'exp'>, secret: string, ttlSeconds: number, now = Date.now()): string {
  const iat = Math.floor(now / 1000);
  const body = b64url(JSON.stringify({ ...claims, iat, exp: iat + ttlSeconds }));
  const sig = createHmac('sha256', secret).update(`${HEADER}.${body}`).digest('base64url');
  return `${HEADER}.${body}.${sig}`;
}

export class TokenError extends Error {
  constructor(public readonly reason: 'malformed' | 'signature' | 'expired' | 'audience' | 'issuer') {
    super(`token ${reason}`);
  }
}

/** Verifies signature, expiry, issuer and audience; throws TokenError saying which failed. */
export function verifyJwt(token: string, secret: string, expect: { iss: string; aud: string }, now = Date.now()): JwtClaims {
  const parts = token.split('.');
  if (parts.length !== 3 || parts[0] !== HEADER) throw new TokenError('malformed');
  const [, body, sig] = parts as [string, string, string];
  const expected = createHmac('sha256', secret).update(`${HEADER}.${body}`).digest();
  const given = Buffer.from(sig, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new TokenError('signature');
  let claims: JwtClaims;
  try {
    claims = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as JwtClaims;
  } catch {
    throw new TokenError('malformed');
  }
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= now) throw new TokenError('expired');
  if (claims.iss !== expect.iss) throw new TokenError('issuer');
  if (claims.aud !== expect.aud) throw new TokenError('audience');
  return claims;
}

// ---------------------------------------------------------------------------------------------
// The gateway → subgraph internal token. Every subgraph call carries one; anonymous visitors get
// one with no viewer. Audience is the subgraph's name so a token for one service is useless at another.

/**
 * CUSTOMER: a signed-in member. STAFF: a brand operator. HOST (主播): a staff account that
 * operates the live rooms assigned to it, nothing else. PARTNER: an integration partner.
 */
export type Role = 'CUSTOMER' | 'STAFF' | 'HOST' | 'PARTNER';
/** Every role a token may carry; anything else in a token's `roles` is dropped. */
export const ROLES: readonly Role[] = Object.freeze(['CUSTOMER', 'STAFF', 'HOST', 'PARTNER']);
export interface Viewer {
  id: string;
  roles: Role[];
  scopes: string[];
}

export const INTERNAL_TOKEN_HEADER = 'flywheel-internal-token';
const INTERNAL_ISSUER = 'flywheel-gateway';
export const INTERNAL_TOKEN_TTL_SECONDS = 60;

export function signInternalToken(secret: string, audience: string, viewer: Viewer | null, now = Date.now()): string {
  return signJwt(
    { iss: INTERNAL_ISSUER, aud: audience, ...(viewer ? { sub: viewer.id, roles: viewer.roles, scopes: viewer.scopes } : {}) },
    secret,
    INTERNAL_TOKEN_TTL_SECONDS,
    now,
  );
}

/** Returns the viewer (null for an anonymous visitor); throws TokenError for anything invalid. */
export function verifyInternalToken(token: string, secret: string, audience: string, now = Date.now()): Viewer | null {
  const claims = verifyJwt(token, secret, { iss: INTERNAL_ISSUER, aud: audience }, now);
  if (!claims.sub) return null;
  const roles = Array.isArray(claims.roles) ? (claims.roles.filter((r) => typeof r === 'string') as Role[]) : [];
  const scopes = Array.isArray(claims.scopes) ? (claims.scopes.filter((s) => typeof s === 'string') as string[]) : [];
  return { id: claims.sub, roles, scopes };
}
