import { Schema, type Connection } from 'mongoose';

/**
 * How far the expiry sweeper has read reservations (by `expiresAt`). Every replica's sweeper
 * writes it; a lost update only makes the next pass re-read a little, which is harmless.
 */
export interface SweepMarkDoc {
  _id: string;
  until: Date;
}

export function createSweeperModels(db: Connection) {
  return {
    SweepMark: db.model<SweepMarkDoc>(
      'SweepMark',
      new Schema<SweepMarkDoc>({ _id: String, until: Date }, { versionKey: false }),
      'stock_sweep_marks',
    ),
  };
}
