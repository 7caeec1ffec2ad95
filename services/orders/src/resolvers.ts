import { mergeResolvers as merge, scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';

/** The scalars, with each module's resolvers merged over them type by type. */
export const mergeResolvers = (parts: readonly Resolvers[]): Resolvers => merge<Resolvers>([scalarResolvers, ...parts]);
