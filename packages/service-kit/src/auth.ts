import type { Role, Viewer } from './tokens';
import { forbidden, unauthenticated } from './errors';

/** Authorization is enforced in every subgraph; the gateway does not enforce directives. */
export function requireViewer(viewer: Viewer | null): Viewer {
  if (!viewer) throw unauthenticated();
  return viewer;
}

export function requireRole(viewer: Viewer | null, role: Role): Viewer {
  const v = requireViewer(viewer);
  if (!v.roles.includes(role)) throw forbidden(`${role} role required`);
  return v;
}

export const isStaff = (viewer: Viewer | null) => Boolean(viewer?.roles.includes('STAFF'));
