import type { Connection, Model } from 'mongoose';
import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { Settings } from './settings';

/**
 * What every membership module (`src/<module>/`: loyalty, coupons, rfm, benefits) is given. A
 * module owns its collections, its SDL (`src/<module>/schema.graphql`, extending the core
 * types) and its resolvers; main.ts merges them and runs one consumer per event subject.
 */
export interface ModuleDeps {
  db: Connection;
  bus: Bus;
  logger: Logger;
  settings: Settings;
  /** Asks the outbox relay to publish now. */
  kick: () => void;
  now: () => Date;
}

export type EventHandlers = { [S in EventSubject]?: (env: EventEnvelope<S>) => Promise<void> };

export interface MembershipModule {
  name: string;
  /** Merged over the core resolvers (a module may replace a core field, e.g. `Member.tier`). */
  resolvers: Resolvers;
  /**
   * Consumed events. One durable consumer per subject calls every module's handler (in module
   * order, or side by side where they touch disjoint state: see events.ts) and redelivers when
   * any throws, so each handler must be idempotent on `env.id` by itself.
   */
  on?: EventHandlers;
  /** Collections whose entries carry an `outbox` event. */
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Request/reply handlers and bootstrap data; runs once indexes exist. */
  init?: () => Promise<void>;
  /** Periodic work (expiry, re-evaluation), run by the sweeper timer and by tests; returns counts. */
  sweep?: (at: Date) => Promise<Record<string, number>>;
}

/**
 * `fn` at most once per `ms`, on the trailing edge: calls within the window share one. For the
 * outbox relay's kick, whose every pass reads the recent entries of every source: a burst of
 * changes (a new member's first orders move tier and segment together) is published by one pass
 * instead of a pass per change.
 */
export function coalesced(fn: () => void, ms: number): () => void {
  let timer: NodeJS.Timeout | undefined;
  return () => {
    timer ??= setTimeout(() => {
      timer = undefined;
      fn();
    }, ms);
  };
}
