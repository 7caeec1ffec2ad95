import type { Model } from 'mongoose';
import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Bus, ConsumeOptions } from './bus';
import { claimOnce } from './claims';
import type { Logger } from './logger';

// What a service cut into modules (docs/module-shape.md) does with them in its composition root:
// one resolver map, and one durable consumer per subject running every module's handler.

/** What modules do with events: a handler per subject, each a no-op on a repeated event by its own claims. */
export type EventHandlers = { [S in EventSubject]?: (env: EventEnvelope<S>) => Promise<void> };

/**
 * Resolver maps merged type by type, later parts over earlier ones (a core's, then each module's).
 * Scalars are GraphQLScalarType instances, not field maps: the last one stands.
 */
export function mergeResolvers<R>(parts: readonly unknown[]): R {
  const merged: Record<string, Record<string, unknown>> = {};
  for (const part of parts as Record<string, Record<string, unknown>>[]) {
    for (const [type, fields] of Object.entries(part)) {
      merged[type] = fields && Object.getPrototypeOf(fields) === Object.prototype ? { ...merged[type], ...fields } : fields;
    }
  }
  return merged as R;
}

/**
 * One durable consumer per subject, whatever the number of modules that react to it, running each
 * module's handler in turn; a failure redelivers the event to all of them (each is a no-op on a
 * repeat by its own claims).
 */
export async function consumeForModules(bus: Bus, handlers: readonly (EventHandlers | undefined)[], opts?: ConsumeOptions): Promise<void> {
  const subjects = [...new Set(handlers.flatMap((h) => Object.keys(h ?? {}) as EventSubject[]))].sort();
  for (const subject of subjects) {
    const list = handlers.flatMap((h) => (h?.[subject] ? [h[subject] as (env: EventEnvelope) => Promise<void>] : []));
    await bus.consume(
      subject,
      async (env) => {
        for (const handle of list) await handle(env as EventEnvelope);
      },
      opts,
    );
  }
}

/**
 * The periodic sweep of a service's modules. Every replica runs the timer; one takes each period's
 * pass by claiming `sweep:<period>` (a unique insert), so scaling out does not multiply the sweeps
 * (a pass is idempotent either way). One pass at a time: the next is scheduled when one ends.
 */
export function claimedSweeper(opts: {
  claims: Model<{ _id: string; at: Date }>;
  periodMs: number;
  now: () => Date;
  run: (at: Date) => Promise<unknown>;
  logger: Logger;
}) {
  let timer: NodeJS.Timeout | undefined;
  let pass: Promise<unknown> = Promise.resolve();
  const tick = () => {
    const at = opts.now();
    pass = claimOnce(opts.claims, { _id: `sweep:${Math.floor(at.getTime() / opts.periodMs)}`, at })
      .then((mine) => (mine ? opts.run(at) : undefined))
      .catch((err: unknown) => opts.logger.warn({ err }, 'sweep failed'));
    void pass.finally(() => {
      if (timer) timer = setTimeout(tick, opts.periodMs).unref();
    });
  };
  return {
    start(): void {
      timer = setTimeout(tick, opts.periodMs).unref();
    },
    /** Stops the timer and waits for a pass under way. */
    async stop(): Promise<void> {
      clearTimeout(timer);
      timer = undefined;
      await pass;
    },
  };
}
