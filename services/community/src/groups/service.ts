import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import { MemberSegment, MemberTier, type EventEnvelope } from '@flywheel/events';
import {
  AppError,
  appendToLedger,
  badInput,
  charCount,
  claimOnce,
  forbidden,
  isStaff,
  ledgerHead,
  notFound,
  outboxRecord,
  requireRole,
  requireViewer,
  text,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { GroupDoc, Models } from '../model';
import type { GroupModels, MoveEntry, PollDoc, ProfileEntry } from './model';

export const GROUP_TYPES = ['NEW_MEMBERS', 'VIP', 'ACTIVITY', 'PRODUCT_INTEREST', 'REGION'] as const;
export const POLICY_KINDS = ['OPEN', 'BY_TIER', 'BY_SEGMENT', 'INVITE_ONLY'] as const;
const TIERS = MemberTier.options;
/** A join holds its seat this long at most before the sweep may give it back (a join takes milliseconds). */
export const SEAT_HOLD_STALE_MS = 2 * 60_000;
const SEAT_SWEEP_BATCH = 100;
export const GROUP_LIMITS = { rules: 200, capacity: 100_000, announcement: 200, question: 100, option: 50, minOptions: 2, maxOptions: 10 };

export interface ConfigureGroupInput {
  type?: string | null;
  rules?: string | null;
  capacity?: number | null;
  joinPolicy?: string | null;
  minTier?: string | null;
  segments?: readonly string[] | null;
  autoLeave?: boolean | null;
}

export interface CreatePollInput {
  groupId: string;
  question: string;
  options: readonly string[];
  closesAt: string | Date;
}

type Move = 'MOVED' | 'SAME' | 'FULL' | 'STALE';
type Profile = Pick<ProfileEntry, 'tier' | 'segment'> | null;

const conflict = (message: string, reason: string) => new AppError('CONFLICT', message, { reason });

/** Whether a member with this profile matches a BY_TIER / BY_SEGMENT group's rule (OPEN matches everyone). */
export function matchesRule(group: Pick<GroupDoc, 'policy'>, profile: Profile): boolean {
  const p = group.policy;
  if (!p || p.kind === 'OPEN') return true;
  if (p.kind === 'BY_TIER') return TIERS.indexOf((profile?.tier ?? 'REGULAR') as never) >= TIERS.indexOf((p.minTier ?? 'REGULAR') as never);
  if (p.kind === 'BY_SEGMENT') return Boolean(profile?.segment && p.segments?.includes(profile.segment));
  return false;
}

/** A later changedAt wins; at the same time the greater value, so every delivery order ends the same. */
function supersedes(value: string | null, at: Date | null, next: string, nextAt: Date): boolean {
  if (value === null || at === null) return true;
  const d = nextAt.getTime() - new Date(at).getTime();
  return d > 0 || (d === 0 && next > value);
}

export function createGroupsService(deps: { models: GroupModels; core: Models; kick: () => void; now: () => Date; logger: Logger }) {
  const { models, core, kick, now, logger } = deps;
  const account = (groupId: string, memberId: string) => `${groupId}:${memberId}`;
  const seatAccount = (groupId: string, n: number) => `${groupId}:seat:${n}`;

  async function group(groupId: string): Promise<GroupDoc> {
    const g = await core.Group.findById(groupId).lean<GroupDoc>();
    if (!g) throw notFound('Group');
    return g;
  }

  const profileOf = (memberId: string) => ledgerHead(models.Profile, `profile:${memberId}`);

  /** In the group: the head of the member's move ledger, or a core row with no ledger yet (a welcome join). */
  async function state(groupId: string, memberId: string): Promise<{ head: MoveEntry | null; in: boolean }> {
    const head = await ledgerHead(models.Move, account(groupId, memberId));
    if (head) return { head, in: head.op === 'JOINED' };
    return { head, in: Boolean(await core.GroupMembership.exists({ _id: account(groupId, memberId) })) };
  }

  /**
   * The core membership row (what memberCount and Member.groups read) follows the ledger head:
   * inserted under its `groupId:memberId` claim on JOINED, deleted on LEFT. Re-read after the write,
   * so a leave and a rejoin racing end with the row the last head says.
   */
  async function settleRow(groupId: string, memberId: string, eventId?: string | null): Promise<void> {
    const _id = account(groupId, memberId);
    for (let i = 0; i < 3; i++) {
      const head = await ledgerHead(models.Move, _id);
      if (!head) return;
      const row = await core.GroupMembership.exists({ _id });
      if (head.op === 'JOINED' && !row) {
        await claimOnce(core.GroupMembership, { _id, groupId, memberId, joinedAt: head.at, ...(eventId ? { eventId } : {}) });
      } else if (head.op === 'LEFT' && row) await core.GroupMembership.deleteOne({ _id });
      else return;
    }
  }

  /** The first free seat, taken by appending a held entry on its free head; null when every seat is held. */
  async function takeSeat(groupId: string, capacity: number, memberId: string, ticket: string): Promise<number | null> {
    for (let n = 1; n <= capacity; n++) {
      const at = now();
      const taken = await appendToLedger(models.Seat, seatAccount(groupId, n), (h) =>
        h?.holder ? null : { holder: memberId, ticket, at },
      );
      if (taken) return n;
    }
    return null;
  }

  /** Frees the seat a ticket holds (a no-op when it was freed already): the next joiner reuses it. */
  async function freeSeat(groupId: string, seat: number | null | undefined, ticket: string | null | undefined): Promise<void> {
    if (!seat || !ticket) return;
    const at = now();
    await appendToLedger(models.Seat, seatAccount(groupId, seat), (h) =>
      h?.holder && h.ticket === ticket ? { holder: null, ticket: null, at } : null,
    );
  }

  const moveEvent = (op: 'JOINED' | 'LEFT', g: string, m: string, by: MoveEntry['by'], eventId: string | null, at: Date) =>
    op === 'JOINED'
      ? outboxRecord(
          'community.member.joined',
          {
            groupId: g,
            memberId: m,
            by: by === 'RULE' ? 'RULE' : 'MEMBER',
            ...(eventId ? { cause: eventId } : {}),
            joinedAt: at.toISOString(),
          },
          randomUUID(),
          at,
        )
      : outboxRecord(
          'community.member.left',
          {
            groupId: g,
            memberId: m,
            by: by === 'RULE' ? 'RULE' : 'MEMBER',
            ...(eventId ? { cause: eventId } : {}),
            leftAt: at.toISOString(),
          },
          randomUUID(),
          at,
        );

  /**
   * Moves a member in (or out). The decision is the append of the next move entry, refused when the
   * head already says so, or — for a rule move — when a move was already decided on this profile
   * entry or a newer one (a redelivered event, the other replica). A seat is taken before the append
   * and given back when the append is refused.
   */
  async function move(
    g: GroupDoc,
    memberId: string,
    want: 'IN' | 'OUT',
    by: MoveEntry['by'],
    profileSeq: number,
    eventId: string | null = null,
  ): Promise<Move> {
    const acct = account(g._id, memberId);
    const now0 = await state(g._id, memberId);
    const stale = (h: MoveEntry | null) => by === 'RULE' && h !== null && h.profileSeq >= profileSeq;
    if (stale(now0.head)) return 'STALE';
    const isIn = (h: MoveEntry | null) => (h ? h.op === 'JOINED' : now0.in);
    if (want === 'IN') {
      if (now0.in) {
        await settleRow(g._id, memberId, eventId);
        return 'SAME';
      }
      const ticket = randomUUID();
      if (g.capacity) await models.SeatHold.create({ _id: ticket, groupId: g._id, memberId, at: now() });
      const done = () => (g.capacity ? models.SeatHold.deleteOne({ _id: ticket }) : null);
      const seat = g.capacity ? await takeSeat(g._id, g.capacity, memberId, ticket) : null;
      if (g.capacity && !seat) {
        await done();
        return 'FULL';
      }
      const at = now();
      const entry = await appendToLedger(models.Move, acct, (h) =>
        isIn(h) || stale(h)
          ? null
          : {
              op: 'JOINED' as const,
              by,
              seat,
              ticket: seat ? ticket : null,
              profileSeq: Math.max(profileSeq, h?.profileSeq ?? 0),
              eventId,
              at,
              outbox: moveEvent('JOINED', g._id, memberId, by, eventId, at),
            },
      );
      if (!entry) {
        await freeSeat(g._id, seat, ticket);
        await done();
        return 'SAME';
      }
      await done();
      kick();
      await settleRow(g._id, memberId, eventId);
      return 'MOVED';
    }
    if (!now0.in) {
      // A leave that crashed after its entry: finish freeing the seat and removing the row.
      if (now0.head?.op === 'LEFT') await freeSeat(g._id, now0.head.seat, now0.head.ticket);
      await settleRow(g._id, memberId);
      return 'SAME';
    }
    const at = now();
    const entry = await appendToLedger(models.Move, acct, (h) =>
      !isIn(h) || stale(h)
        ? null
        : {
            op: 'LEFT' as const,
            by,
            seat: h?.seat ?? null,
            ticket: h?.ticket ?? null,
            profileSeq: Math.max(profileSeq, h?.profileSeq ?? 0),
            eventId,
            at,
            outbox: moveEvent('LEFT', g._id, memberId, by, eventId, at),
          },
    );
    if (!entry) return 'SAME';
    kick();
    await freeSeat(g._id, entry.seat, entry.ticket);
    await settleRow(g._id, memberId);
    return 'MOVED';
  }

  /** Learns a tier or segment change (newest changedAt wins), then moves the member per the rule groups. */
  async function learn(
    memberId: string,
    eventId: string,
    change: { tier: string; at: Date } | { segment: string; at: Date },
  ): Promise<void> {
    const entry = await appendToLedger(models.Profile, `profile:${memberId}`, (h) => {
      const known = { tier: h?.tier ?? null, tierAt: h?.tierAt ?? null, segment: h?.segment ?? null, segmentAt: h?.segmentAt ?? null };
      if ('tier' in change) {
        if (!supersedes(known.tier, known.tierAt, change.tier, change.at)) return null;
        return { ...known, tier: change.tier, tierAt: change.at, eventId, at: now() };
      }
      if (!supersedes(known.segment, known.segmentAt, change.segment, change.at)) return null;
      return { ...known, segment: change.segment, segmentAt: change.at, eventId, at: now() };
    });
    const head = entry ?? (await profileOf(memberId));
    // Older or repeated news: nothing to move, unless this event's entry is the head (a retry after a crash).
    if (!head || (!entry && head.eventId !== eventId)) return;
    const groups = await core.Group.find({ 'policy.kind': { $in: ['BY_TIER', 'BY_SEGMENT'] } }).lean<GroupDoc[]>();
    for (const g of groups) {
      const fits = matchesRule(g, head);
      if (!fits && !g.autoLeave) continue;
      const result = await move(g, memberId, fits ? 'IN' : 'OUT', 'RULE', head.seq, eventId);
      if (result === 'FULL') logger.warn({ groupId: g._id, memberId, eventId }, 'rule group full: member not moved in');
    }
  }

  async function isMember(groupId: string, memberId: string): Promise<boolean> {
    return (await state(groupId, memberId)).in;
  }

  /** Staff, or the group's operator (社群运营官). */
  async function requireOperator(viewer: Viewer | null, groupId: string): Promise<Viewer> {
    const v = requireViewer(viewer);
    if (isStaff(v)) return v;
    if (await models.Operator.exists({ _id: account(groupId, v.id) })) return v;
    throw forbidden("Only staff and the group's operator can do this");
  }

  async function poll(pollId: string): Promise<PollDoc> {
    const p = await models.Poll.findById(pollId).lean<PollDoc>();
    if (!p) throw notFound('Poll');
    return p;
  }

  const manualProfileSeq = async (memberId: string) => (await profileOf(memberId))?.seq ?? 0;

  /**
   * Gives back the seats of joins that crashed between taking a seat and deciding (their hold is
   * older than SEAT_HOLD_STALE_MS): a seat still held by the ticket is freed unless the member's
   * move head is the JOINED entry that took it.
   */
  async function sweepSeatHolds(at: Date): Promise<Record<string, number>> {
    const stale = await models.SeatHold.find({ at: { $lt: new Date(at.getTime() - SEAT_HOLD_STALE_MS) } })
      .limit(SEAT_SWEEP_BATCH)
      .lean();
    let freed = 0;
    for (const hold of stale) {
      const head = await ledgerHead(models.Move, account(hold.groupId, hold.memberId));
      if (!(head?.op === 'JOINED' && head.ticket === hold._id)) {
        const seats = await models.Seat.find({ ticket: hold._id }, { accountId: 1 }).lean();
        for (const s of seats) {
          const before = await ledgerHead(models.Seat, s.accountId);
          if (before?.ticket !== hold._id) continue;
          await freeSeat(hold.groupId, Number(s.accountId.slice(s.accountId.lastIndexOf(':') + 1)), hold._id);
          freed++;
        }
      }
      await models.SeatHold.deleteOne({ _id: hold._id });
    }
    return { seatHoldsSwept: stale.length, seatsFreed: freed };
  }

  return {
    sweepSeatHolds,
    learnTier: (env: EventEnvelope<'membership.tier.changed'>) =>
      learn(env.data.memberId, env.id, { tier: env.data.to, at: new Date(env.data.changedAt) }),
    learnSegment: (env: EventEnvelope<'membership.segment.changed'>) =>
      learn(env.data.memberId, env.id, { segment: env.data.to, at: new Date(env.data.changedAt) }),

    /** Staff set a group's type, rules, capacity and join policy (settings: the last save wins). */
    async configureGroup(viewer: Viewer | null, groupId: string, input: ConfigureGroupInput): Promise<GroupDoc> {
      requireRole(viewer, 'STAFF');
      const g = await group(groupId);
      const set: Partial<GroupDoc> = {};
      if (input.type != null) {
        if (!(GROUP_TYPES as readonly string[]).includes(input.type)) throw badInput('Unknown group type', 'type');
        set.type = input.type;
      }
      if (input.rules != null) set.rules = text(input.rules, 'rules', GROUP_LIMITS.rules, { min: 0 });
      if (input.capacity !== undefined) {
        const c = input.capacity;
        if (c !== null && (!Number.isInteger(c) || c < 1 || c > GROUP_LIMITS.capacity))
          throw badInput(`Capacity must be 1 to ${GROUP_LIMITS.capacity}`, 'capacity');
        // Seats are numbered 1..capacity: shrinking keeps the members already in, it only stops new joins past it.
        set.capacity = c;
      }
      if (input.joinPolicy != null) {
        const kind = input.joinPolicy;
        if (!(POLICY_KINDS as readonly string[]).includes(kind)) throw badInput('Unknown join policy', 'joinPolicy');
        if (kind === 'BY_TIER' && !(TIERS as readonly string[]).includes(input.minTier ?? ''))
          throw badInput(`minTier must be one of ${TIERS.join(', ')}`, 'minTier');
        const segments = [...new Set(input.segments ?? [])];
        if (kind === 'BY_SEGMENT' && (!segments.length || segments.some((s) => !(MemberSegment.options as readonly string[]).includes(s))))
          throw badInput(`segments must be some of ${MemberSegment.options.join(', ')}`, 'segments');
        set.policy = { kind, ...(kind === 'BY_TIER' ? { minTier: input.minTier } : {}), ...(kind === 'BY_SEGMENT' ? { segments } : {}) };
      }
      if (input.autoLeave != null) set.autoLeave = input.autoLeave;
      await core.Group.updateOne({ _id: groupId }, { $set: set });
      return { ...g, ...set };
    },

    /** A member joins an OPEN group, or a rule group they match; a full group is CONFLICT (reason FULL), nothing written. */
    async join(viewer: Viewer | null, groupId: string): Promise<GroupDoc> {
      const v = requireRole(viewer, 'CUSTOMER');
      const g = await group(groupId);
      const kind = g.policy?.kind ?? 'OPEN';
      if (kind === 'INVITE_ONLY') throw forbidden('This group is by invitation only');
      if (kind !== 'OPEN' && !matchesRule(g, await profileOf(v.id))) throw forbidden("You don't match this group's rule");
      if ((await move(g, v.id, 'IN', 'MEMBER', await manualProfileSeq(v.id))) === 'FULL') throw conflict('This group is full', 'FULL');
      return g;
    },

    /** A member leaves a group they are in (their seat is freed); not being in it is CONFLICT (reason NOT_MEMBER). */
    async leave(viewer: Viewer | null, groupId: string): Promise<GroupDoc> {
      const v = requireViewer(viewer);
      const g = await group(groupId);
      if (!(await isMember(groupId, v.id))) throw conflict('Not a member of this group', 'NOT_MEMBER');
      await move(g, v.id, 'OUT', 'MEMBER', await manualProfileSeq(v.id));
      return g;
    },

    /** Staff add a member whatever the policy (INVITE_ONLY groups); capacity still holds. */
    async addMember(viewer: Viewer | null, groupId: string, memberId: string): Promise<GroupDoc> {
      requireRole(viewer, 'STAFF');
      const g = await group(groupId);
      if (!Types.ObjectId.isValid(memberId)) throw badInput('Invalid member id', 'memberId');
      if ((await move(g, memberId, 'IN', 'STAFF', await manualProfileSeq(memberId))) === 'FULL')
        throw conflict('This group is full', 'FULL');
      return g;
    },

    async assignOperator(viewer: Viewer | null, groupId: string, memberId: string): Promise<GroupDoc> {
      const v = requireRole(viewer, 'STAFF');
      const g = await group(groupId);
      if (!Types.ObjectId.isValid(memberId)) throw badInput('Invalid member id', 'memberId');
      await claimOnce(models.Operator, { _id: account(groupId, memberId), groupId, memberId, by: v.id, at: now() });
      return g;
    },

    async operators(groupId: string): Promise<string[]> {
      return (await models.Operator.find({ groupId }).sort({ at: 1 }).lean()).map((o) => o.memberId);
    },

    /** The pinned announcement: a new head of the group's announcement ledger. */
    async pin(viewer: Viewer | null, groupId: string, body: string): Promise<GroupDoc> {
      const v = await requireOperator(viewer, groupId);
      const g = await group(groupId);
      const clean = text(body, 'body', GROUP_LIMITS.announcement);
      const at = now();
      await appendToLedger(models.Announcement, groupId, () => ({ body: clean, by: v.id, at }));
      return g;
    },

    announcement: (groupId: string) => ledgerHead(models.Announcement, groupId),

    async createPoll(viewer: Viewer | null, input: CreatePollInput): Promise<PollDoc> {
      const v = await requireOperator(viewer, input.groupId);
      await group(input.groupId);
      const question = text(input.question, 'question', GROUP_LIMITS.question);
      const options = input.options.map((o) => text(o, 'options', GROUP_LIMITS.option));
      if (options.length < GROUP_LIMITS.minOptions || options.length > GROUP_LIMITS.maxOptions)
        throw badInput('A poll has 2 to 10 options', 'options');
      if (new Set(options).size !== options.length) throw badInput('Options must differ', 'options');
      const closesAt = new Date(input.closesAt);
      if (Number.isNaN(closesAt.getTime()) || closesAt <= now()) throw badInput('closesAt must be a future date-time', 'closesAt');
      if (options.some((o) => charCount(o) < 1)) throw badInput('Empty option', 'options');
      const doc: PollDoc = {
        _id: new Types.ObjectId().toHexString(),
        groupId: input.groupId,
        question,
        options,
        closesAt,
        by: v.id,
        createdAt: now(),
      };
      await models.Poll.create(doc);
      return doc;
    },

    /** One vote per member (the `${pollId}:${memberId}` claim): a second one is CONFLICT (reason ALREADY_VOTED). */
    async vote(viewer: Viewer | null, pollId: string, option: number): Promise<PollDoc> {
      const v = requireViewer(viewer);
      const p = await poll(pollId);
      if (!Number.isInteger(option) || option < 0 || option >= p.options.length) throw badInput('No such option', 'option');
      if (!(await isMember(p.groupId, v.id))) throw forbidden('Only group members can vote');
      if (now() >= p.closesAt) throw conflict('This poll is closed', 'CLOSED');
      if (!(await claimOnce(models.Vote, { _id: `${pollId}:${v.id}`, pollId, memberId: v.id, option, at: now() })))
        throw conflict('You already voted in this poll', 'ALREADY_VOTED');
      return p;
    },

    /** A poll, for its group's members, operators and staff. */
    async readPoll(viewer: Viewer | null, pollId: string): Promise<PollDoc> {
      const v = requireViewer(viewer);
      const p = await poll(pollId);
      if (isStaff(v) || (await isMember(p.groupId, v.id)) || (await models.Operator.exists({ _id: account(p.groupId, v.id) }))) return p;
      throw forbidden("Only the group's members can see its polls");
    },

    /** Votes per option, counted from the vote claims (never a counter). */
    async results(p: PollDoc): Promise<{ index: number; text: string; votes: number }[]> {
      const rows = await models.Vote.aggregate<{ _id: number; n: number }>([
        { $match: { pollId: p._id } },
        { $group: { _id: '$option', n: { $sum: 1 } } },
      ]);
      const by = new Map(rows.map((r) => [r._id, r.n]));
      return p.options.map((t, index) => ({ index, text: t, votes: by.get(index) ?? 0 }));
    },

    isMember,
    requireOperator,
  };
}
export type GroupsService = ReturnType<typeof createGroupsService>;
