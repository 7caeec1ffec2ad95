import { randomUUID } from 'node:crypto';
import { Types } from 'mongoose';
import {
  AppError,
  badInput,
  claimOnce,
  isDuplicateKey,
  isObjectId,
  localDate,
  notFound,
  optionalText,
  outboxRecord,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  sha256,
  type Viewer,
} from '@flywheel/service-kit';
import { SHARE_CHANNELS, SHARE_TARGET_KINDS, type ShareChannel, type ShareDoc, type ShareModels, type ShareTargetKind } from './model';

export const SHARE_LIMITS = {
  /** Shares per member per local day; the next one is RATE_LIMITED (reason DAILY_SHARE_LIMIT). */
  perDay: 50,
  /** A target's id: an ObjectId for products, articles and live rooms, a short token for groups and pages. */
  targetId: 64,
  idempotencyKey: 100,
} as const;

/** A frontend-generated anonymous id (a UUID, a nanoid): no `:` (it is part of the click's key), no spaces. */
const VISITOR_ID = /^[A-Za-z0-9_-]{8,64}$/;
/** Group ids include the fixed `welcome`; page ids are short tokens. */
const TOKEN_ID = new RegExp(`^[A-Za-z0-9][A-Za-z0-9_-]{0,${SHARE_LIMITS.targetId - 1}}$`);
const OBJECT_ID_TARGETS: readonly ShareTargetKind[] = ['PRODUCT', 'ARTICLE', 'LIVE_ROOM'];

export interface CreateShareLinkInput {
  target: { kind: string; id: string };
  channel: string;
  idempotencyKey?: string | null;
}

/** What `ShareStats` resolves from: the figures and the member's id (the campaigns module adds its stages by it). */
export interface StatsShape {
  memberId: string;
  shares: number;
  clicks: number;
}

/** What `ShareFunnel` resolves from: the figures and the member's id (membership owns the Member). */
export interface FunnelShape {
  memberId: string;
  shares: number;
  clicks: number;
  visitors: number;
}

export interface ShareDeps {
  models: ShareModels;
  /** The core's invite codes: a sharer without one gets one (idempotent per member). */
  issueInviteCode: (memberId: string) => Promise<{ code: string }>;
  kick: () => void;
  now: () => Date;
  /** The zone of the daily share limit. */
  timeZone: string;
}

/** The parameters a frontend appends to the target's own path (it owns the host and the path). */
export const shareQuery = (share: Pick<ShareDoc, '_id' | 'code'>) => `?share=${share._id}&invite=${share.code}`;

function validTarget(target: CreateShareLinkInput['target']): { kind: ShareTargetKind; id: string } {
  const kind = target.kind as ShareTargetKind;
  if (!SHARE_TARGET_KINDS.includes(kind)) throw badInput('Unknown share target kind', 'target.kind');
  const id = (target.id ?? '').trim();
  const ok = OBJECT_ID_TARGETS.includes(kind) ? isObjectId(id) : TOKEN_ID.test(id);
  if (!ok) throw badInput(`target.id is not the id of a ${kind.toLowerCase().replace('_', ' ')}`, 'target.id');
  return { kind, id: OBJECT_ID_TARGETS.includes(kind) ? id.toLowerCase() : id };
}

function validChannel(raw: string): ShareChannel {
  if (!SHARE_CHANNELS.includes(raw as ShareChannel)) throw badInput('Unknown share channel', 'channel');
  return raw as ShareChannel;
}

const dailyLimit = () =>
  new AppError('RATE_LIMITED', `At most ${SHARE_LIMITS.perDay} shares a day; try again tomorrow`, {
    reason: 'DAILY_SHARE_LIMIT',
    limit: SHARE_LIMITS.perDay,
  });

export function createShareService(deps: ShareDeps) {
  const { models, now, kick } = deps;

  /** The day's quota as claims: the first free slot `memberId:day:n`, n ≤ the limit, taken by a unique insert. */
  async function insertInSlot(doc: Omit<ShareDoc, 'slot'>, replayOf: string | null): Promise<ShareDoc> {
    const taken = await models.Share.countDocuments({ memberId: doc.memberId, day: doc.day });
    for (let n = taken + 1; n <= SHARE_LIMITS.perDay; n++) {
      const share: ShareDoc = { ...doc, slot: `${doc.memberId}:${doc.day}:${n}` };
      try {
        await models.Share.create(share);
        kick();
        return share;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        // A replay racing the first call: the first one's share is the answer.
        const first = replayOf ? await models.Share.findById(replayOf).lean<ShareDoc>() : null;
        if (first) return first;
      }
    }
    throw dailyLimit();
  }

  return {
    /**
     * Records a share and returns its link. Everything is checked before anything is written; a
     * replay of the idempotency key returns the first share (its id is derived from the key).
     */
    async createShareLink(viewer: Viewer | null, input: CreateShareLinkInput): Promise<ShareDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const target = validTarget(input.target);
      const channel = validChannel(input.channel);
      const key = optionalText(input.idempotencyKey, 'idempotencyKey', SHARE_LIMITS.idempotencyKey);
      const id = key ? sha256(`createShareLink\0${memberId}\0${key}`).slice(0, 24) : new Types.ObjectId().toHexString();
      if (key) {
        const first = await models.Share.findById(id).lean<ShareDoc>();
        if (first) return first;
      }
      const at = now();
      const day = localDate(at, deps.timeZone);
      const { code } = await deps.issueInviteCode(memberId);
      const data = { shareId: id, memberId, targetKind: target.kind, targetId: target.id, channel, sharedAt: at.toISOString() };
      return insertInSlot(
        {
          _id: id,
          memberId,
          code,
          targetKind: target.kind,
          targetId: target.id,
          channel,
          day,
          at,
          outbox: outboxRecord('referral.share.created', data, randomUUID(), at),
        },
        key ? id : null,
      );
    },

    /**
     * A visitor opened a shared link: counted once per visitor and share (the claim
     * `shareId:visitorId`), never when the signed-in sharer opens their own link.
     */
    async recordShareClick(viewer: Viewer | null, rawShareId: string, rawVisitorId: string) {
      const shareId = requireObjectId(rawShareId, 'shareId').toLowerCase();
      const visitorId = (rawVisitorId ?? '').trim();
      if (!VISITOR_ID.test(visitorId)) throw badInput('visitorId must be 8 to 64 letters, digits, - or _', 'visitorId');
      const share = await models.Share.findById(shareId, { memberId: 1 }).lean<Pick<ShareDoc, '_id' | 'memberId'>>();
      if (!share) throw notFound('Share');
      const viewerId = viewer?.roles.includes('CUSTOMER') ? viewer.id : undefined;
      if (viewerId === share.memberId) return { shareId, counted: false };
      const counted = await claimOnce(models.ShareClick, {
        _id: `${shareId}:${visitorId}`,
        shareId,
        sharerId: share.memberId,
        visitorId,
        ...(viewerId ? { viewerId } : {}),
        at: now(),
      });
      return { shareId, counted };
    },

    /** The member's shares and the distinct visitors' clicks on them (self or staff). */
    async statsOf(viewer: Viewer | null, memberId: string): Promise<StatsShape> {
      requireSelfOrStaff(viewer, memberId);
      const [shares, clicks] = await Promise.all([
        models.Share.countDocuments({ memberId }),
        models.ShareClick.countDocuments({ sharerId: memberId }),
      ]);
      return { memberId, shares, clicks };
    },

    /**
     * Staff: a member's share funnel, counted from the share and click rows. The later stages
     * (registrations with the sharer's code, those invitees' first paid orders) are the campaigns
     * module's fields on `ShareFunnel` and `ShareStats`.
     */
    async funnel(viewer: Viewer | null, rawMemberId: string): Promise<FunnelShape> {
      requireRole(viewer, 'STAFF');
      const memberId = requireObjectId(rawMemberId, 'memberId');
      const [shares, clicks, visitors] = await Promise.all([
        models.Share.countDocuments({ memberId }),
        models.ShareClick.countDocuments({ sharerId: memberId }),
        models.ShareClick.distinct('visitorId', { sharerId: memberId }),
      ]);
      return { memberId, shares, clicks, visitors: visitors.length };
    },
  };
}

export type ShareService = ReturnType<typeof createShareService>;
