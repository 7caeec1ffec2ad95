import { scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { CatalogModule } from './modules';

/** The scalars, with each module's resolvers merged over them, type by type. */
export function mergeResolvers(modules: CatalogModule[]): Resolvers {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const part of [scalarResolvers, ...modules.map((m) => m.resolvers ?? {})] as Record<string, Record<string, unknown>>[]) {
    for (const [type, fields] of Object.entries(part)) {
      // Scalars are GraphQLScalarType instances, not field maps: the last one stands.
      merged[type] = fields && Object.getPrototypeOf(fields) === Object.prototype ? { ...merged[type], ...fields } : fields;
    }
  }
  return merged as Resolvers;
}
