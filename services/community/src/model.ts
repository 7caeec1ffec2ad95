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
    },
    { versionKey: false },
  );
  groupSchema.index({ welcome: 1 });

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

  return {
    Group: db.model<GroupDoc>('Group', groupSchema, 'groups'),
    GroupMembership: db.model<GroupMembershipDoc>('GroupMembership', membershipSchema, 'group_memberships'),
  };
}
export type Models = ReturnType<typeof createModels>;
