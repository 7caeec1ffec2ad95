import { Schema, type Connection, type Model } from 'mongoose';
import { isDuplicateKey } from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';

/** A notification as a channel delivers it: the `notifications.live.reminder` payload and its event id. */
export type ReminderNotification = EventData<'notifications.live.reminder'> & { id: string };

/**
 * Where reminders reach members (WeChat subscription message, SMS, app push). A channel is given
 * each notification at least once and must make a repeat a no-op (real channels take a client
 * message id; `id` is the event id).
 */
export interface DeliveryChannel {
  name: string;
  deliver(n: ReminderNotification): Promise<void>;
}

export interface TestChannel extends DeliveryChannel {
  /** What the channel sent, oldest first (optionally one room's). */
  sent(filter?: { roomId?: string; memberId?: string }): Promise<ReminderNotification[]>;
}

interface SentRecord extends ReminderNotification {
  _id: string;
  deliveredAt: Date;
}

/**
 * A channel for development and tests that behaves like a real one: it keeps its own record of
 * every message it sent (its side of the world, in its own collection), sends a message id at
 * most once however often it is handed it, and can be asked what it sent. Never a production channel.
 */
export function createTestChannel(db: Connection): TestChannel {
  const schema = new Schema<SentRecord>(
    {
      _id: String,
      id: String,
      memberId: String,
      roomId: String,
      stage: String,
      title: String,
      startsAt: String,
      sentAt: String,
      deliveredAt: Date,
    },
    { versionKey: false },
  );
  const Sent =
    (db.models.TestChannelSent as Model<SentRecord> | undefined) ?? db.model<SentRecord>('TestChannelSent', schema, 'testchannel_sent');
  return {
    name: 'test',
    async deliver(n) {
      try {
        await Sent.create({ ...n, _id: n.id, deliveredAt: new Date() });
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
      }
    },
    async sent(filter = {}) {
      const docs = await Sent.find(filter).sort({ deliveredAt: 1, _id: 1 }).lean<SentRecord[]>();
      return docs.map(({ _id, deliveredAt, ...n }) => n); // eslint-disable-line @typescript-eslint/no-unused-vars
    },
  };
}
