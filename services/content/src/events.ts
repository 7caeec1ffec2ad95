import type { Bus } from '@flywheel/service-kit';

/**
 * Content neither consumes nor publishes events yet. The activity center's live-room teasers
 * (`live.room.scheduled`) will be consumed here once that page exists.
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
