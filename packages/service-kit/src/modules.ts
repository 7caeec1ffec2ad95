import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Bus, ConsumeOptions } from './bus';

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
