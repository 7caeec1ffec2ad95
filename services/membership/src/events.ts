import type { Bus } from '@flywheel/service-kit';

/**
 * Membership consumes order events from the shop issue onwards (points, growth, RFM). It
 * publishes `membership.member.registered` through the outbox on the Member entry itself.
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
