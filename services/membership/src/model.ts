import { Schema, Types, type Connection } from 'mongoose';
import { outboxPath, type OutboxRecord } from '@flywheel/service-kit';

export type Tier = 'REGULAR' | 'SILVER' | 'GOLD' | 'DIAMOND';

export interface MemberDoc {
  _id: Types.ObjectId;
  /** Keyed hash of the normalised phone: the unique claim that makes registration happen once. */
  phoneHash: string;
  /** AES-256-GCM ciphertext of the phone. */
  phoneEnc: string;
  nickname: string;
  tier: Tier;
  registeredAt: Date;
  invitedByCode?: string;
  /** Month and day (`MM-DD`) for birthday benefits; set once by the member. */
  birthday?: string;
  /** The registration event, written in the same insert (outbox). */
  outbox?: OutboxRecord;
}

/**
 * One login code sent to a phone, as an entry of that phone's per-UTC-day issue ledger
 * (`accountId = phoneHash:YYYY-MM-DD`, `_id = accountId:seq`): inserting entry `seq + 1` is the
 * claim that makes "at most one code per interval" exact under concurrency, and `seq` is how many
 * codes the phone was sent that day, which sets the wait before the next one.
 */
export interface LoginCodeDoc {
  _id: string;
  accountId: string;
  seq: number;
  phoneHash: string;
  codeHash: string;
  expiresAt: Date;
  createdAt: Date;
}

export interface StaffDoc {
  _id: Types.ObjectId;
  email: string;
  name: string;
  /** scrypt: `salt.hash`, base64url. */
  passwordHash: string;
  /** STAFF (absent on accounts older than roles) or HOST (主播: operates the live rooms assigned to it). */
  role?: StaffRole;
  createdAt: Date;
}
export type StaffRole = 'STAFF' | 'HOST';

export interface RefreshTokenDoc {
  /** sha256 of the token; the token itself is never stored. */
  _id: string;
  subjectId: string;
  kind: 'member' | 'staff';
  expiresAt: Date;
  createdAt: Date;
}

/** At-most-once facts: a code's use and guess slots, a refresh token's use, staff sign-in attempt slots. */
export interface ClaimDoc {
  _id: string;
  at: Date;
}

export function createModels(db: Connection) {
  const memberSchema = new Schema<MemberDoc>(
    {
      phoneHash: { type: String, required: true, unique: true },
      phoneEnc: { type: String, required: true },
      nickname: { type: String, required: true },
      tier: { type: String, required: true, default: 'REGULAR' },
      registeredAt: { type: Date, required: true },
      invitedByCode: String,
      birthday: String,
      outbox: outboxPath,
    },
    { versionKey: false },
  );

  const loginCodeSchema = new Schema<LoginCodeDoc>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      phoneHash: { type: String, required: true },
      codeHash: String,
      expiresAt: Date,
      createdAt: Date,
    },
    { versionKey: false },
  );
  loginCodeSchema.index({ accountId: 1, seq: -1 });

  return {
    Member: db.model<MemberDoc>('Member', memberSchema, 'members'),
    LoginCode: db.model<LoginCodeDoc>('LoginCode', loginCodeSchema, 'login_codes'),
    Staff: db.model<StaffDoc>(
      'Staff',
      new Schema<StaffDoc>(
        { email: { type: String, required: true, unique: true }, name: String, passwordHash: String, role: String, createdAt: Date },
        { versionKey: false },
      ),
      'staff',
    ),
    RefreshToken: db.model<RefreshTokenDoc>(
      'RefreshToken',
      new Schema<RefreshTokenDoc>(
        { _id: String, subjectId: String, kind: String, expiresAt: Date, createdAt: Date },
        { versionKey: false },
      ),
      'refresh_tokens',
    ),
    Claim: db.model<ClaimDoc>('Claim', new Schema<ClaimDoc>({ _id: String, at: Date }, { versionKey: false }), 'claims'),
  };
}
export type Models = ReturnType<typeof createModels>;
