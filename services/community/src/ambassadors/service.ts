import { Types } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  ledgerHead,
  requireRole,
  requireSelfOrStaff,
  text,
  wholeNumber,
  type Viewer,
} from '@flywheel/service-kit';
import type { PostService } from '../posts/service';
import type { AmbassadorEntry, AmbassadorModels, AmbassadorStatus } from './model';

export const AMBASSADOR_LIMITS = { note: 200, reason: 200, minDueDays: 1, maxDueDays: 60 };
const DAY_MS = 86_400_000;

type Body = Omit<AmbassadorEntry, '_id' | 'accountId' | 'seq'>;

const conflict = (message: string, reason: string) => new AppError('CONFLICT', message, { reason });

/**
 * Ambassadors (体验官): members apply, staff approve (with the days the ambassador has to publish a
 * showcase) or revoke. Every move is an append on the member's ledger decided against its head.
 */
export function createAmbassadorService(deps: { models: AmbassadorModels; posts: Pick<PostService, 'hasShowcaseSince'>; now: () => Date }) {
  const { models, now } = deps;

  /** Appends the move `next` builds on the head; a refusal (its reason set by `next`) is CONFLICT. */
  async function move(memberId: string, next: (head: AmbassadorEntry | null) => Body | string): Promise<AmbassadorEntry> {
    let refusal = '';
    const entry = await appendToLedger(models.Entry, memberId, (head) => {
      const out = next(head);
      if (typeof out === 'string') {
        refusal = out;
        return null;
      }
      return out;
    });
    if (!entry) throw conflict(`Not possible while the status is ${refusal}`, refusal);
    return entry as AmbassadorEntry;
  }

  const memberIdOf = (id: string) => {
    if (!Types.ObjectId.isValid(id)) throw badInput('Invalid member id', 'memberId');
    return id;
  };

  return {
    /** A member applies; while APPLIED or APPROVED that is CONFLICT (reason = the status). */
    async apply(viewer: Viewer | null, rawNote: string): Promise<AmbassadorEntry> {
      const v = requireRole(viewer, 'CUSTOMER');
      const note = text(rawNote, 'note', AMBASSADOR_LIMITS.note);
      const at = now();
      return move(v.id, (head) =>
        head && head.status !== 'REVOKED'
          ? head.status
          : { status: 'APPLIED', note, appliedAt: at, approvedAt: null, showcaseDueAt: null, revokedAt: null, reason: null, by: v.id, at },
      );
    },

    /** Staff approve an application; the ambassador owes a showcase within `dueDays` (1 to 60). */
    async approve(viewer: Viewer | null, rawMemberId: string, dueDays: number): Promise<AmbassadorEntry> {
      const v = requireRole(viewer, 'STAFF');
      const memberId = memberIdOf(rawMemberId);
      const days = wholeNumber(dueDays, 'showcaseDueDays', AMBASSADOR_LIMITS.minDueDays, AMBASSADOR_LIMITS.maxDueDays);
      const at = now();
      return move(memberId, (head) => {
        if (!head) return 'NONE';
        if (head.status !== 'APPLIED') return head.status;
        return { ...strip(head), status: 'APPROVED', approvedAt: at, showcaseDueAt: new Date(at.getTime() + days * DAY_MS), by: v.id, at };
      });
    },

    /** Staff revoke an ambassador (or turn down an application), with a reason. */
    async revoke(viewer: Viewer | null, rawMemberId: string, rawReason: string): Promise<AmbassadorEntry> {
      const v = requireRole(viewer, 'STAFF');
      const memberId = memberIdOf(rawMemberId);
      const reason = text(rawReason, 'reason', AMBASSADOR_LIMITS.reason);
      const at = now();
      return move(memberId, (head) => {
        if (!head) return 'NONE';
        if (head.status === 'REVOKED') return head.status;
        return { ...strip(head), status: 'REVOKED', revokedAt: at, reason, by: v.id, at };
      });
    },

    /** The member's status (themselves or staff); null when they never applied. */
    async status(viewer: Viewer | null, memberId: string): Promise<AmbassadorEntry | null> {
      requireSelfOrStaff(viewer, memberId);
      return ledgerHead(models.Entry, memberId);
    },

    /** Staff: the current ambassadors (heads APPROVED), most recently approved first. */
    async list(viewer: Viewer | null): Promise<AmbassadorEntry[]> {
      requireRole(viewer, 'STAFF');
      const ids = new Set((await models.Entry.find({ status: 'APPROVED' }, { accountId: 1 }).lean()).map((e) => e.accountId));
      const heads = await Promise.all([...ids].map((id) => ledgerHead(models.Entry, id)));
      return heads
        .filter((h): h is AmbassadorEntry => h?.status === 'APPROVED')
        .sort((a, b) => (b.approvedAt?.getTime() ?? 0) - (a.approvedAt?.getTime() ?? 0));
    },

    /** Whether the member is an ambassador now (the badge on their posts). */
    async isAmbassador(memberId: string): Promise<boolean> {
      return (await ledgerHead(models.Entry, memberId))?.status === 'APPROVED';
    },

    /** An approved ambassador past showcaseDueAt without a showcase published since approval. */
    async overdue(e: AmbassadorEntry): Promise<boolean> {
      if (e.status !== 'APPROVED' || !e.approvedAt || !e.showcaseDueAt || now() <= e.showcaseDueAt) return false;
      return !(await deps.posts.hasShowcaseSince(e.accountId, e.approvedAt));
    },
  };
}
export type AmbassadorService = ReturnType<typeof createAmbassadorService>;

/** The running fields of an entry, to carry into the next one. */
function strip(e: AmbassadorEntry): Body {
  const { status, note, appliedAt, approvedAt, showcaseDueAt, revokedAt, reason, by, at } = e;
  return { status: status as AmbassadorStatus, note, appliedAt, approvedAt, showcaseDueAt, revokedAt, reason, by, at };
}
