import { Schema, type Connection } from 'mongoose';
import type { ReplyData } from '@flywheel/events';
import { modelOn } from '@flywheel/service-kit';
import type { Lot } from '../loyalty/lots';

export type Adjustment = ReplyData<'membership.benefits.quote'>['adjustments'][number];

/** What a checkout took: the claim (`_id = checkoutId`) that the lock exists, and what to give back. */
export interface BenefitLockDoc {
  _id: string;
  memberId: string;
  couponId: string | null;
  points: number;
  adjustments: Adjustment[];
  at: Date;
  /** The point lots the spend took (set once it has), so giving them back needs no search. */
  taken?: Lot[];
}

/** How a checkout's benefits ended: CONSUMED by payment or RELEASED, whichever is claimed first. */
export interface BenefitFinalDoc {
  _id: string;
  outcome: 'CONSUMED' | 'RELEASED';
  /** The paid order's total, for refund shares. */
  total?: number;
  at: Date;
}

export function createBenefitModels(db: Connection) {
  const BenefitLock = modelOn<BenefitLockDoc>(
    db,
    'BenefitLock',
    new Schema<BenefitLockDoc>(
      {
        _id: String,
        memberId: String,
        couponId: String,
        points: Number,
        adjustments: Schema.Types.Mixed,
        at: Date,
        taken: Schema.Types.Mixed,
      },
      { versionKey: false },
    ),
    'benefit_locks',
  );
  const BenefitFinal = modelOn<BenefitFinalDoc>(
    db,
    'BenefitFinal',
    new Schema<BenefitFinalDoc>({ _id: String, outcome: String, total: Number, at: Date }, { versionKey: false }),
    'benefit_finals',
  );
  return { BenefitLock, BenefitFinal };
}
export type BenefitModels = ReturnType<typeof createBenefitModels>;
