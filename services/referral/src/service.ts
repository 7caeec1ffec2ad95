import { randomInt } from 'node:crypto';
import { Types } from 'mongoose';
import DataLoader from 'dataloader';
import { findByIds, forbidden, isDuplicateKey, isSelfOrStaff, requireViewer, type BaseContext, type Viewer } from '@flywheel/service-kit';
import type { InviteBindingDoc, InviteCodeDoc, Models } from './model';

export interface ReferralDeps {
  models: Models;
  now?: () => Date;
}

/** No 0/O, 1/I/L: a code read aloud or copied from a poster comes out right. */
export const CODE_ALPHABET = '23456789ABCDEFGHJKMNPQRSTUVWXYZ';
export const CODE_LENGTH = 8;
const CODE_PATTERN = new RegExp(`^[${CODE_ALPHABET}]{${CODE_LENGTH}}$`);
const MAX_CODE_ATTEMPTS = 10;

export function generateCode(): string {
  let code = '';
  for (let i = 0; i < CODE_LENGTH; i++) code += CODE_ALPHABET[randomInt(CODE_ALPHABET.length)];
  return code;
}

/** Upper-cases and trims what a person typed; null when it cannot be a code. */
export function normalizeCode(raw: string): string | null {
  const code = raw.trim().toUpperCase();
  return CODE_PATTERN.test(code) ? code : null;
}

export type BindOutcome =
  { status: 'BOUND' | 'ALREADY_BOUND'; binding: InviteBindingDoc } | { status: 'SELF_INVITE' | 'UNKNOWN_CODE'; binding: null };

export function createReferralService(deps: ReferralDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  /**
   * Idempotent per member: the unique memberId makes a repeat (a redelivery, a racing replica)
   * return the code issued first. A duplicate that is not on memberId is a code collision: retry.
   */
  async function issueInviteCode(memberId: string, eventId?: string): Promise<InviteCodeDoc> {
    const existing = await models.InviteCode.findOne({ memberId }).lean<InviteCodeDoc>();
    if (existing) return existing;
    for (let attempt = 1; attempt <= MAX_CODE_ATTEMPTS; attempt++) {
      const doc: InviteCodeDoc = {
        _id: new Types.ObjectId(),
        code: generateCode(),
        memberId,
        createdAt: now(),
        ...(eventId ? { eventId } : {}),
      };
      try {
        await models.InviteCode.create(doc);
        return doc;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const winner = await models.InviteCode.findOne({ memberId }).lean<InviteCodeDoc>();
        if (winner) return winner;
      }
    }
    throw new Error(`no free invite code for member ${memberId} after ${MAX_CODE_ATTEMPTS} attempts`);
  }

  /** Binds the inviter once per invitee; a member's own code never counts. */
  async function bindInviter(inviteeId: string, rawCode: string, eventId?: string): Promise<BindOutcome> {
    const code = normalizeCode(rawCode);
    const owner = code ? await models.InviteCode.findOne({ code }).lean<InviteCodeDoc>() : null;
    if (!code || !owner) return { status: 'UNKNOWN_CODE', binding: null };
    if (owner.memberId === inviteeId) return { status: 'SELF_INVITE', binding: null };
    const binding: InviteBindingDoc = { _id: inviteeId, inviterId: owner.memberId, code, boundAt: now(), ...(eventId ? { eventId } : {}) };
    try {
      await models.InviteBinding.create(binding);
      return { status: 'BOUND', binding };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const first = await models.InviteBinding.findById(inviteeId).lean<InviteBindingDoc>();
      if (!first) throw err;
      return { status: 'ALREADY_BOUND', binding: first };
    }
  }

  return {
    issueInviteCode,
    bindInviter,

    /** A registration: the member's own code first, so a member can never be bound by it. */
    async onMemberRegistered(data: { memberId: string; invitedByCode?: string }, eventId?: string) {
      const inviteCode = await issueInviteCode(data.memberId, eventId);
      const binding = data.invitedByCode ? await bindInviter(data.memberId, data.invitedByCode, eventId) : null;
      return { inviteCode, binding };
    },

    normalizeCode,

    /** A member's referral details are theirs and staff's to see. */
    assertMayReadMember(viewer: Viewer | null, memberId: string): void {
      if (isSelfOrStaff(requireViewer(viewer), memberId)) return;
      throw forbidden("Only the member and staff can see a member's referral details");
    },

    loaders() {
      return {
        codeByCode: new DataLoader<string, InviteCodeDoc | null>(async (codes) => {
          const docs = await models.InviteCode.find({ code: { $in: [...codes] } }).lean<InviteCodeDoc[]>();
          const byCode = new Map(docs.map((d) => [d.code, d]));
          return codes.map((c) => byCode.get(c) ?? null);
        }),
        codeByMember: new DataLoader<string, InviteCodeDoc | null>(async (memberIds) => {
          const docs = await models.InviteCode.find({ memberId: { $in: [...memberIds] } }).lean<InviteCodeDoc[]>();
          const byMember = new Map(docs.map((d) => [d.memberId, d]));
          return memberIds.map((m) => byMember.get(m) ?? null);
        }),
        bindingByInvitee: new DataLoader<string, InviteBindingDoc | null>(async (inviteeIds) => {
          const docs = await findByIds<InviteBindingDoc>(models.InviteBinding, inviteeIds);
          const byId = new Map(docs.map((d) => [d._id, d]));
          return inviteeIds.map((id) => byId.get(id) ?? null);
        }),
        /** Counted from binding rows, never kept as a counter. */
        inviteeCount: new DataLoader<string, number>(async (codes) => {
          const rows = await models.InviteBinding.aggregate<{ _id: string; n: number }>([
            { $match: { code: { $in: [...codes] } } },
            { $group: { _id: '$code', n: { $sum: 1 } } },
          ]);
          const byCode = new Map(rows.map((r) => [r._id, r.n]));
          return codes.map((c) => byCode.get(c) ?? 0);
        }),
      };
    },
  };
}

export type ReferralService = ReturnType<typeof createReferralService>;

/** A member as this service knows one: by key only (membership owns the rest). */
export interface MemberRef {
  id: string;
}

export interface Context extends BaseContext {
  service: ReferralService;
  loaders: ReturnType<ReferralService['loaders']>;
}
