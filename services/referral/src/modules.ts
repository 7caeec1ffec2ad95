import type { Connection, Model } from 'mongoose';
import type { RequestData, ReplyData } from '@flywheel/events';
import type { Bus, EventHandlers, Logger } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';
import type { ReferralService } from './service';

/** What every referral module (`src/<module>/`) is given. */
export interface ModuleDeps {
  db: Connection;
  bus: Bus;
  logger: Logger;
  /** The core: invite codes and inviter bindings. */
  invites: ReferralService;
  /** Asks the outbox relay to publish now. */
  kick: () => void;
  now: () => Date;
}

/**
 * A module that prices checkout lines under its offers (拼团 GROUP_BUY, 砍价 BARGAIN): the core
 * answers `referral.price.quote|lock` by the offer's kind and asks every pricing module to release.
 */
export interface ReferralPricing {
  kind: 'GROUP_BUY' | 'BARGAIN';
  quote(req: RequestData<'referral.price.quote'>): Promise<ReplyData<'referral.price.quote'>>;
  /** Takes what the adjustments use for this checkout; idempotent; CONFLICT when taken meanwhile. */
  lock(req: RequestData<'referral.price.lock'>): Promise<void>;
  /** Gives back what this module holds for the checkout; idempotent; false when it held nothing. */
  release(checkoutId: string): Promise<boolean>;
}

/**
 * What every referral module returns to the composition root: its resolvers (merged over the
 * core's, type by type), the collections whose entries carry an `outbox` event, the events it
 * consumes, its bootstrap, periodic work and what to do before the service stops.
 */
export interface ReferralModule {
  name: string;
  resolvers: Resolvers;
  outboxSources?: Model<any>[]; // eslint-disable-line @typescript-eslint/no-explicit-any
  /** Handlers per event subject; each a no-op on a repeated event by its own claims. */
  on?: EventHandlers;
  /** Runs once indexes exist. */
  init?: () => Promise<void>;
  /** Checkout prices under this module's offers (`referral.price.*`). */
  pricing?: ReferralPricing;
  /** Periodic work at `at` (the sweeper's timer, one replica per period; tests call it with a moved clock). */
  sweep?: (at: Date) => Promise<Record<string, number>>;
  /** Before the service stops. */
  stop?: () => Promise<void>;
}
