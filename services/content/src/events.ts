import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Bus } from '@flywheel/service-kit';

/** What each module does with an event (the analytics module: `orders.order.paid` / `refunded`). */
export type Handlers = { [S in EventSubject]?: (env: EventEnvelope<S>) => Promise<void> };

/**
 * One durable consumer per subject, running every module's handler for it; each handler makes a
 * repeat a no-op by its own claims. Content consumes `orders.order.paid` and
 * `orders.order.refunded` (analytics: content → order attribution and all GMV) and
 * `live.room.scheduled` / `started` / `ended` (merchandising: the upcoming-live teasers) and
 * `membership.tier.changed` / `segment.changed` (audience: whom targeted banners are shown to).
 */
export async function registerConsumers({ bus, modules }: { bus: Bus; modules: Handlers[] }): Promise<void> {
  const subjects = [...new Set(modules.flatMap((m) => Object.keys(m) as EventSubject[]))];
  for (const subject of subjects) {
    const handlers = modules.map((m) => m[subject]).filter((h) => h !== undefined) as ((env: EventEnvelope) => Promise<void>)[];
    await bus.consume(subject, async (env) => {
      for (const handle of handlers) await handle(env as EventEnvelope);
    });
  }
}
