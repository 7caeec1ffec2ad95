import { Types } from 'mongoose';
import type { RequestData } from '@flywheel/events';
import {
  AppError,
  BusRequestError,
  badInput,
  claimOnce,
  createKeyQueue,
  fromBusError,
  isObjectId,
  notFound,
  requireRole,
  wholeNumber,
  type Bus,
  type ErrorCode,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { LiveRoomDoc, Models } from '../model';
import { requireRoomOperator, ROOM_OPERATOR_ROLES, type LiveService } from '../service';
import type { LiveOfferDoc, OfferClaimDoc, OfferModels, OfferUnitDoc } from './model';

export const OFFER_LIMITS = {
  quantity: 100_000,
  perViewerLimit: 20,
  /** A pending claim is retried by the sweep once it is this old (a live request may still be at it). */
  sweepAfterMs: 30_000,
  sweepBatch: 100,
  /** Offers a room lists at most. */
  roomOffers: 100,
} as const;

/** Who may operate some room's offers and lotteries (checked before anything is read): staff and hosts. */
export function requireOperator(viewer: Viewer | null): Viewer {
  return requireRole(viewer, ROOM_OPERATOR_ROLES);
}

/**
 * The room's id if it exists (NOT_FOUND otherwise) and the viewer operates it: staff, or the host
 * assigned to it (`requireRoomOperator`, FORBIDDEN otherwise).
 */
export async function requireRoom(core: Models, roomId: string, viewer: Viewer | null): Promise<string> {
  const room = isObjectId(roomId)
    ? await core.LiveRoom.findById(roomId, { hostAccountId: 1 }).lean<Pick<LiveRoomDoc, 'hostAccountId'>>()
    : null;
  if (!room) throw notFound('Live room');
  requireRoomOperator(viewer, room);
  return roomId;
}

/** A membership coupon template about to be promised: unknown NOT_FOUND, no longer issued BAD_USER_INPUT. */
export async function couponTemplate(bus: Bus, templateId: string): Promise<{ templateId: string; name: string }> {
  const t = await bus.request('membership.coupon.template', { templateId }).catch(fromBusError);
  if (!t.active) throw badInput('This coupon template is no longer issued', 'templateId');
  return { templateId: t.templateId, name: t.name };
}

/** Membership's refusals: final for a grant key (the template stopped, expired or ran out; the member's limit). */
const FINAL_REFUSALS = new Set<string>(['BAD_USER_INPUT', 'NOT_FOUND', 'FORBIDDEN', 'CONFLICT', 'OUT_OF_STOCK']);

export type GrantResult =
  { kind: 'GRANTED'; couponId: string } | { kind: 'REFUSED'; code: ErrorCode; message: string } | { kind: 'RETRY'; error: unknown };

/**
 * `membership.coupon.grant`, idempotent on `key`: a retry with the same key returns the same
 * coupon. A refusal is final for the key; no answer (or a fault) is worth retrying.
 */
export async function grantCoupon(bus: Bus, req: RequestData<'membership.coupon.grant'>): Promise<GrantResult> {
  try {
    return { kind: 'GRANTED', couponId: (await bus.request('membership.coupon.grant', req)).couponId };
  } catch (err) {
    if (err instanceof BusRequestError && FINAL_REFUSALS.has(err.code)) {
      return { kind: 'REFUSED', code: err.code as ErrorCode, message: err.message };
    }
    return { kind: 'RETRY', error: err };
  }
}

export interface AttachCouponOfferInput {
  roomId: string;
  templateId: string;
  quantity: number;
  perViewerLimit?: number | null;
  startsAt?: Date | null;
  endsAt?: Date | null;
}

export interface CouponClaim {
  offer: LiveOfferDoc;
  /** The member's n-th claim of the offer. */
  n: number;
  couponId: string;
}

const conflict = (msg: string, reason?: string) => new AppError('CONFLICT', msg, reason ? { reason } : {});

/** Whether an offer applies at `at`: not ended, and within its window if it has one. */
export function offerActive(offer: LiveOfferDoc, at: Date): boolean {
  if (offer.endedAt) return false;
  if (offer.startsAt && offer.startsAt > at) return false;
  return !(offer.endsAt && offer.endsAt <= at);
}

export function createOfferService(deps: {
  models: OfferModels;
  core: Models;
  rooms: LiveService;
  bus: Bus;
  now: () => Date;
  logger: Logger;
  announce: (roomId: string, feedId: string) => void;
}) {
  const { models, core, rooms, bus, now, logger } = deps;
  const { OfferClaim, OfferUnit } = models;
  // One member's claims of one offer run one at a time in this replica (and one offer's unit
  // takes): an optimisation only, the unique records decide across replicas.
  const perViewer = createKeyQueue();
  const perOffer = createKeyQueue();
  /** Highest unit this process saw taken per offer (units are taken contiguously from 1). */
  const unitHints = new Map<string, number>();

  const record = (id: string) => OfferClaim.findById(id).lean<OfferClaimDoc>();
  const project = (claimId: string, state: 'GRANTED' | 'VOID') => OfferClaim.updateOne({ _id: claimId }, { $set: { state } });

  async function offerOrThrow(id: string): Promise<LiveOfferDoc> {
    const offer = await models.LiveOffer.findById(id).lean<LiveOfferDoc>();
    if (!offer) throw notFound('Live offer');
    return offer;
  }

  /** Units given back by void claims that had taken one: each raises the offer's cap by one. */
  const returnedUnits = (offerId: string) => OfferClaim.countDocuments({ offerId, kind: 'VOID', unit: { $ne: null } });

  /**
   * Takes the next unit of the quantity for a claim; null when none is left. Units are unique
   * inserts `${offerId}:q:${k}` taken contiguously from 1, and k never exceeds the quantity plus
   * the units given back as read before: whoever races, the claims holding a unit and not void
   * never exceed the quantity.
   */
  function takeUnit(offer: LiveOfferDoc & { kind: 'COUPON' }, claimId: string): Promise<number | null> {
    return perOffer.run(offer._id, async () => {
      const cap = offer.quantity + (await returnedUnits(offer._id));
      const known = Math.max(unitHints.get(offer._id) ?? 0, await OfferUnit.countDocuments({ offerId: offer._id }));
      for (let k = known + 1; k <= cap; k++) {
        if (await claimOnce(OfferUnit, { _id: `${offer._id}:q:${k}`, offerId: offer._id, claimId, unit: k, at: now() })) {
          unitHints.set(offer._id, k);
          return k;
        }
        // A duplicate: unit k is taken, or this claim already holds one (settled at once elsewhere).
        const mine = await OfferUnit.findOne({ claimId }).lean<OfferUnitDoc>();
        if (mine) return mine.unit;
        unitHints.set(offer._id, k);
      }
      return null;
    });
  }

  /**
   * Brings a claim to its end: its unit (taken now, or the one an earlier attempt took), then the
   * coupon from membership under the claim's grant key. Sold out or refused by membership: the
   * claim is void (it no longer counts against the member's limit, and a unit it held is given
   * back) and the refusal is thrown. Membership not answering: the claim stays pending — claiming
   * again (or the sweep) retries the same key, which can only ever give one coupon.
   */
  async function settle(offer: LiveOfferDoc & { kind: 'COUPON' }, claim: OfferClaimDoc & { kind: 'VIEWER' }): Promise<string> {
    const claimId = claim._id;
    const held = await OfferUnit.findOne({ claimId }).lean<OfferUnitDoc>();
    const unit = held ? held.unit : await takeUnit(offer, claimId);
    if (unit === null) {
      await claimOnce(OfferClaim, {
        _id: `void:${claimId}`,
        offerId: offer._id,
        claimId,
        kind: 'VOID',
        unit: null,
        reason: 'SOLD_OUT',
        at: now(),
      });
      await project(claimId, 'VOID');
      throw new AppError('OUT_OF_STOCK', 'This live coupon is sold out', { reason: 'SOLD_OUT' });
    }
    const result = await grantCoupon(bus, {
      key: `live:offer:${offer._id}:${claim.memberId}:${claim.n}`,
      memberId: claim.memberId,
      templateId: offer.templateId,
      reason: `Live room ${offer.roomId} coupon`,
    });
    if (result.kind === 'GRANTED') {
      await claimOnce(OfferClaim, {
        _id: `grant:${claimId}`,
        offerId: offer._id,
        claimId,
        kind: 'GRANT',
        couponId: result.couponId,
        at: now(),
      });
      await project(claimId, 'GRANTED');
      return result.couponId;
    }
    if (result.kind === 'REFUSED') {
      await claimOnce(OfferClaim, {
        _id: `void:${claimId}`,
        offerId: offer._id,
        claimId,
        kind: 'VOID',
        unit,
        reason: result.code,
        at: now(),
      });
      await project(claimId, 'VOID');
      throw new AppError(result.code, result.message);
    }
    logger.warn({ err: result.error, claimId }, 'live coupon grant not answered; the claim stays pending');
    throw new AppError('UNAVAILABLE', 'The coupon could not be granted just now: your claim is kept and will be granted shortly');
  }

  /** The claim's end if it has one: its coupon, or void (null). Undefined while pending. */
  async function outcome(claimId: string): Promise<string | null | undefined> {
    const grant = await record(`grant:${claimId}`);
    if (grant?.kind === 'GRANT') return grant.couponId;
    return (await record(`void:${claimId}`)) ? null : undefined;
  }

  return {
    /**
     * An operator attaches a live-exclusive coupon to a SCHEDULED or LIVE room: a membership
     * template (checked there: unknown NOT_FOUND, no longer issued BAD_USER_INPUT), a quantity,
     * a per-viewer limit (default 1) and optionally a window.
     */
    async attachCouponOffer(viewer: Viewer | null, input: AttachCouponOfferInput): Promise<LiveOfferDoc> {
      const operator = requireOperator(viewer);
      const quantity = wholeNumber(input.quantity, 'quantity', 1, OFFER_LIMITS.quantity);
      const perViewerLimit = wholeNumber(input.perViewerLimit ?? 1, 'perViewerLimit', 1, Math.min(OFFER_LIMITS.perViewerLimit, quantity));
      const at = now();
      const startsAt = input.startsAt ?? null;
      const endsAt = input.endsAt ?? null;
      for (const [field, d] of [
        ['startsAt', startsAt],
        ['endsAt', endsAt],
      ] as const) {
        if (d && (!(d instanceof Date) || Number.isNaN(d.getTime()))) throw badInput('Invalid time', field);
      }
      if (startsAt && endsAt && !(startsAt < endsAt)) throw badInput('startsAt must be before endsAt', 'endsAt');
      if (endsAt && endsAt <= at) throw badInput('endsAt must be in the future', 'endsAt');
      if (!isObjectId(input.templateId)) throw notFound('Coupon template');
      const roomId = await requireRoom(core, input.roomId, viewer);
      const status = await rooms.statusOf(roomId);
      if (status !== 'SCHEDULED' && status !== 'LIVE')
        throw conflict(`The room is ${status}: offers are attached before or while it is LIVE`);
      const template = await couponTemplate(bus, input.templateId);
      const doc: LiveOfferDoc = {
        _id: new Types.ObjectId().toHexString(),
        roomId,
        kind: 'COUPON',
        templateId: template.templateId,
        name: template.name,
        quantity,
        perViewerLimit,
        startsAt,
        endsAt,
        endedAt: null,
        createdBy: operator.id,
        createdAt: at,
      };
      await models.LiveOffer.create(doc);
      deps.announce(roomId, `offer:${doc._id}`);
      return doc;
    },

    /**
     * A signed-in member claims a live coupon while the room is LIVE and the offer applies. The
     * member's claims are unique records `${offerId}:${memberId}:${n}` (void ones aside, at most
     * the per-viewer limit); a pending one (membership did not answer) is retried first, under
     * its own grant key, before a new one is taken.
     */
    async claimCoupon(viewer: Viewer | null, offerId: string): Promise<CouponClaim> {
      const member = requireRole(viewer, 'CUSTOMER');
      const offer = await offerOrThrow(offerId);
      if (offer.kind !== 'COUPON') throw badInput('This offer is not a coupon', 'offerId');
      const at = now();
      if (offer.endedAt) throw conflict('This live coupon has ended', 'ENDED');
      if (offer.startsAt && offer.startsAt > at) throw conflict('This live coupon has not started yet', 'NOT_STARTED');
      if (offer.endsAt && offer.endsAt <= at) throw conflict('This live coupon has ended', 'ENDED');
      const status = await rooms.statusOf(offer.roomId);
      if (status !== 'LIVE') throw conflict(`The room is ${status}: live coupons are claimed while it is LIVE`, 'ROOM_NOT_LIVE');

      return perViewer.run(`${offer._id}:${member.id}`, async () => {
        let live = 0;
        for (let n = 1; n <= offer.perViewerLimit + 1000; n++) {
          const claimId = `${offer._id}:${member.id}:${n}`;
          let claim = await record(claimId);
          if (!claim) {
            if (live >= offer.perViewerLimit) break;
            const fresh: OfferClaimDoc = {
              _id: claimId,
              offerId: offer._id,
              claimId,
              kind: 'VIEWER',
              memberId: member.id,
              n,
              state: 'PENDING',
              at: now(),
            };
            if (await claimOnce(OfferClaim, fresh as unknown as Record<string, unknown>)) {
              return { offer, n, couponId: await settle(offer, fresh) };
            }
            claim = await record(claimId); // another request of the member took it first
            if (!claim) throw new Error(`offer claim ${claimId} vanished`);
          }
          if (claim.kind !== 'VIEWER') continue;
          const end = await outcome(claimId);
          if (end === null) continue; // void: does not count
          if (end === undefined) return { offer, n, couponId: await settle(offer, claim) }; // pending: retry it
          live++;
          if (live >= offer.perViewerLimit) break;
        }
        throw new AppError('BAD_USER_INPUT', `Limit reached: at most ${offer.perViewerLimit} of this live coupon per viewer`, {
          reason: 'LIMIT_REACHED',
          field: 'offerId',
        });
      });
    },

    /**
     * An operator starts a flash deal in a LIVE room: a catalog flash sale (created by staff with
     * createFlashSale) linked to the room and announced. Its units are still sold only through
     * catalog's flash gate. Starting it again returns the same offer; an ended flash sale is CONFLICT.
     */
    async startFlashDeal(viewer: Viewer | null, roomId: string, flashSaleId: string): Promise<LiveOfferDoc> {
      const operator = requireOperator(viewer);
      if (!isObjectId(flashSaleId)) throw notFound('Flash sale');
      await requireRoom(core, roomId, viewer);
      const status = await rooms.statusOf(roomId);
      if (status !== 'LIVE') throw conflict(`The room is ${status}: a flash deal starts while it is LIVE`, 'ROOM_NOT_LIVE');
      const flash = await bus.request('catalog.flash.describe', { flashSaleId }).catch(fromBusError);
      const at = now();
      const endsAt = new Date(flash.endsAt);
      if (endsAt <= at) throw conflict('This flash sale has ended', 'ENDED');
      const doc: LiveOfferDoc = {
        _id: `flash:${roomId}:${flash.flashSaleId}`,
        roomId,
        kind: 'FLASH_DEAL',
        flashSaleId: flash.flashSaleId,
        skuId: flash.skuId,
        productId: flash.productId,
        startsAt: new Date(flash.startsAt),
        endsAt,
        endedAt: null,
        createdBy: operator.id,
        createdAt: at,
      };
      if (await claimOnce(models.LiveOffer, doc as unknown as Record<string, unknown>)) {
        deps.announce(roomId, `offer:${doc._id}`);
        return doc;
      }
      const existing = await offerOrThrow(doc._id);
      if (existing.endedAt) throw conflict('This flash deal was already ended in this room', 'ENDED');
      return existing;
    },

    /** An operator ends an offer now (a one-way flag); ending it again returns it. */
    async endOffer(viewer: Viewer | null, offerId: string): Promise<LiveOfferDoc> {
      requireOperator(viewer);
      const offer = await offerOrThrow(offerId);
      await requireRoom(core, offer.roomId, viewer);
      if (offer.endedAt) return offer;
      const endedAt = now();
      await models.LiveOffer.updateOne({ _id: offerId, endedAt: null }, { $set: { endedAt } });
      deps.announce(offer.roomId, `offer:${offerId}`);
      return offerOrThrow(offerId);
    },

    offer: (id: string) => models.LiveOffer.findById(id).lean<LiveOfferDoc>(),

    /** The room's offers that apply now, newest first. */
    async roomOffers(roomId: string): Promise<LiveOfferDoc[]> {
      const at = now();
      const offers = await models.LiveOffer.find({ roomId, endedAt: null })
        .sort({ createdAt: -1 })
        .limit(OFFER_LIMITS.roomOffers)
        .lean<LiveOfferDoc[]>();
      return offers.filter((o) => offerActive(o, at));
    },

    /** The room's newest flash deal that has not ended (null if none). */
    async activeFlashDeal(roomId: string): Promise<LiveOfferDoc | null> {
      const at = now();
      const deals = await models.LiveOffer.find({ roomId, kind: 'FLASH_DEAL', endedAt: null })
        .sort({ createdAt: -1 })
        .limit(20)
        .lean<LiveOfferDoc[]>();
      return deals.find((d) => !(d.endsAt && d.endsAt <= at)) ?? null;
    },

    /** Units of a coupon offer not taken by a live claim (never negative). */
    async remaining(offer: LiveOfferDoc): Promise<number | null> {
      if (offer.kind !== 'COUPON') return null;
      const [taken, returned] = await Promise.all([OfferUnit.countDocuments({ offerId: offer._id }), returnedUnits(offer._id)]);
      return Math.max(0, offer.quantity - (taken - returned));
    },

    /** Coupons granted from an offer. */
    granted: (offerId: string) => OfferClaim.countDocuments({ offerId, kind: 'GRANT' }),

    /** Retries claims left pending (membership did not answer, or a crash) once they are old enough. */
    async sweep(at: Date): Promise<Record<string, number>> {
      const pending = await OfferClaim.find({
        kind: 'VIEWER',
        state: 'PENDING',
        at: { $lte: new Date(at.getTime() - OFFER_LIMITS.sweepAfterMs) },
      })
        .limit(OFFER_LIMITS.sweepBatch)
        .lean<(OfferClaimDoc & { kind: 'VIEWER' })[]>();
      let settled = 0;
      for (const claim of pending) {
        const end = await outcome(claim._id);
        if (end !== undefined) {
          await project(claim._id, end === null ? 'VOID' : 'GRANTED');
          continue;
        }
        const offer = await models.LiveOffer.findById(claim.offerId).lean<LiveOfferDoc>();
        if (offer?.kind !== 'COUPON') continue;
        try {
          await perViewer.run(`${offer._id}:${claim.memberId}`, () => settle(offer, claim));
          settled++;
        } catch (err) {
          if ((err as AppError).extensions?.code !== 'UNAVAILABLE') settled++; // void now: settled too
        }
      }
      return { offerClaimsSettled: settled };
    },
  };
}
export type OfferService = ReturnType<typeof createOfferService>;
