import { mergeResolvers as merge, scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { CatalogModule } from './modules';

/** The scalars, with each module's resolvers merged over them, type by type. */
export const mergeResolvers = (modules: CatalogModule[]): Resolvers =>
  merge<Resolvers>([scalarResolvers, ...modules.map((m) => m.resolvers ?? {})]);
