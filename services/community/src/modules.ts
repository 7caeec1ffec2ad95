import type { Model } from 'mongoose';
import type { EventHandlers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';

/**
 * What every community module (`src/<module>/`) returns to the composition root: its resolvers
 * (merged over the core's, type by type), the collections whose entries carry an `outbox` event,
 * the events it consumes, bootstrap, periodic work (the sweeper timer and tests run it with a
 * clock) and what to do before the service stops.
 */
export interface CommunityModule {
  name: string;
  resolvers: Resolvers;
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Handlers per event subject; each a no-op on a repeated event by its own claims. */
  on?: EventHandlers;
  /** Runs once indexes exist. */
  init?: () => Promise<void>;
  sweep?: (at: Date) => Promise<Record<string, number>>;
  stop?: () => Promise<void>;
}
