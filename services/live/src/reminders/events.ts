import type { Bus } from '@flywheel/service-kit';
import type { DeliveryChannel } from './channel';

/**
 * Delivers `notifications.live.reminder` through the delivery channel. Reminders are in the
 * shared NOTIFICATIONS stream: any other channel (another service, a WeChat or SMS sender) can
 * consume them with a durable consumer of its own, this subject or every notification
 * (`notifications.>`). Delivery is at least once; the channel makes a repeat a no-op by the event id.
 */
export async function registerReminderDelivery(deps: { bus: Bus; channel: DeliveryChannel }): Promise<void> {
  await deps.bus.consume('notifications.live.reminder', (env) => deps.channel.deliver({ ...env.data, id: env.id }));
}
