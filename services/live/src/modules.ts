import type { Model } from 'mongoose';
import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Resolvers } from './__generated__/resolvers';

/**
 * What every live module (`src/<module>/`: series, reminders, sales, feed, comments, likes, pins, …) returns to the composition root:
 * its resolvers (merged over the core's, type by type), the collections whose entries carry an
 * `outbox` event, the events it consumes, and its periodic work, which the sweeper timer and tests run with a clock.
 */
export interface LiveModule {
  name: string;
  resolvers: Resolvers;
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Handlers per event subject; each a no-op on a repeated event by its own claims. */
  on?: { [S in EventSubject]?: (env: EventEnvelope<S>) => Promise<void> };
  /** Consumers and bootstrap; runs once indexes exist. */
  init?: () => Promise<void>;
  sweep?: (at: Date) => Promise<Record<string, number>>;
  /** Before the service stops (after the sweeper): flush what is held in memory. */
  stop?: () => Promise<void>;
}
