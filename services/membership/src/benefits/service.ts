import type { EventData, ReplyData, RequestData } from '@flywheel/events';
import { AppError, badInput, claimOnce, fromBusError, type Bus, type Logger } from '@flywheel/service-kit';
import type { CouponOffer, CouponService } from '../coupons';
import { PointsRefused, type LoyaltyService } from '../loyalty';
import { proRata } from '../loyalty/lots';
import { loyaltyProgramOf } from '../program';
import type { Settings } from '../settings';
import type { Adjustment, BenefitLockDoc, BenefitModels } from './model';

export interface BenefitDeps {
  models: BenefitModels;
  /** Asks community whether a member is still in a group-exclusive coupon's group. */
  bus: Pick<Bus, 'request'>;
  coupons: CouponService;
  loyalty: LoyaltyService;
  settings: Settings;
  logger: Pick<Logger, 'warn' | 'error'>;
  now: () => Date;
}

const TIER_LABEL = { REGULAR: '普通会员', SILVER: '银卡会员', GOLD: '金卡会员', DIAMOND: '钻石会员' } as const;

const pointsRef = (n: number) => `points:${n}`;
function pointsOfRef(ref: string): number {
  const m = /^points:(\d+)$/.exec(ref);
  if (!m) throw badInput(`Bad points reference ${ref}`, 'adjustments');
  return Number(m[1]);
}

/**
 * The checkout side of membership (docs/architecture.md: checkout asks membership for benefits), over `membership.benefits.quote|lock|release`:
 * the tier discount, a coupon and a points deduction priced without side effects; locked per
 * checkout (the coupon's ledger moves to LOCKED, the points are debited); consumed when the order
 * is paid, given back when it is cancelled or the checkout fails, and given back in proportion
 * when it is refunded (the coupon only on a full refund) — each exactly once, by claims keyed by
 * the checkout id, which is the order id.
 */
export function createBenefitService(deps: BenefitDeps) {
  const { models, bus, coupons, loyalty, now, logger } = deps;
  const { BenefitLock: Lock, BenefitFinal: Final } = models;

  const inGroup = async (groupId: string, memberId: string) =>
    (await bus.request('community.group.membership', { groupId, memberId })).member;

  /**
   * BEST: the first offer the member may use. A group-exclusive coupon counts only while the member
   * is in its group; community is asked at most once per quote (for the first group coupon that
   * would be chosen), so a group coupon of another group after it is not chosen, and none is when
   * community does not answer — an inapplicable coupon is skipped, the quote still goes through.
   */
  async function bestOffer(memberId: string, offers: CouponOffer[]): Promise<CouponOffer | null> {
    let asked: { groupId: string; member: boolean } | null = null;
    for (const o of offers) {
      if (!o.groupId) return o;
      if (!asked) {
        const member = await inGroup(o.groupId, memberId).catch((err: unknown) => {
          logger.warn({ err, groupId: o.groupId, memberId }, 'group membership unknown; group coupons skipped');
          return false;
        });
        asked = { groupId: o.groupId, member };
      }
      if (asked.groupId === o.groupId && asked.member) return o;
    }
    return null;
  }

  /** The coupon asked for: refused like any inapplicable coupon when the member left its group. */
  async function chosenOffer(memberId: string, offer: CouponOffer): Promise<CouponOffer> {
    if (offer.groupId && !(await inGroup(offer.groupId, memberId).catch(fromBusError))) {
      throw new AppError('FORBIDDEN', 'This coupon is for members of its community group only', {
        reason: 'NOT_IN_GROUP',
        field: 'couponId',
      });
    }
    return offer;
  }

  /** Gives back what a lock took; safe to repeat (each step is a no-op the second time). */
  async function undo(lock: BenefitLockDoc) {
    if (lock.couponId) await coupons.release(lock.couponId, lock._id);
    if (lock.points > 0 && !(lock.taken && lock.taken.length === 0))
      await loyalty.giveBack(lock.memberId, lock._id, lock.points, `release:${lock._id}`, `Checkout ${lock._id} released`, lock.taken);
  }

  /** `known`: the lock as its own (failed) attempt left it, when that is more than the stored one says. */
  async function release(checkoutId: string, known?: BenefitLockDoc): Promise<ReplyData<'membership.benefits.release'>> {
    // Claimed even when nothing is locked yet: a lock that arrives late (after the checkout gave
    // up on it) then finds the checkout released and takes nothing.
    const won = await claimOnce(Final, { _id: checkoutId, outcome: 'RELEASED', at: now() });
    const final = won ? null : await Final.findById(checkoutId).lean();
    if (final?.outcome === 'CONSUMED') return { checkoutId, released: false };
    const lock = known ?? (await Lock.findById(checkoutId).lean<BenefitLockDoc>());
    if (lock) await undo(lock);
    return { checkoutId, released: Boolean(lock) };
  }

  return {
    release,

    async quote(req: RequestData<'membership.benefits.quote'>): Promise<ReplyData<'membership.benefits.quote'>> {
      const at = now();
      const [program, tier, balance] = await Promise.all([
        loyaltyProgramOf(deps.settings),
        loyalty.tierOf(req.memberId),
        loyalty.pointsOf(req.memberId, at),
      ]);
      const adjustments: Adjustment[] = [];
      let running = req.subtotal;

      const permille = program.tiers[tier].discountPermille;
      const tierOff = Math.floor((running * permille) / 1000);
      if (tierOff > 0) {
        adjustments.push({ kind: 'TIER', amount: -tierOff, label: `${TIER_LABEL[tier]} ${permille / 10}% off`, ref: `tier:${tier}` });
        running -= tierOff;
      }

      const choice = req.coupon ?? 'BEST';
      const lines = req.lines.map((l) => ({ ...l }));
      if (choice !== 'NONE' && running > 0) {
        const offer =
          choice === 'BEST'
            ? await bestOffer(req.memberId, await coupons.offers(req.memberId, lines, running, at))
            : await chosenOffer(req.memberId, await coupons.offer(req.memberId, choice.couponId, lines, running, at));
        if (offer) {
          const off = Math.min(offer.discount, running);
          adjustments.push({ kind: 'COUPON', amount: -off, label: offer.name, ref: offer.couponId });
          running -= off;
        }
      }

      // Points pay for at most the program's share of what is left; 1 point = 100 / rate fen.
      const maxFen = Math.floor((running * program.pointsMaxSharePercent) / 100);
      const usable = Math.min(balance, Math.floor((maxFen * program.pointsPerYuanRedeemed) / 100));
      const asked = req.points ?? 0;
      if (asked > 0) {
        if (asked > balance) throw badInput(`Not enough points: the balance is ${balance}`, 'points');
        if (asked > usable) throw badInput(`At most ${usable} points can be used on this order`, 'points');
        const fen = Math.floor((asked * 100) / program.pointsPerYuanRedeemed);
        if (fen < 1) throw badInput(`${asked} points are worth less than one fen`, 'points');
        adjustments.push({ kind: 'POINTS', amount: -fen, label: `${asked} 积分抵扣`, ref: pointsRef(asked) });
      }
      // The tier's free shipping (包邮): checkout waives its shipping fee, whatever the order's size.
      return { adjustments, pointsBalance: balance, pointsUsable: usable, freeShipping: program.tiers[tier].freeShipping };
    },

    /**
     * Takes the coupon and the points of a quote for one checkout. The lock record is inserted
     * first (the claim; a replay finds it and finishes what is missing), then the coupon's
     * ledger and the points ledger each move once for this checkout.
     */
    async lock(req: RequestData<'membership.benefits.lock'>): Promise<ReplyData<'membership.benefits.lock'>> {
      const coupon = req.adjustments.filter((a) => a.kind === 'COUPON');
      const points = req.adjustments.filter((a) => a.kind === 'POINTS');
      if (coupon.length > 1 || points.length > 1) throw badInput('At most one coupon and one points deduction per order', 'adjustments');
      const lock: BenefitLockDoc = {
        _id: req.checkoutId,
        memberId: req.memberId,
        couponId: coupon[0]?.ref ?? null,
        points: points[0] ? pointsOfRef(points[0].ref) : 0,
        adjustments: req.adjustments,
        at: now(),
      };
      if (!lock.couponId && !lock.points) return { checkoutId: req.checkoutId };
      const released = () => new AppError('CONFLICT', 'This checkout was already released');
      if ((await Final.findById(req.checkoutId).lean())?.outcome === 'RELEASED') throw released();
      const firstAttempt = await claimOnce(Lock, { ...lock });
      if (!firstAttempt) {
        const first = await Lock.findById(req.checkoutId).lean<BenefitLockDoc>();
        if (!first || first.memberId !== lock.memberId || first.couponId !== lock.couponId || first.points !== lock.points) {
          throw new AppError('CONFLICT', 'This checkout already locked different benefits');
        }
      }
      // A first attempt whose coupon was refused never reached the points: nothing to give back.
      if (firstAttempt) lock.taken = [];
      try {
        if (lock.couponId) await coupons.lock(lock.couponId, lock.memberId, lock._id);
        if (lock.points) {
          lock.taken = undefined;
          try {
            lock.taken = await loyalty.spend(lock.memberId, lock._id, lock.points, { firstAttempt });
          } catch (err) {
            // Refused against the ledger's head: this lock took no points (nothing to look up and
            // give back; a replayed lock that finds its spend below the head is not refused).
            if (err instanceof PointsRefused) lock.taken = [];
            throw err;
          }
          // Written by this checkout's lock only (replays write the same lots).
          await Lock.updateOne({ _id: lock._id }, { $set: { taken: lock.taken } });
        }
      } catch (err) {
        // Nothing stays taken for a checkout that cannot have it all. Knowing that nothing was
        // taken is kept too, so a later release of this checkout needs no ledger search either.
        if (lock.points && lock.taken?.length === 0)
          await Lock.updateOne({ _id: lock._id }, { $set: { taken: [] } }).catch(() => undefined);
        await release(lock._id, lock.taken ? lock : undefined).catch((e: unknown) =>
          logger.warn({ err: e, checkoutId: lock._id }, 'release after a refused lock failed'),
        );
        throw err;
      }
      // A release that raced ahead of us (the checkout gave up) wins: give back what we just took.
      if ((await Final.findById(req.checkoutId).lean())?.outcome === 'RELEASED') {
        await undo(lock);
        throw released();
      }
      return { checkoutId: req.checkoutId };
    },

    /** Payment consumes the coupon (the points were debited at lock); once. */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      // Every paid order asks, few had benefits locked: the driver's own look-up (what
      // `findById(…).lean()` returns) without mongoose's query machinery.
      const lock = (await Lock.collection.findOne({ _id: data.orderId } as never)) as BenefitLockDoc | null;
      if (!lock) return;
      const won = await claimOnce(Final, { _id: data.orderId, outcome: 'CONSUMED', total: data.total, at: now() });
      const final = won ? { outcome: 'CONSUMED' } : await Final.findById(data.orderId).lean();
      if (final?.outcome !== 'CONSUMED') {
        logger.error({ orderId: data.orderId }, 'paid order whose benefits were released; nothing consumed');
        return;
      }
      if (lock.couponId) await coupons.consume(lock.couponId, lock._id);
    },

    /** A refund returns its share of the spent points; a full refund returns the coupon too. */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const lock = await Lock.findById(data.orderId).lean<BenefitLockDoc>();
      if (!lock) return;
      const final = await Final.findById(data.orderId).lean();
      if (final?.outcome !== 'CONSUMED' || final.total === undefined) {
        // The paid event is not handled yet: redeliver later.
        throw new Error(`refund ${data.refundId}: benefits of ${data.orderId} not consumed yet`);
      }
      const { before, after } = await loyalty.refundShare(data.orderId, data.refundId, data.amount);
      const back = proRata(lock.points, after, final.total) - proRata(lock.points, before, final.total);
      await loyalty.giveBack(
        lock.memberId,
        lock._id,
        back,
        `refund-return:${data.refundId}`,
        `Refund ${data.refundId} of order ${data.orderId}`,
        lock.taken,
      );
      if (lock.couponId && after >= final.total) await coupons.restore(lock.couponId, lock._id);
    },
  };
}
export type BenefitService = ReturnType<typeof createBenefitService>;
