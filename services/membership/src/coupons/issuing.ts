import { createHash } from 'node:crypto';
import { appendToLedger, badInput, claimOnce, fromBusError, isObjectId, notFound, requireRole, type Viewer } from '@flywheel/service-kit';
import { isMemberDay } from '../program';
import { refuse, type CouponContext, type CouponLedger } from './ledger';
import type { CouponDoc, CouponIssueEntryDoc, CouponSlotDoc, CouponTemplateDoc } from './model';
import { couponWindow } from './rules';
import type { Templates } from './templates';

/** A deterministic coupon id: the same idempotency key always names the same coupon. */
const couponIdOf = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);

/** Issuing coupons: a member's claim, grants (by key, and by staff), each once per idempotency key. */
export function createIssuing(ctx: CouponContext, ledger: CouponLedger, templates: Templates) {
  const { db, bus, settings, now, m, couponQueue } = ctx;
  const { firstEntry, project } = ledger;
  const { requireTemplate, takeMemberSlot, takeQuotaSlot, isSoldOut } = templates;

  /** Puts an issued coupon in its member's wallet (idempotent: the projection exists once listed). */
  async function ensureListed(first: CouponIssueEntryDoc): Promise<CouponDoc> {
    const couponId = first.accountId;
    const existing = (await m.Coupon.findById(couponId).lean()) as CouponDoc | null;
    if (existing) return existing;
    // Listed before the projection is created: a crash in between leaves a duplicate wallet
    // entry at worst on the retry, which the wallet read drops.
    await appendToLedger(m.CouponWalletEntry, first.memberId, () => ({ couponId, at: first.at }));
    const doc: CouponDoc = {
      _id: couponId,
      memberId: first.memberId,
      templateId: first.templateId,
      name: first.name,
      state: 'AVAILABLE',
      checkoutId: null,
      usedOrderId: null,
      validFrom: first.validFrom,
      validUntil: first.validUntil,
      claimedAt: first.at,
      via: first.via,
      seq: 1,
      updatedAt: now(),
    };
    await claimOnce(m.Coupon, doc as unknown as Record<string, unknown>);
    await project(couponId);
    return ((await m.Coupon.findById(couponId).lean()) as CouponDoc | null) ?? doc;
  }

  const sameIssue = (first: CouponIssueEntryDoc, memberId: string, templateId: string) =>
    first.memberId === memberId && first.templateId === templateId;

  /**
   * Issues coupon `couponId` (a deterministic id: replays of one key meet here) once.
   *
   * Order, and why nothing is lost or doubled:
   * 1. the coupon's first ledger entry exists → a replay: return it;
   * 2. a member slot, naming this coupon (a retry finds its own slot again instead of taking a
   *    second one);
   * 3. a quota slot, naming this coupon. Sold out → the member slot is marked void (final, as
   *    sold-out is), so it no longer counts against the member's limit; no coupon exists;
   * 4. the ISSUED entry `couponId:1`, a unique insert: one coupon per id, whoever races;
   * 5. the wallet entry and projection (repaired by any replay).
   * Member slot before quota keeps a member at the limit from burning quota. A crash between 2
   * and 4 leaves slots naming a coupon that does not exist yet: the same key's retry resumes them
   * (its quota slot is looked up by coupon id on that rare path), so the unit is not lost to it.
   */
  function issueOnce(
    couponId: string,
    memberId: string,
    templateId: string,
    meta: { via: 'CLAIM' | 'GRANT'; reason?: string },
    admit: (t: CouponTemplateDoc, at: Date) => Promise<void>,
  ): Promise<CouponDoc> {
    return couponQueue(couponId, async () => {
      const prior = await firstEntry(couponId);
      if (prior) {
        if (!sameIssue(prior, memberId, templateId)) {
          throw refuse('CONFLICT', 'This idempotency key was already used for another coupon', 'KEY_REUSED', 'idempotencyKey');
        }
        return ensureListed(prior);
      }
      const t = await requireTemplate(templateId);
      const at = now();
      if (t.status !== 'ACTIVE') throw refuse('BAD_USER_INPUT', 'This coupon is no longer issued', 'STOPPED', 'templateId');
      if (t.validUntil && t.validUntil.getTime() <= at.getTime()) {
        throw refuse('BAD_USER_INPUT', 'This coupon has expired', 'EXPIRED', 'templateId');
      }
      await admit(t, at);
      const tid = String(t._id);
      if (isSoldOut(tid)) throw refuse('OUT_OF_STOCK', 'This coupon is sold out', 'SOLD_OUT', 'templateId');

      const { resumed } = await takeMemberSlot(t, memberId, couponId);
      let quotaSlot: number | undefined;
      if (t.totalQuota !== null) {
        const earlier = resumed
          ? ((await m.CouponSlot.findOne({ templateId: tid, couponId, _id: { $regex: `^${tid}:q:` } }).lean()) as CouponSlotDoc | null)
          : null;
        const n = earlier ? Number(earlier._id.split(':').at(-1)) : await takeQuotaSlot(t, couponId);
        if (n === null) {
          await claimOnce(m.CouponSlot, { _id: `void:${couponId}`, templateId: tid, couponId, at: now() });
          throw refuse('OUT_OF_STOCK', 'This coupon is sold out', 'SOLD_OUT', 'templateId');
        }
        quotaSlot = n;
      }

      const { validFrom, validUntil } = couponWindow(t, at);
      const first: CouponIssueEntryDoc = {
        _id: `${couponId}:1`,
        accountId: couponId,
        seq: 1,
        state: 'ISSUED',
        op: 'issue',
        at,
        memberId,
        templateId,
        name: t.name,
        validFrom,
        validUntil,
        via: meta.via,
        ...(meta.reason ? { reason: meta.reason } : {}),
        ...(quotaSlot !== undefined ? { quotaSlot } : {}),
      };
      if (await claimOnce(m.CouponEntry, first as unknown as Record<string, unknown>)) return ensureListed(first);
      // Another replica issued the same id at the same moment (its slots and ours name one coupon).
      const winner = (await firstEntry(couponId))!;
      if (!sameIssue(winner, memberId, templateId)) {
        throw refuse('CONFLICT', 'This idempotency key was already used for another coupon', 'KEY_REUSED', 'idempotencyKey');
      }
      return ensureListed(winner);
    });
  }

  const issuing = {
    /** Takes back the coupon `grant` issued under `key`, if still unused (see the ledger's `revoke`). */
    async revokeGrant(key: string, reason: string) {
      if (!key || key.length > 300) throw badInput('key must be 1..300 characters', 'key');
      const couponId = couponIdOf('grant', key);
      const res = await ledger.revoke(couponId, reason.slice(0, 200));
      return res.state === 'NONE' ? res : { ...res, couponId };
    },

    /** Gives a member a coupon of a template, once per `key` (quota and per-member limit apply). */
    async grant(input: { key: string; memberId: string; templateId: string; reason: string }): Promise<{ couponId: string }> {
      if (!input.key || input.key.length > 300) throw badInput('key must be 1..300 characters', 'key');
      if (!isObjectId(input.memberId)) throw badInput('memberId is not a member id', 'memberId');
      const couponId = couponIdOf('grant', input.key);
      const reason = input.reason.slice(0, 200);
      const c = await issueOnce(couponId, input.memberId, input.templateId, { via: 'GRANT', reason }, async () => undefined);
      return { couponId: c._id };
    },

    /** A member claims a coupon themself; a replay of the key returns the same coupon. */
    async claim(viewer: Viewer | null, input: { templateId: string; idempotencyKey: string }): Promise<CouponDoc> {
      const v = requireRole(viewer, 'CUSTOMER');
      const key = input.idempotencyKey ?? '';
      if (key.length < 1 || key.length > 200) throw badInput('idempotencyKey must be 1..200 characters', 'idempotencyKey');
      if (!isObjectId(input.templateId)) throw notFound('Coupon template');
      const couponId = couponIdOf('claim', v.id, input.templateId, key);
      return issueOnce(couponId, v.id, input.templateId, { via: 'CLAIM' }, async (t, at) => {
        if (!t.claimable) throw refuse('FORBIDDEN', 'This coupon cannot be claimed; it is only granted', 'NOT_CLAIMABLE', 'templateId');
        if (t.validFrom && t.validFrom.getTime() > at.getTime()) {
          throw refuse('BAD_USER_INPUT', 'This coupon cannot be claimed yet', 'NOT_YET_VALID', 'templateId');
        }
        if (t.memberDayOnly && !(await isMemberDay(settings, at))) {
          throw refuse('BAD_USER_INPUT', 'This coupon can only be claimed on member day', 'NOT_MEMBER_DAY', 'templateId');
        }
        // Asked last, before any slot is taken: a refusal (or community not answering, UNAVAILABLE) writes nothing.
        if (t.groupId) {
          const { member } = await bus.request('community.group.membership', { groupId: t.groupId, memberId: v.id }).catch(fromBusError);
          if (!member) throw refuse('FORBIDDEN', 'This coupon is for members of its community group only', 'NOT_IN_GROUP', 'templateId');
        }
      });
    },

    /** Staff grant through GraphQL (the member must exist); keyed per staff account. */
    async grantByStaff(
      viewer: Viewer | null,
      input: { templateId: string; memberId: string; idempotencyKey: string; reason: string },
    ): Promise<CouponDoc> {
      const v = requireRole(viewer, 'STAFF');
      const key = input.idempotencyKey ?? '';
      if (key.length < 1 || key.length > 200) throw badInput('idempotencyKey must be 1..200 characters', 'idempotencyKey');
      if ((input.reason ?? '').length > 200) throw badInput('reason must be at most 200 characters', 'reason');
      if (!isObjectId(input.memberId)) throw notFound('Member');
      const Member = db.models.Member;
      if (Member && !(await Member.findById(input.memberId, { _id: 1 }).lean())) throw notFound('Member');
      const { couponId } = await issuing.grant({
        key: `staff:${v.id}:${key}`,
        memberId: input.memberId,
        templateId: input.templateId,
        reason: input.reason,
      });
      return (await m.Coupon.findById(couponId).lean()) as CouponDoc;
    },
  };
  return issuing;
}
