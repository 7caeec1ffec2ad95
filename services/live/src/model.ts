import { Schema, Types, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';

export type LiveRoomStatus = 'SCHEDULED' | 'LIVE' | 'ENDED' | 'REPLAY';

/** A moment of a replay worth jumping to: a time offset with a title, optionally a product. */
export interface HighlightDoc {
  offsetSeconds: number;
  title: string;
  productId?: string | null;
}

export interface LiveRoomDoc {
  _id: Types.ObjectId;
  title: string;
  description: string;
  hostName: string;
  /** The host (主播) staff account that operates the room (start, end, pins, offers, lotteries) besides staff; null: staff only. */
  hostAccountId?: string | null;
  /**
   * Projection of the room's transition ledger (`live_room_transitions`), for lists and filters;
   * decisions read the ledger head, never this field.
   */
  status: LiveRoomStatus;
  /** The seq of the transition the projection reflects (0 = none: SCHEDULED). */
  statusSeq?: number;
  scheduledAt: Date;
  startedAt?: Date | null;
  endedAt?: Date | null;
  replayUrl?: string | null;
  highlights?: HighlightDoc[];
  /** The recurring series that created the room, if any (its id is derived from the series and the date). */
  seriesId?: string | null;
  /** Catalog product ids as given; catalog resolves them, live never reads catalog data. */
  productIds: string[];
  createdAt: Date;
  /** The scheduling event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
}

/**
 * One step of a room's lifecycle, appended to the room's ledger (`_id` = `${roomId}:${seq}`): the
 * unique seq decides a race, so two concurrent `startLiveRoom` calls append one LIVE entry. No
 * entry means SCHEDULED. An entry carries its event (started / ended) in `outbox`.
 */
export type RoomTransitionDoc = LedgerEntry & {
  from: LiveRoomStatus;
  at: Date;
  /** Who moved it (the viewer's id: staff, or the room's host). */
  by: string;
  outbox?: OutboxRecord;
} & (
    | { status: 'LIVE' | 'ENDED' }
    | {
        status: 'REPLAY';
        replayUrl: string;
        highlights: HighlightDoc[];
      }
  );

export function createModels(db: Connection) {
  const highlightSchema = new Schema<HighlightDoc>(
    {
      offsetSeconds: { type: Number, required: true },
      title: { type: String, required: true },
      productId: { type: String, default: null },
    },
    { _id: false },
  );
  const roomSchema = new Schema<LiveRoomDoc>(
    {
      title: { type: String, required: true },
      description: { type: String, default: '' },
      hostName: { type: String, required: true },
      hostAccountId: { type: String, default: null },
      status: { type: String, required: true, default: 'SCHEDULED' },
      statusSeq: { type: Number, default: 0 },
      scheduledAt: { type: Date, required: true },
      startedAt: { type: Date, default: null },
      endedAt: { type: Date, default: null },
      replayUrl: { type: String, default: null },
      highlights: { type: [highlightSchema], default: [] },
      seriesId: { type: String, default: null },
      productIds: { type: [String], default: [] },
      createdAt: { type: Date, required: true },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  roomSchema.index({ status: 1 });
  roomSchema.index({ status: 1, scheduledAt: 1 });

  const transitionSchema = new Schema(
    {
      _id: { type: String, required: true },
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      status: { type: String, required: true },
      from: { type: String, required: true },
      at: { type: Date, required: true },
      by: { type: String, required: true },
      replayUrl: { type: String },
      highlights: { type: [highlightSchema], default: undefined },
      outbox: outboxPath,
    },
    { versionKey: false },
  );
  for (const idx of ledgerIndexes) transitionSchema.index(idx);

  /** Claims of the sweeper: `sweep:<period>` gives each period's pass to one replica. */
  const claimSchema = new Schema<{ _id: string; at: Date }>({ _id: String, at: { type: Date, required: true } }, { versionKey: false });

  return {
    Claim: db.model<{ _id: string; at: Date }>('Claim', claimSchema, 'claims'),
    LiveRoom: db.model<LiveRoomDoc>('LiveRoom', roomSchema, 'live_rooms'),
    RoomTransition: db.model<RoomTransitionDoc>('RoomTransition', transitionSchema, 'live_room_transitions'),
  };
}
export type Models = ReturnType<typeof createModels>;
