import type { Role, Viewer } from './tokens';
import { forbidden, unauthenticated } from './errors';

/** Authorization is enforced in every subgraph; the gateway does not enforce directives. */
export function requireViewer(viewer: Viewer | null): Viewer {
  if (!viewer) throw unauthenticated();
  return viewer;
}

/** The viewer holds the role (or one of the roles), else UNAUTHENTICATED (no viewer) or FORBIDDEN. */
export function requireRole(viewer: Viewer | null, role: Role | readonly Role[]): Viewer {
  const v = requireViewer(viewer);
  const allowed: readonly Role[] = typeof role === 'string' ? [role] : role;
  if (!allowed.some((r) => v.roles.includes(r))) throw forbidden(`${allowed.join(' or ')} role required`);
  return v;
}

export const isStaff = (viewer: Viewer | null) => Boolean(viewer?.roles.includes('STAFF'));

/** A host (主播) account: operates the live rooms assigned to it and nothing else (not staff). */
export const isHost = (viewer: Viewer | null) => Boolean(viewer?.roles.includes('HOST'));

/** The viewer is this member, signed in as a customer. */
export const isSelf = (viewer: Viewer | null, memberId: string) => Boolean(viewer?.roles.includes('CUSTOMER') && viewer.id === memberId);

/** A member's own data is theirs and staff's to see; nobody else's. */
export const isSelfOrStaff = (viewer: Viewer | null, memberId: string) => isStaff(viewer) || isSelf(viewer, memberId);

/** The member themself or staff, else UNAUTHENTICATED (no viewer) or FORBIDDEN. */
export function requireSelfOrStaff(viewer: Viewer | null, memberId: string): Viewer {
  const v = requireViewer(viewer);
  if (!isSelfOrStaff(v, memberId)) throw forbidden('Only the member or staff');
  return v;
}
