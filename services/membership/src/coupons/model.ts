import { Schema, Types, type Connection, type Model } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

// docs/concurrency.md: FerretDB applies no update filter atomically, so nothing that decides value is
// ever updated in place. Quota and per-member limits are unique slot inserts, a coupon's state is
// an append-only ledger, idempotency is a deterministic coupon id. The one document updated in
// place is the wallet projection (`coupons`), a read model rebuilt from the ledger head.

export type CouponKind = 'FIXED' | 'PERCENT';
export type CouponScope = 'ALL' | 'PRODUCTS' | 'CATEGORIES';
export type CouponTemplateStatus = 'ACTIVE' | 'STOPPED';

export interface CouponTemplateDoc {
  _id: Types.ObjectId;
  name: string;
  kind: CouponKind;
  /** FIXED: fen off. */
  amount: number | null;
  /** PERCENT: 1..99 off the eligible amount, capped by `maxDiscount` (fen). */
  percentOff: number | null;
  maxDiscount: number | null;
  /** Minimum eligible amount in fen (0 = none); 满减 is FIXED with a threshold. */
  threshold: number;
  scope: CouponScope;
  productIds: string[];
  categoryIds: string[];
  /** A fixed window, or `validDaysAfterClaim` from the moment the coupon is issued. */
  validFrom: Date | null;
  validUntil: Date | null;
  validDaysAfterClaim: number | null;
  /** Null: unlimited. Otherwise exactly this many coupons can ever be issued (quota slots). */
  totalQuota: number | null;
  perMemberLimit: number;
  /** Members may claim it themselves; false = grant-only (live rooms, referral, win-back). */
  claimable: boolean;
  /** Self-claims only on the program's member day. */
  memberDayOnly: boolean;
  /**
   * A group-exclusive offer (专属福利): only current members of this community group may claim
   * it, and its coupons apply only while the member is still in the group. Null (or absent on
   * older templates): anyone.
   */
  groupId?: string | null;
  /** One-way ACTIVE → STOPPED (a monotonic flag: a lost concurrent write can only write the same value). */
  status: CouponTemplateStatus;
  createdAt: Date;
  createdBy: string | null;
  stoppedAt: Date | null;
}

/**
 * A unique claim that makes a quota or a per-member limit exact:
 * `<templateId>:q:<n>` (n in 1..totalQuota, claimed contiguously) and
 * `<templateId>:m:<memberId>:<n>`, both naming the coupon they were taken for; and
 * `void:<couponId>` marking a coupon that can never be issued (its template sold out after it took
 * a member slot), so that member slot stops counting against the limit.
 */
export interface CouponSlotDoc {
  _id: string;
  templateId: string;
  couponId: string;
  at: Date;
}

export type CouponEntryState = 'ISSUED' | 'LOCKED' | 'AVAILABLE' | 'USED' | 'REVOKED';

/**
 * One state of one coupon (`accountId` = coupon id). Seq 1 is ISSUED and carries what the coupon
 * is (owner, template, window); later entries are transitions decided against the head:
 * ISSUED|AVAILABLE → LOCKED(checkout) → USED(checkout) | AVAILABLE (release); USED → AVAILABLE
 * (restore on refund); ISSUED|AVAILABLE → REVOKED (the granter took it back, final); USED →
 * USED (revoke-wanted) → REVOKED when its order's refund would have restored it.
 */
interface CouponEntryBase extends LedgerEntry {
  state: CouponEntryState;
  at: Date;
}

/** Seq 1: the coupon's issue, carrying what the coupon is (every later entry only moves it). */
export interface CouponIssueEntryDoc extends CouponEntryBase {
  seq: 1;
  state: 'ISSUED';
  op: 'issue';
  memberId: string;
  templateId: string;
  name: string;
  validFrom: Date;
  validUntil: Date;
  via: 'CLAIM' | 'GRANT';
  reason?: string;
  /** The template's quota slot this coupon took (templates with a total quota). */
  quotaSlot?: number;
}

/**
 * Seq 2 onwards: a move of the coupon for a checkout (lock, release, consume, restore), or
 * `revoke-wanted`: the granter asked for a USED coupon back; it stays USED for its order, and if
 * that order's refund gives it back it becomes REVOKED (`reason`), not AVAILABLE.
 */
export interface CouponMoveEntryDoc extends CouponEntryBase {
  state: 'LOCKED' | 'AVAILABLE' | 'USED';
  op: 'lock' | 'release' | 'consume' | 'restore' | 'revoke-wanted';
  checkoutId: string;
  /** On `revoke-wanted`: the granter's reason. */
  reason?: string;
}

/**
 * The grant taken back by its granter (`membership.coupon.revoke`): only from an unused state,
 * decided against the head like a lock, so a coupon is never both used and revoked. Final.
 */
export interface CouponRevokeEntryDoc extends CouponEntryBase {
  state: 'REVOKED';
  op: 'revoke';
  reason: string;
}

/** One entry of a coupon's ledger (`accountId` = coupon id), told apart by `op`. */
export type CouponEntryDoc = CouponIssueEntryDoc | CouponMoveEntryDoc | CouponRevokeEntryDoc;

/**
 * The member's list of coupon ids, appended once per issued coupon (`accountId` = member id):
 * the wallet reads it by `_id` instead of scanning every coupon for a member id.
 */
export interface CouponWalletEntryDoc extends LedgerEntry {
  couponId: string;
  at: Date;
}

/** Wallet projection of a coupon: the ledger head as last seen. The ledger decides, this lists. */
export interface CouponDoc {
  _id: string;
  memberId: string;
  templateId: string;
  name: string;
  state: 'AVAILABLE' | 'LOCKED' | 'USED' | 'REVOKED';
  checkoutId: string | null;
  usedOrderId: string | null;
  validFrom: Date;
  validUntil: Date;
  claimedAt: Date;
  via: 'CLAIM' | 'GRANT';
  /** Ledger seq this projection reflects. */
  seq: number;
  updatedAt: Date;
}

export function createCouponModels(db: Connection) {
  const get = <T>(name: string, build: () => Model<T>): Model<T> => (db.models[name] as Model<T> | undefined) ?? build();

  const CouponTemplate = get<CouponTemplateDoc>('CouponTemplate', () =>
    db.model<CouponTemplateDoc>(
      'CouponTemplate',
      new Schema<CouponTemplateDoc>(
        {
          name: { type: String, required: true },
          kind: { type: String, required: true },
          amount: { type: Number, default: null },
          percentOff: { type: Number, default: null },
          maxDiscount: { type: Number, default: null },
          threshold: { type: Number, required: true },
          scope: { type: String, required: true },
          productIds: { type: [String], default: [] },
          categoryIds: { type: [String], default: [] },
          validFrom: { type: Date, default: null },
          validUntil: { type: Date, default: null },
          validDaysAfterClaim: { type: Number, default: null },
          totalQuota: { type: Number, default: null },
          perMemberLimit: { type: Number, required: true },
          claimable: { type: Boolean, required: true },
          memberDayOnly: { type: Boolean, required: true },
          groupId: { type: String, default: null },
          status: { type: String, required: true },
          createdAt: { type: Date, required: true },
          createdBy: { type: String, default: null },
          stoppedAt: { type: Date, default: null },
        },
        { versionKey: false },
      ),
      'coupon_templates',
    ),
  );

  const CouponSlot = get<CouponSlotDoc>('CouponSlot', () =>
    db.model<CouponSlotDoc>(
      'CouponSlot',
      new Schema<CouponSlotDoc>({ _id: String, templateId: String, couponId: String, at: Date }, { versionKey: false }),
      'coupon_slots',
    ),
  );

  const CouponEntry = get<CouponEntryDoc>('CouponEntry', () => {
    const schema = new Schema<CouponEntryDoc>(
      {
        _id: String,
        accountId: { type: String, required: true },
        seq: { type: Number, required: true },
        state: { type: String, required: true },
        checkoutId: String,
        op: { type: String, required: true },
        at: { type: Date, required: true },
        memberId: String,
        templateId: String,
        name: String,
        validFrom: Date,
        validUntil: Date,
        via: String,
        reason: String,
        quotaSlot: Number,
      },
      { versionKey: false },
    );
    for (const idx of ledgerIndexes) schema.index(idx);
    return db.model<CouponEntryDoc>('CouponEntry', schema, 'coupon_entries');
  });

  const CouponWalletEntry = get<CouponWalletEntryDoc>('CouponWalletEntry', () =>
    db.model<CouponWalletEntryDoc>(
      'CouponWalletEntry',
      new Schema<CouponWalletEntryDoc>(
        { _id: String, accountId: { type: String, required: true }, seq: { type: Number, required: true }, couponId: String, at: Date },
        { versionKey: false },
      ),
      'coupon_wallet_entries',
    ),
  );

  const Coupon = get<CouponDoc>('Coupon', () =>
    db.model<CouponDoc>(
      'Coupon',
      new Schema<CouponDoc>(
        {
          _id: String,
          memberId: { type: String, required: true },
          templateId: { type: String, required: true },
          name: { type: String, required: true },
          state: { type: String, required: true },
          checkoutId: { type: String, default: null },
          usedOrderId: { type: String, default: null },
          validFrom: { type: Date, required: true },
          validUntil: { type: Date, required: true },
          claimedAt: { type: Date, required: true },
          via: { type: String, required: true },
          seq: { type: Number, required: true },
          updatedAt: { type: Date, required: true },
        },
        { versionKey: false },
      ),
      'coupons',
    ),
  );

  return { CouponTemplate, CouponSlot, CouponEntry, CouponWalletEntry, Coupon };
}
export type CouponModels = ReturnType<typeof createCouponModels>;
