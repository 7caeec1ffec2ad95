import { consumeForModules, type Bus, type EventHandlers } from '@flywheel/service-kit';

/** What each module does with an event (the analytics module: `orders.order.paid` / `refunded`). */
export type Handlers = EventHandlers;

/**
 * One durable consumer per subject, running every module's handler for it; each handler makes a
 * repeat a no-op by its own claims. Content consumes `orders.order.paid` and
 * `orders.order.refunded` (analytics: content → order attribution and all GMV) and
 * `live.room.scheduled` / `started` / `ended` (merchandising: the upcoming-live teasers) and
 * `membership.tier.changed` / `segment.changed` (audience: whom targeted banners are shown to).
 */
export const registerConsumers = ({ bus, modules }: { bus: Bus; modules: Handlers[] }): Promise<void> => consumeForModules(bus, modules);
