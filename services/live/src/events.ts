import { consumeForModules, type Bus } from '@flywheel/service-kit';
import type { LiveModule } from './modules';

/**
 * One durable consumer per subject, whatever the number of modules that react to it: the handler
 * runs every module's handler, and a failure redelivers the event to all of them (each is a no-op
 * on a repeat by its own claims). Live consumes `orders.order.paid` / `refunded` (sales/: GMV per
 * room). It publishes `live.room.scheduled` on the LiveRoom entry itself, `live.room.started` /
 * `ended` on the room's transition entries, and `notifications.live.reminder` (NOTIFICATIONS stream) on
 * each reminder notification (reminders/ delivers them).
 */
export const registerConsumers = ({ bus, modules }: { bus: Bus; modules: LiveModule[] }): Promise<void> =>
  consumeForModules(
    bus,
    modules.map((m) => m.on),
  );
