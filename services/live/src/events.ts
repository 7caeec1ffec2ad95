import type { Bus } from '@flywheel/service-kit';

/**
 * Live consumes order events once rooms attribute GMV. It publishes `live.room.scheduled`
 * through the outbox on the LiveRoom entry itself.
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
