import { Schema, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

/** The reminder stages (预约提醒): an hour, 30 minutes and 5 minutes before the scheduled start, and the start itself. */
export type ReminderStage = 'H1' | 'M30' | 'M5' | 'START';

/** A member's subscription to a room's reminders; `_id` = `${roomId}:${memberId}` (subscribing twice is one). */
export interface ReminderSubscriptionDoc {
  _id: string;
  roomId: string;
  memberId: string;
  at: Date;
}

/**
 * Claims of the reminder sweep: `${roomId}:${stage}` (the stage is under way — an earlier stage
 * never goes out after it) and `${roomId}:${stage}:done` (every subscriber has their notification).
 */
export interface ReminderClaimDoc {
  _id: string;
  at: Date;
}

/** One member's notification of one stage of one room, `_id` = `${roomId}:${stage}:${memberId}`: the insert is the claim and carries the event. */
export interface ReminderNotificationDoc {
  _id: string;
  roomId: string;
  memberId: string;
  stage: ReminderStage;
  at: Date;
  outbox?: OutboxRecord;
}

export function createReminderModels(db: Connection) {
  const subscriptionSchema = new Schema<ReminderSubscriptionDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      memberId: { type: String, required: true },
      at: { type: Date, required: true },
    },
    { versionKey: false },
  );
  subscriptionSchema.index({ roomId: 1 });
  const claimSchema = new Schema<ReminderClaimDoc>({ _id: String, at: { type: Date, required: true } }, { versionKey: false });
  const notificationSchema = new Schema<ReminderNotificationDoc>(
    {
      _id: String,
      roomId: { type: String, required: true },
      memberId: { type: String, required: true },
      stage: { type: String, required: true },
      at: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  return {
    ReminderSubscription: db.model<ReminderSubscriptionDoc>('ReminderSubscription', subscriptionSchema, 'live_reminder_subscriptions'),
    ReminderClaim: db.model<ReminderClaimDoc>('ReminderClaim', claimSchema, 'live_reminder_claims'),
    ReminderNotification: db.model<ReminderNotificationDoc>('ReminderNotification', notificationSchema, 'live_reminder_notifications'),
  };
}
export type ReminderModels = ReturnType<typeof createReminderModels>;
