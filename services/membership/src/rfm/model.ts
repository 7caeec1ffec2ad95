import { Schema, type Connection } from 'mongoose';
import { modelOn, outboxPath, type OutboxRecord } from '@flywheel/service-kit';
import type { Segment } from './segments';

/**
 * One order's money as RFM sees it: a ledger per order (`accountId = orderId`, `_id =
 * orderId:seq`). Seq 1 is always the PAID entry (the order total); refunds follow, each with the
 * running refunded total capped at what was paid. `op` is unique (`paid:<orderId>`,
 * `refund:<orderId>:<refundId>`), so a replayed event cannot land twice.
 */
export interface RfmOrderEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  op: string;
  kind: 'PAID' | 'REFUND';
  memberId: string;
  /** The order total (copied onto every entry, so any entry tells whether the order is fully refunded). */
  paid: number;
  /** What this entry refunded, after the cap (0 for PAID). */
  refunded: number;
  /** Running refunded total of the order after this entry. */
  refundedTotal: number;
  /** This refund took the order to fully refunded: it leaves the member's frequency. */
  fullyRefunded: boolean;
  /** paidAt of the order (PAID) or refundedAt (REFUND). */
  at: Date;
  eventId: string;
}

/**
 * A member's RFM metrics as a ledger (`accountId = memberId`, `_id = memberId:seq`), each entry
 * carrying running totals; the head is the member's current metrics. `op` is unique: the id of
 * the order entry it applies (`<orderId>:<seq>`), so each order fact moves the metrics once.
 * All totals are sums (or min/max), so entries may apply in any order.
 */
export interface RfmEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  op: string;
  kind: 'PAID' | 'REFUND';
  orderId: string;
  /** Signed change of paidFen / refundedFen this entry made. */
  amount: number;
  /** Orders paid (each once). */
  orders: number;
  /** Orders refunded in full. */
  fullyRefunded: number;
  paidFen: number;
  refundedFen: number;
  firstPaidAt: Date | null;
  lastPaidAt: Date | null;
  at: Date;
}

/**
 * A member's segment over time (`accountId = memberId`, `_id = memberId:seq`); the head is the
 * current segment. Only changes are written, each carrying `membership.segment.changed` in its
 * outbox. `basis` is the metrics seq the decision was made on: a decision on older metrics (or
 * on the same metrics at an earlier instant) never overrides a newer one.
 */
export interface RfmSegmentEntryDoc {
  _id: string;
  accountId: string;
  seq: number;
  from: Segment | null;
  to: Segment;
  basis: number;
  recencyDays: number | null;
  frequency: number;
  monetary: number;
  at: Date;
  outbox?: OutboxRecord;
}

/**
 * Read model (`_id = memberId`) of the current placement, for segment sizes and listings: written
 * with each change of placement (its metrics are the ones that placement was decided on) and
 * rewritten by the sweep from the ledgers, which stay the authority (`Member.rfm` reads those).
 */
export interface RfmProfileDoc {
  _id: string;
  segment: Segment;
  frequency: number;
  monetary: number;
  firstPaidAt: Date | null;
  lastPaidAt: Date | null;
  /** Metrics seq and segment seq this profile reflects. */
  basis: number;
  segmentSeq: number;
  evaluatedAt: Date;
}

export function createRfmModels(db: Connection) {
  const order = new Schema<RfmOrderEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      kind: { type: String, required: true },
      memberId: { type: String, required: true },
      paid: Number,
      refunded: Number,
      refundedTotal: Number,
      fullyRefunded: Boolean,
      at: Date,
      eventId: String,
    },
    { versionKey: false },
  );
  order.index({ op: 1 }, { unique: true });

  const entry = new Schema<RfmEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      op: { type: String, required: true },
      kind: { type: String, required: true },
      orderId: String,
      amount: Number,
      orders: Number,
      fullyRefunded: Number,
      paidFen: Number,
      refundedFen: Number,
      firstPaidAt: Date,
      lastPaidAt: Date,
      at: Date,
    },
    { versionKey: false },
  );
  entry.index({ op: 1 }, { unique: true });

  const segment = new Schema<RfmSegmentEntryDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      from: String,
      to: { type: String, required: true },
      basis: Number,
      recencyDays: Number,
      frequency: Number,
      monetary: Number,
      at: Date,
      outbox: outboxPath,
    },
    { versionKey: false },
  );

  const profile = new Schema<RfmProfileDoc>(
    {
      _id: String,
      segment: { type: String, required: true },
      frequency: Number,
      monetary: Number,
      firstPaidAt: Date,
      lastPaidAt: Date,
      basis: Number,
      segmentSeq: Number,
      evaluatedAt: Date,
    },
    { versionKey: false },
  );
  profile.index({ segment: 1 });

  return {
    RfmOrderEntry: modelOn(db, 'RfmOrderEntry', order, 'rfm_order_entries'),
    RfmEntry: modelOn(db, 'RfmEntry', entry, 'rfm_entries'),
    RfmSegmentEntry: modelOn(db, 'RfmSegmentEntry', segment, 'rfm_segment_history'),
    RfmProfile: modelOn(db, 'RfmProfile', profile, 'rfm_profiles'),
  };
}
export type RfmModels = ReturnType<typeof createRfmModels>;
