import type { Bus } from '@flywheel/service-kit';

/**
 * Live consumes order events once rooms attribute GMV. It publishes `live.room.scheduled` on the
 * LiveRoom entry itself, `live.room.started` / `ended` on the room's transition entries, and
 * `live.notification.reminder` on each reminder notification (reminders/ delivers them).
 */
export async function registerConsumers(_deps: { bus: Bus }): Promise<void> {}
