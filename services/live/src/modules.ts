import type { Model } from 'mongoose';
import type { Resolvers } from './__generated__/resolvers';

/**
 * What every live module (`src/<module>/`: series, reminders) returns to the composition root:
 * its resolvers (merged over the core's, type by type), the collections whose entries carry an
 * `outbox` event, and its periodic work, which the sweeper timer and tests run with a clock.
 */
export interface LiveModule {
  name: string;
  resolvers: Resolvers;
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Consumers and bootstrap; runs once indexes exist. */
  init?: () => Promise<void>;
  sweep?: (at: Date) => Promise<Record<string, number>>;
}
