import { Schema, Types, type Connection } from 'mongoose';

/** A member's invite code. Unique `code` and unique `memberId` are the claims: one code per member, never shared. */
export interface InviteCodeDoc {
  _id: Types.ObjectId;
  code: string;
  memberId: string;
  createdAt: Date;
  /** The registration event that issued it. */
  eventId?: string;
}

/**
 * Who invited a member. `_id = inviteeId` is the claim: a member is bound once, and a
 * redelivered registration cannot rebind them. Invitee counts are counted from these rows.
 */
export interface InviteBindingDoc {
  _id: string;
  inviterId: string;
  code: string;
  boundAt: Date;
  eventId?: string;
}

export function createModels(db: Connection) {
  const codeSchema = new Schema<InviteCodeDoc>(
    {
      code: { type: String, required: true, unique: true },
      memberId: { type: String, required: true, unique: true },
      createdAt: { type: Date, required: true },
      eventId: String,
    },
    { versionKey: false },
  );

  const bindingSchema = new Schema<InviteBindingDoc>(
    {
      _id: { type: String, required: true },
      inviterId: { type: String, required: true },
      code: { type: String, required: true },
      boundAt: { type: Date, required: true },
      eventId: String,
    },
    { versionKey: false },
  );
  bindingSchema.index({ code: 1 });
  bindingSchema.index({ inviterId: 1 });

  const claimSchema = new Schema<{ _id: string; at: Date }>({ _id: String, at: Date }, { versionKey: false });

  return {
    /** Claims of the sweeper: `sweep:<period>` gives each period's pass to one replica. */
    Claim: db.model<{ _id: string; at: Date }>('Claim', claimSchema, 'claims'),
    InviteCode: db.model<InviteCodeDoc>('InviteCode', codeSchema, 'invite_codes'),
    InviteBinding: db.model<InviteBindingDoc>('InviteBinding', bindingSchema, 'invite_bindings'),
  };
}
export type Models = ReturnType<typeof createModels>;
