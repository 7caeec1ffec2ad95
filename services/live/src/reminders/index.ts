import type { Connection } from 'mongoose';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import type { DeliveryChannel } from './channel';
import { registerReminderDelivery } from './events';
import { createReminderModels } from './model';
import { reminderResolvers } from './resolvers';
import { createReminderService, type ReminderService } from './service';

export function createRemindersModule(deps: {
  db: Connection;
  bus: Bus;
  logger: Logger;
  models: Models;
  rooms: LiveService;
  kick: () => void;
  now: () => Date;
  /** Where reminders are delivered; none: they stay in the NOTIFICATIONS stream for other consumers. */
  channel: DeliveryChannel | null;
}): LiveModule & { reminders: ReminderService } {
  const models = createReminderModels(deps.db);
  const reminders = createReminderService({
    models,
    core: deps.models,
    rooms: deps.rooms,
    kick: deps.kick,
    now: deps.now,
    logger: deps.logger,
  });
  const channel = deps.channel;
  return {
    name: 'reminders',
    reminders,
    resolvers: reminderResolvers,
    outboxSources: [models.ReminderNotification],
    init: channel ? () => registerReminderDelivery({ bus: deps.bus, channel }) : undefined,
    sweep: (at) => reminders.sweep(at),
  };
}
