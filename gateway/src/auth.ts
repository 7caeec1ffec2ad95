import type { IncomingMessage } from 'node:http';
import { AppError, ROLES as KNOWN_ROLES, TokenError, verifyJwt, type Role, type Viewer } from '@flywheel/service-kit';

// Must match membership's issuer/audience (the gateway never imports a service's package).
const ISSUER = 'flywheel-membership';
const AUDIENCE = 'flywheel-gateway';
const ROLES = new Set<Role>(KNOWN_ROLES);

export interface GatewayContext {
  viewer: Viewer | null;
  /** Whom per-identity limits count against: `id:<member or staff id>`, else `ip:<client address>`. */
  identity: string;
}

/**
 * The caller's identity from `Authorization: Bearer <access token>`; null for an anonymous
 * visitor. Any other client-sent header is ignored: the gateway builds subgraph requests itself.
 */
export function authenticate(req: IncomingMessage, secret: string): Viewer | null {
  const header = req.headers.authorization;
  if (!header) return null;
  const match = /^Bearer\s+(\S+)$/i.exec(header);
  if (!match?.[1]) throw new AppError('UNAUTHENTICATED', 'Authorization must be "Bearer <access token>"', { http: { status: 401 } });
  try {
    const claims = verifyJwt(match[1], secret, { iss: ISSUER, aud: AUDIENCE });
    if (claims.typ !== 'access' || !claims.sub) throw new TokenError('malformed');
    const roles = (Array.isArray(claims.roles) ? claims.roles : []).filter((r): r is Role => ROLES.has(r as Role));
    return { id: claims.sub, roles, scopes: [] };
  } catch (err) {
    const reason = err instanceof TokenError ? err.reason : 'malformed';
    const message = reason === 'expired' ? 'Access token expired; refresh the session' : 'Invalid access token';
    throw new AppError('UNAUTHENTICATED', message, { http: { status: 401 }, reason });
  }
}
