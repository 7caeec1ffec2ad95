import { Schema, Types, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

export type LiveRoomStatus = 'SCHEDULED' | 'LIVE' | 'ENDED' | 'REPLAY';

export interface LiveRoomDoc {
  _id: Types.ObjectId;
  title: string;
  description: string;
  hostName: string;
  status: LiveRoomStatus;
  scheduledAt: Date;
  /** Catalog product ids as given; catalog resolves them, live never reads catalog data. */
  productIds: string[];
  createdAt: Date;
  /** The scheduling event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
}

export function createModels(db: Connection) {
  const roomSchema = new Schema<LiveRoomDoc>(
    {
      title: { type: String, required: true },
      description: { type: String, default: '' },
      hostName: { type: String, required: true },
      status: { type: String, required: true, default: 'SCHEDULED' },
      scheduledAt: { type: Date, required: true },
      productIds: { type: [String], default: [] },
      createdAt: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  roomSchema.index({ status: 1 });

  return {
    LiveRoom: db.model<LiveRoomDoc>('LiveRoom', roomSchema, 'live_rooms'),
  };
}
export type Models = ReturnType<typeof createModels>;
