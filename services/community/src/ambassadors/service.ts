import { Types } from 'mongoose';
import type { EventData } from '@flywheel/events';
import {
  AppError,
  appendToLedger,
  badInput,
  claimOnce,
  fromBusError,
  ledgerHead,
  requireRole,
  requireSelfOrStaff,
  sha256,
  text,
  wholeNumber,
  type Bus,
  type Viewer,
} from '@flywheel/service-kit';
import type { PostService } from '../posts/service';
import type { AmbassadorEntry, AmbassadorModels, AmbassadorStatus, TrialDoc, TrialStatus, TrialStepDoc } from './model';

export const AMBASSADOR_LIMITS = { note: 200, reason: 200, minDueDays: 1, maxDueDays: 60, key: 128, id: 64 };
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

/** A trial as its ambassador and staff see it: the trial and where its steps have taken it. */
export interface TrialView {
  id: string;
  memberId: string;
  templateId: string;
  couponId: string;
  status: TrialStatus;
  issuedAt: Date;
  orderId: string | null;
  orderedAt: Date | null;
  showcasePostId: string | null;
  showcasedAt: Date | null;
}

/** The trial of one member's idempotency key: the same key for the same member is the same trial. */
export const trialIdFor = (memberId: string, key: string) => sha256(`ambassadorTrial\0${memberId}\0${key}`).slice(0, 32);

function viewOf(trial: TrialDoc, steps: readonly TrialStepDoc[]): TrialView {
  const ordered = steps.find((s) => s.step === 'ORDERED');
  const showcased = steps.find((s) => s.step === 'SHOWCASED');
  return {
    id: trial._id,
    memberId: trial.memberId,
    templateId: trial.templateId,
    couponId: trial.couponId,
    status: showcased ? 'SHOWCASED' : ordered ? 'ORDERED' : 'ISSUED',
    issuedAt: trial.issuedAt,
    orderId: ordered?.orderId ?? null,
    orderedAt: ordered?.at ?? null,
    showcasePostId: showcased?.postId ?? null,
    showcasedAt: showcased?.at ?? null,
  };
}

/**
 * Trial products (体验官试用): staff send an APPROVED ambassador a coupon (a zero-price order
 * through the normal checkout); the trial is ORDERED when the order that used the coupon is paid
 * (`orders.order.paid` names its coupons) and SHOWCASED when the ambassador shows that order.
 * Every step is a claim (`<trialId>:<step>`); the trial document itself is never updated.
 */
export function createTrialService(deps: {
  models: AmbassadorModels;
  bus: Pick<Bus, 'request'>;
  /** The head of a member's ambassador ledger. */
  headOf: (memberId: string) => Promise<AmbassadorEntry | null>;
  now: () => Date;
}) {
  const { models, now } = deps;

  async function views(trials: TrialDoc[]): Promise<TrialView[]> {
    if (!trials.length) return [];
    const steps = await models.TrialStep.find({ trialId: { $in: trials.map((t) => t._id) } }).lean<TrialStepDoc[]>();
    return trials.map((t) =>
      viewOf(
        t,
        steps.filter((s) => s.trialId === t._id),
      ),
    );
  }
  const one = async (trial: TrialDoc) => (await views([trial]))[0]!;

  /** The trial ordered through `orderId` is showcased by `postId`; once. */
  async function showcased(orderId: string, postId: string, at: Date): Promise<void> {
    const ordered = await models.TrialStep.find({ orderId, step: 'ORDERED' }).lean<TrialStepDoc[]>();
    for (const o of ordered) {
      await claimOnce(models.TrialStep, { _id: `${o.trialId}:SHOWCASED`, trialId: o.trialId, step: 'SHOWCASED', orderId, postId, at });
    }
  }

  return {
    /**
     * Staff send an ambassador a trial: the member must be APPROVED now (else CONFLICT, reason = the
     * status, NONE if they never applied). The coupon is granted under the trial's key, so a replay
     * (or a retry after a crash) is the same coupon and the same trial.
     */
    async send(viewer: Viewer | null, input: { memberId: string; couponTemplateId: string; idempotencyKey: string }): Promise<TrialView> {
      const staff = requireRole(viewer, 'STAFF');
      if (!Types.ObjectId.isValid(input.memberId)) throw badInput('Invalid member id', 'memberId');
      const memberId = input.memberId;
      const templateId = text(input.couponTemplateId, 'couponTemplateId', AMBASSADOR_LIMITS.id);
      const key = text(input.idempotencyKey, 'idempotencyKey', AMBASSADOR_LIMITS.key);
      const trialId = trialIdFor(memberId, key);
      const reused = () => new AppError('CONFLICT', 'This idempotency key was already used for another trial', { reason: 'KEY_REUSED' });

      const earlier = await models.Trial.findById(trialId).lean<TrialDoc>();
      if (earlier) {
        if (earlier.templateId !== templateId) throw reused();
        return one(earlier);
      }
      const head = await deps.headOf(memberId);
      if (head?.status !== 'APPROVED') {
        const status = head?.status ?? 'NONE';
        throw conflict(`Only an approved ambassador receives a trial; the member is ${status}`, status);
      }
      const { couponId } = await deps.bus
        .request('membership.coupon.grant', {
          key: `community:trial:${trialId}`,
          memberId,
          templateId,
          reason: 'Ambassador trial (体验官试用)',
        })
        .catch(fromBusError);
      const trial: TrialDoc = { _id: trialId, memberId, templateId, couponId, by: staff.id, issuedAt: now() };
      if (await claimOnce(models.Trial, { ...trial })) return one(trial);
      const first = (await models.Trial.findById(trialId).lean<TrialDoc>())!;
      if (first.templateId !== templateId) throw reused();
      return one(first);
    },

    /** A member's trials, newest first: the member themselves or staff. */
    async ofMember(viewer: Viewer | null, memberId: string): Promise<TrialView[]> {
      requireSelfOrStaff(viewer, memberId);
      return views(await models.Trial.find({ memberId }).sort({ issuedAt: -1 }).limit(100).lean<TrialDoc[]>());
    },

    /** `orders.order.paid`: a trial whose coupon the order used is ORDERED (once), and SHOWCASED if the order was shown already. */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      if (!data.couponIds?.length) return;
      const trials = await models.Trial.find({ couponId: { $in: data.couponIds }, memberId: data.memberId }).lean<TrialDoc[]>();
      for (const t of trials) {
        const at = new Date(data.paidAt);
        await claimOnce(models.TrialStep, {
          _id: `${t._id}:ORDERED`,
          trialId: t._id,
          step: 'ORDERED',
          orderId: data.orderId,
          postId: null,
          at,
        });
      }
      // Claimed above before this read, and a showcase is recorded before it reads the steps:
      // whichever of the two lands second sees the other.
      const seen = trials.length ? await models.OrderShowcase.findById(data.orderId).lean() : null;
      if (seen) await showcased(data.orderId, seen.postId, seen.at);
    },

    /** `community.post.published`: a showcase of an order a trial was ordered through makes it SHOWCASED. */
    async postPublished(data: EventData<'community.post.published'>): Promise<void> {
      if (data.kind !== 'SHOWCASE' || !data.orderId) return;
      const at = new Date(data.publishedAt);
      await claimOnce(models.OrderShowcase, { _id: data.orderId, postId: data.postId, memberId: data.memberId, at });
      const first = (await models.OrderShowcase.findById(data.orderId).lean())!;
      await showcased(data.orderId, first.postId, first.at);
    },
  };
}
export type TrialService = ReturnType<typeof createTrialService>;
