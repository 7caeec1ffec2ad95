import type { Connection } from 'mongoose';
import type { BaseContext, Bus, Logger } from '@flywheel/service-kit';
import type { Config } from './config';
import type { OrderLoaders } from './order/service';

// What every module of orders is given, and the request context their resolvers share. Each
// module's resolvers are built over its own service (modules.ts); the context only carries the
// viewer and the per-request loaders.

/**
 * What every orders module (`src/<module>/`: order, cart, checkout, payments, fulfilment,
 * aftersales) is given. The order aggregate (`order/`: its ledger, state machine and facts) is
 * the core the others move orders through; each module owns its collections and resolvers.
 */
export interface ModuleDeps {
  db: Connection;
  /** Request/reply to other services (prices and stock from catalog). */
  bus: Pick<Bus, 'request'>;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  config: Config;
  logger?: Pick<Logger, 'warn' | 'error'>;
  now: () => Date;
}

/** A member as orders knows one: by key only (membership owns the rest). */
export interface MemberRef {
  id: string;
}

export interface Context extends BaseContext {
  loaders: OrderLoaders;
}
