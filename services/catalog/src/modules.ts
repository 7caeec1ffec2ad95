import type { Bus, Logger } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { Config } from './config';
import type { Models } from './model';

/**
 * What every catalog module (`src/<module>/`: products, browse, storefront, stock, reservations,
 * flash-sales, sweeper, engagement) is given. A module owns its SDL (`src/<module>/schema.graphql`, extending
 * the core types), its resolvers and its events; main.ts composes them.
 */
export interface ModuleDeps {
  models: Models;
  bus: Bus;
  logger: Logger;
  config: Config;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  now: () => Date;
}

export interface CatalogModule {
  name: string;
  /** Merged over the core resolvers, type by type. */
  resolvers?: Resolvers;
  /** Runs once the indexes exist, before consumers are registered (in module order). */
  init?: () => Promise<unknown>;
  /** Request/reply handlers and consumers. */
  register?: (bus: Bus) => Promise<void> | void;
  /** Runs on shutdown, before NATS drains (in module order). */
  stop?: () => Promise<unknown>;
}
