import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, outboxPath, type LedgerEntry, type OutboxRecord } from '@flywheel/service-kit';

/**
 * One member's moves in one group (account `${groupId}:${memberId}`): the head says whether they
 * are in (JOINED) and which seat they hold. Deciding a join or leave is appending the next entry,
 * so two replicas (or a member's two taps) racing for the same move land one entry. The entry
 * carries its `community.member.joined` / `left` event (outbox). `profileSeq` is the newest
 * member-profile entry any move of this account was decided on: a rule move for a profile entry
 * at or below it is stale (a redelivered event) and appends nothing.
 */
export interface MoveEntry extends LedgerEntry {
  op: 'JOINED' | 'LEFT';
  by: 'MEMBER' | 'RULE' | 'STAFF';
  /** The seat held (capacity groups only) and the ticket that took it. */
  seat?: number | null;
  ticket?: string | null;
  profileSeq: number;
  eventId?: string | null;
  at: Date;
  outbox?: OutboxRecord;
}

/**
 * One seat of a capacity group (account `${groupId}:seat:${n}`): taken (holder set) or free. A seat
 * is taken by appending a held entry on a free head, so two joiners never share it; leaving
 * appends a free entry, and the next joiner's append on that head reuses it. Nothing is deleted.
 */
export interface SeatEntry extends LedgerEntry {
  holder: string | null;
  ticket: string | null;
  at: Date;
}

/**
 * A join in progress that holds (or is about to hold) a seat: `_id` = the join's ticket. Written
 * before the first seat is taken and deleted once the join is decided (moved in, refused, full), so
 * a hold that outlives SEAT_HOLD_STALE_MS belongs to a join that crashed in between; the sweep gives
 * its seat back unless the member's move head names the ticket.
 */
export interface SeatHoldDoc {
  _id: string;
  groupId: string;
  memberId: string;
  at: Date;
}

/** What community knows of a member's tier and segment (account `profile:${memberId}`), each with its changedAt. */
export interface ProfileEntry extends LedgerEntry {
  tier: string | null;
  tierAt: Date | null;
  segment: string | null;
  segmentAt: Date | null;
  /** The event this entry learnt. */
  eventId: string;
  at: Date;
}

/** A group's operator (社群运营官): `_id = ${groupId}:${memberId}` is the claim. */
export interface OperatorDoc {
  _id: string;
  groupId: string;
  memberId: string;
  by: string;
  at: Date;
}

/** A group's pinned announcement: a per-group ledger (account = group id), the head is the one shown. */
export interface AnnouncementEntry extends LedgerEntry {
  body: string;
  by: string;
  at: Date;
}

export interface PollDoc {
  _id: string;
  groupId: string;
  question: string;
  options: string[];
  closesAt: Date;
  by: string;
  createdAt: Date;
}

/** One member's vote: `_id = ${pollId}:${memberId}` is the claim, so a second vote is a duplicate. */
export interface VoteDoc {
  _id: string;
  pollId: string;
  memberId: string;
  option: number;
  at: Date;
}

function ledger<E>(fields: Record<string, unknown>) {
  const schema = new Schema<E>({ _id: String, accountId: String, seq: Number, ...fields }, { versionKey: false });
  for (const idx of ledgerIndexes) schema.index(idx);
  return schema;
}

export function createGroupModels(db: Connection) {
  const pollSchema = new Schema<PollDoc>(
    { _id: String, groupId: String, question: String, options: [String], closesAt: Date, by: String, createdAt: Date },
    { versionKey: false },
  );
  pollSchema.index({ groupId: 1, createdAt: -1 });
  const voteSchema = new Schema<VoteDoc>(
    { _id: String, pollId: String, memberId: String, option: Number, at: Date },
    { versionKey: false },
  );
  voteSchema.index({ pollId: 1 });
  const seatHoldSchema = new Schema<SeatHoldDoc>({ _id: String, groupId: String, memberId: String, at: Date }, { versionKey: false });
  seatHoldSchema.index({ at: 1 });
  const operatorSchema = new Schema<OperatorDoc>(
    { _id: String, groupId: String, memberId: String, by: String, at: Date },
    { versionKey: false },
  );
  operatorSchema.index({ groupId: 1 });
  return {
    Move: db.model<MoveEntry>(
      'GroupMove',
      ledger<MoveEntry>({
        op: String,
        by: String,
        seat: Number,
        ticket: String,
        profileSeq: Number,
        eventId: String,
        at: Date,
        outbox: outboxPath,
      }),
      'group_moves',
    ),
    Seat: db.model<SeatEntry>('GroupSeat', ledger<SeatEntry>({ holder: String, ticket: String, at: Date }), 'group_seats'),
    SeatHold: db.model<SeatHoldDoc>('GroupSeatHold', seatHoldSchema, 'group_seat_holds'),
    Profile: db.model<ProfileEntry>(
      'MemberProfile',
      ledger<ProfileEntry>({ tier: String, tierAt: Date, segment: String, segmentAt: Date, eventId: String, at: Date }),
      'community_member_profiles',
    ),
    Operator: db.model<OperatorDoc>('GroupOperator', operatorSchema, 'group_operators'),
    Announcement: db.model<AnnouncementEntry>(
      'GroupAnnouncement',
      ledger<AnnouncementEntry>({ body: String, by: String, at: Date }),
      'group_announcements',
    ),
    Poll: db.model<PollDoc>('GroupPoll', pollSchema, 'group_polls'),
    Vote: db.model<VoteDoc>('GroupVote', voteSchema, 'group_votes'),
  };
}
export type GroupModels = ReturnType<typeof createGroupModels>;
