import {
  AppError,
  appendToLedger,
  forbidden,
  isObjectId,
  ledgerHead,
  notFound,
  type ErrorCode,
  type KeyQueue,
} from '@flywheel/service-kit';
import type { ModuleDeps } from '../modules';
import type { CouponEntryDoc, CouponDoc, CouponIssueEntryDoc, CouponModels, CouponMoveEntryDoc, CouponRevokeEntryDoc } from './model';

/** What the coupon service's parts share: the module's dependencies, its models and the per-coupon queue. */
export interface CouponContext extends ModuleDeps {
  m: CouponModels;
  /** One coupon's issue and transitions queue here instead of retrying appends. */
  couponQueue: KeyQueue['run'];
}

export const refuse = (code: ErrorCode, message: string, reason: string, field?: string) =>
  new AppError(code, message, field ? { reason, field } : { reason });

const projected = (state: CouponEntryDoc['state']): CouponDoc['state'] => (state === 'ISSUED' ? 'AVAILABLE' : state);
/** The checkout a coupon's entry is for (the issue is for none). */
const checkoutOf = (entry: CouponEntryDoc): string | null => (entry.op === 'issue' || entry.op === 'revoke' ? null : entry.checkoutId);

/** Each coupon's ledger (issue → lock → use → return) and the wallet projection it decides. */
export function createCouponLedger(ctx: CouponContext) {
  const { m, now, logger, couponQueue } = ctx;

  const firstEntry = (couponId: string) => m.CouponEntry.findById(`${couponId}:1`).lean() as unknown as Promise<CouponIssueEntryDoc | null>;

  /** Rewrites the wallet projection from the ledger head (a read model: the ledger decides). */
  async function project(couponId: string): Promise<void> {
    const head = await ledgerHead(m.CouponEntry, couponId);
    if (!head) return;
    const state = projected(head.state);
    await m.Coupon.updateOne(
      { _id: couponId, seq: { $lt: head.seq } },
      {
        $set: {
          state,
          checkoutId: state === 'AVAILABLE' ? null : checkoutOf(head),
          usedOrderId: state === 'USED' ? checkoutOf(head) : null,
          seq: head.seq,
          updatedAt: now(),
        },
      },
    );
  }

  type Decision<R> = {
    append?: Omit<CouponMoveEntryDoc, '_id' | 'accountId' | 'seq'> | Omit<CouponRevokeEntryDoc, '_id' | 'accountId' | 'seq'>;
    result?: R;
    error?: AppError;
  };

  /** One transition of a coupon, decided against the real head (retried on a lost race). */
  function move<R>(couponId: string, decide: (head: CouponEntryDoc) => Decision<R>): Promise<R> {
    return couponQueue(couponId, async () => {
      let decision: Decision<R> = { error: notFound('Coupon') };
      const entry = await appendToLedger(m.CouponEntry, couponId, (head) => {
        decision = head ? decide(head) : { error: notFound('Coupon') };
        return decision.append ?? null;
      });
      if (entry) await project(couponId).catch((err: unknown) => logger.warn({ err, couponId }, 'coupon projection failed'));
      if (decision.error) throw decision.error;
      return decision.result as R;
    });
  }

  const lockedElsewhere = () => refuse('CONFLICT', 'This coupon is in use by another order', 'LOCKED');
  const alreadyUsed = () => refuse('CONFLICT', 'This coupon has already been used', 'USED');
  const revokedRefusal = () => refuse('CONFLICT', 'This coupon was withdrawn and can no longer be used', 'REVOKED');

  function windowRefusal(first: CouponIssueEntryDoc, at: Date): AppError | null {
    if (first.validUntil.getTime() < at.getTime()) return refuse('BAD_USER_INPUT', 'This coupon has expired', 'EXPIRED', 'couponId');
    if (first.validFrom.getTime() > at.getTime())
      return refuse('BAD_USER_INPUT', 'This coupon is not valid yet', 'NOT_YET_VALID', 'couponId');
    return null;
  }

  async function owned(couponId: string, memberId: string): Promise<CouponIssueEntryDoc> {
    const first = isObjectId(couponId) ? await firstEntry(couponId) : null;
    if (!first) throw notFound('Coupon');
    if (first.memberId !== memberId) throw forbidden('This coupon belongs to another member');
    return first;
  }

  return {
    firstEntry,
    project,
    owned,
    windowRefusal,
    lockedElsewhere,
    alreadyUsed,
    revokedRefusal,

    /** AVAILABLE → LOCKED for this checkout; idempotent for the same checkout; CONFLICT otherwise. */
    async lock(couponId: string, memberId: string, checkoutId: string): Promise<void> {
      const first = await owned(couponId, memberId);
      await move<void>(couponId, (head) => {
        if (head.state === 'LOCKED') return head.checkoutId === checkoutId ? {} : { error: lockedElsewhere() };
        if (head.state === 'USED') return { error: alreadyUsed() };
        if (head.state === 'REVOKED') return { error: revokedRefusal() };
        const late = windowRefusal(first, now());
        if (late) return { error: late };
        return { append: { state: 'LOCKED', checkoutId, op: 'lock', at: now() } };
      });
    },

    /** LOCKED by this checkout → AVAILABLE; false when it was not locked by it (a no-op). */
    async release(couponId: string, checkoutId: string): Promise<boolean> {
      if (!isObjectId(couponId)) return false;
      return move<boolean>(couponId, (head) =>
        head.state === 'LOCKED' && head.checkoutId === checkoutId
          ? { append: { state: 'AVAILABLE', checkoutId, op: 'release', at: now() }, result: true }
          : { result: false },
      ).catch((err: unknown) => {
        if (err instanceof AppError && err.extensions.code === 'NOT_FOUND') return false;
        throw err;
      });
    },

    /** LOCKED by this checkout → USED (payment); idempotent. */
    async consume(couponId: string, checkoutId: string): Promise<void> {
      if (!isObjectId(couponId)) throw notFound('Coupon');
      await move<void>(couponId, (head) => {
        if (head.state === 'USED' && head.checkoutId === checkoutId) return {};
        if (head.state === 'LOCKED' && head.checkoutId === checkoutId) {
          return { append: { state: 'USED', checkoutId, op: 'consume', at: now() } };
        }
        if (head.state === 'USED') return { error: alreadyUsed() };
        if (head.state === 'LOCKED') return { error: lockedElsewhere() };
        return { error: refuse('CONFLICT', 'This coupon is not locked by this order', 'NOT_LOCKED') };
      });
    },

    /**
     * USED by this checkout → AVAILABLE again (full refund); false when it was not (a no-op). A
     * coupon its granter asked back while it was used (`revoke-wanted`) becomes REVOKED instead.
     */
    async restore(couponId: string, checkoutId: string): Promise<boolean> {
      if (!isObjectId(couponId)) return false;
      return move<boolean>(couponId, (head) => {
        if (head.state !== 'USED' || head.checkoutId !== checkoutId) return { result: false };
        if (head.op === 'revoke-wanted')
          return { append: { state: 'REVOKED', op: 'revoke', reason: head.reason ?? '', at: now() }, result: true };
        return { append: { state: 'AVAILABLE', checkoutId, op: 'restore', at: now() }, result: true };
      }).catch((err: unknown) => {
        if (err instanceof AppError && err.extensions.code === 'NOT_FOUND') return false;
        throw err;
      });
    },

    /**
     * Unused (ISSUED|AVAILABLE) → REVOKED, decided against the head on the same ledger as lock and
     * consume: a revoke racing a checkout's lock is one append or the other, never both. A repeat
     * answers `revoked` again; LOCKED or USED is not taken and answers its state (a USED one is
     * marked `revoke-wanted`: should its order be refunded, it is revoked rather than restored).
     */
    async revoke(couponId: string, reason: string): Promise<{ revoked: boolean; state: RevokeState }> {
      if (!isObjectId(couponId)) return { revoked: false, state: 'NONE' };
      return move<{ revoked: boolean; state: RevokeState }>(couponId, (head) => {
        if (head.state === 'REVOKED') return { result: { revoked: true, state: 'REVOKED' } };
        if (head.state === 'LOCKED') return { result: { revoked: false, state: head.state } };
        // Used: it stays with its order, marked so that a refund of that order revokes it (on the
        // same ledger as the refund's restore, so the two cannot both miss each other).
        if (head.state === 'USED') {
          if (head.op === 'revoke-wanted') return { result: { revoked: false, state: 'USED' } };
          return {
            append: { state: 'USED', op: 'revoke-wanted', checkoutId: head.checkoutId, reason, at: now() },
            result: { revoked: false, state: 'USED' },
          };
        }
        return { append: { state: 'REVOKED', op: 'revoke', reason, at: now() }, result: { revoked: true, state: 'REVOKED' } };
      }).catch((err: unknown) => {
        if (err instanceof AppError && err.extensions.code === 'NOT_FOUND') return { revoked: false, state: 'NONE' as const };
        throw err;
      });
    },
  };
}

/** What a revoke found: REVOKED (now or before), LOCKED / USED (not taken), NONE (no such coupon). */
export type RevokeState = 'REVOKED' | 'LOCKED' | 'USED' | 'NONE';

export type CouponLedger = ReturnType<typeof createCouponLedger>;
