import { Schema, type Connection } from 'mongoose';

export interface GroupDoc {
  /** A time-ordered hex id, or the fixed `welcome` id of the default welcome group (claimed by insert). */
  _id: string;
  name: string;
  description: string;
  tags: string[];
  /** New members join every welcome group on registration. */
  welcome: boolean;
  createdAt: Date;
  /** What the group is for (groups/): NEW_MEMBERS, VIP, ACTIVITY, PRODUCT_INTEREST or REGION. */
  type?: string;
  /** The group's rules, shown to members. */
  rules?: string;
  /** Most members at once (seats, groups/); none = unlimited. */
  capacity?: number | null;
  /** Who may join (groups/): OPEN, BY_TIER, BY_SEGMENT, INVITE_ONLY; none = OPEN. */
  policy?: { kind: string; minTier?: string | null; segments?: string[] };
  /** Whether a member who no longer matches a BY_TIER/BY_SEGMENT rule is moved out. */
  autoLeave?: boolean;
}

/**
 * One member in one group. `_id = groupId:memberId` is the claim: joining twice (a redelivered
 * event, a racing replica) is a duplicate key, never a second row, so counts derived from these
 * rows are exact.
 */
export interface GroupMembershipDoc {
  _id: string;
  groupId: string;
  memberId: string;
  joinedAt: Date;
  /** The event that caused the join, for tracing a membership back to its cause. */
  eventId?: string;
}

export function createModels(db: Connection) {
  const groupSchema = new Schema<GroupDoc>(
    {
      _id: { type: String, required: true },
      name: { type: String, required: true },
      description: { type: String, default: '' },
      tags: { type: [String], default: [] },
      welcome: { type: Boolean, required: true, default: false },
      createdAt: { type: Date, required: true },
      type: String,
      rules: String,
      capacity: Number,
      policy: {
        type: new Schema({ kind: String, minTier: String, segments: { type: [String], default: undefined } }, { _id: false }),
        default: undefined,
      },
      autoLeave: Boolean,
    },
    { versionKey: false },
  );
  groupSchema.index({ welcome: 1 });
  groupSchema.index({ 'policy.kind': 1 });

  const membershipSchema = new Schema<GroupMembershipDoc>(
    {
      _id: { type: String, required: true },
      groupId: { type: String, required: true },
      memberId: { type: String, required: true },
      joinedAt: { type: Date, required: true },
      eventId: String,
    },
    { versionKey: false },
  );
  membershipSchema.index({ groupId: 1 });
  membershipSchema.index({ memberId: 1 });

  const claimSchema = new Schema<{ _id: string; at: Date }>({ _id: String, at: Date }, { versionKey: false });

  return {
    /** Claims of the sweeper: `sweep:<period>` gives each period's pass to one replica. */
    Claim: db.model<{ _id: string; at: Date }>('Claim', claimSchema, 'claims'),
    Group: db.model<GroupDoc>('Group', groupSchema, 'groups'),
    GroupMembership: db.model<GroupMembershipDoc>('GroupMembership', membershipSchema, 'group_memberships'),
  };
}
export type Models = ReturnType<typeof createModels>;
