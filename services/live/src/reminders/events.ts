import type { Bus } from '@flywheel/service-kit';
import type { DeliveryChannel } from './channel';

/**
 * Delivers `live.notification.reminder` through the delivery channel. The subject is the
 * notifications contract: any other channel (another service, a WeChat or SMS sender) can consume
 * it with a durable consumer of its own. Delivery is at least once; the channel makes a repeat a
 * no-op by the event id.
 */
export async function registerReminderDelivery(deps: { bus: Bus; channel: DeliveryChannel }): Promise<void> {
  await deps.bus.consume('live.notification.reminder', (env) => deps.channel.deliver({ ...env.data, id: env.id }));
}
