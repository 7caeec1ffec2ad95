import {
  claimOnce,
  createKeyQueue,
  forbidden,
  isObjectId,
  isStaff,
  notFound,
  paginate,
  requireRole,
  type Connection as Page,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import { refuse, type CouponContext } from './ledger';
import type { CouponSlotDoc, CouponTemplateDoc } from './model';
import { validateTemplate, type TemplateInput } from './rules';

const TEMPLATE_TTL_MS = 5_000;

/** Coupon templates (cached reads, staff's create and stop) and their quota and per-member slots. */
export function createTemplates(ctx: CouponContext) {
  const { m, now } = ctx;
  // In-process serialisation: a rush on one template queues for its quota slots instead of
  // colliding on the same slot ids. Across replicas the unique inserts still decide.
  const memberQueue = createKeyQueue().run;
  const quotaQueue = createKeyQueue().run;
  /** Highest quota slot this process knows taken (slots are taken contiguously from 1). */
  const quotaHints = new Map<string, number>();
  /** Templates whose every quota slot is taken: final (quota never grows, slots never free). */
  const soldOut = new Set<string>();
  // Templates are immutable but for the one-way stop: another replica sees a stop within the TTL.
  const templateCache = new Map<string, { doc: CouponTemplateDoc | null; at: number }>();

  async function template(id: string, fresh = false): Promise<CouponTemplateDoc | null> {
    if (!isObjectId(id)) return null;
    const hit = templateCache.get(id);
    if (!fresh && hit && Date.now() - hit.at < TEMPLATE_TTL_MS) return hit.doc;
    const doc = (await m.CouponTemplate.findById(id).lean()) as CouponTemplateDoc | null;
    templateCache.set(id, { doc, at: Date.now() });
    if (templateCache.size > 10_000) templateCache.clear();
    return doc;
  }

  async function requireTemplate(id: string): Promise<CouponTemplateDoc> {
    const t = await template(id);
    if (!t) throw notFound('Coupon template');
    return t;
  }

  const slotId = (id: string) => m.CouponSlot.findById(id).lean() as unknown as Promise<CouponSlotDoc | null>;
  const isVoid = async (couponId: string) => Boolean(await slotId(`void:${couponId}`));

  /**
   * The highest quota slot taken, found by `_id` reads only: slots are claimed contiguously (a
   * claimant tries n only once it saw n - 1 taken), so gallop from the hint, then bisect.
   */
  async function quotaHead(tid: string, quota: number): Promise<number> {
    const taken = async (n: number) => n <= quota && Boolean(await slotId(`${tid}:q:${n}`));
    let lo = quotaHints.get(tid) ?? 0;
    let hi = lo + 1;
    for (let step = 1; ; step *= 2) {
      if (!(await taken(lo + step))) {
        hi = lo + step;
        break;
      }
      lo += step;
    }
    while (hi - lo > 1) {
      const mid = Math.floor((lo + hi) / 2);
      if (await taken(mid)) lo = mid;
      else hi = mid;
    }
    if (lo > (quotaHints.get(tid) ?? 0)) quotaHints.set(tid, lo);
    if (lo >= quota) soldOut.add(tid);
    return lo;
  }

  /** Takes the next quota slot for a coupon; null when the template is sold out. */
  function takeQuotaSlot(t: CouponTemplateDoc, couponId: string): Promise<number | null> {
    const tid = String(t._id);
    const quota = t.totalQuota!;
    return quotaQueue(tid, async () => {
      if (soldOut.has(tid)) return null;
      for (let n = (quotaHints.has(tid) ? quotaHints.get(tid)! : await quotaHead(tid, quota)) + 1; n <= quota; n++) {
        if (await claimOnce(m.CouponSlot, { _id: `${tid}:q:${n}`, templateId: tid, couponId, at: now() })) {
          quotaHints.set(tid, n);
          if (n === quota) soldOut.add(tid);
          return n;
        }
        quotaHints.set(tid, n); // another replica took it; the next one is free or taken after it
      }
      soldOut.add(tid);
      return null;
    });
  }

  /**
   * Takes one of the member's slots of a template for this coupon, or finds the one an earlier
   * attempt with the same coupon id took (a retry after a crash, or a replay racing the first).
   * A slot counts against the limit unless its coupon is void (it lost the quota race). Void is
   * final and an issued coupon is never void, so a count read here can only over-count: the
   * limit is never exceeded, whoever races.
   */
  function takeMemberSlot(t: CouponTemplateDoc, memberId: string, couponId: string): Promise<{ resumed: boolean }> {
    const tid = String(t._id);
    return memberQueue(`${tid}:${memberId}`, async () => {
      let live = 0;
      for (let n = 1; n <= t.perMemberLimit + 1000; n++) {
        const id = `${tid}:m:${memberId}:${n}`;
        let slot = await slotId(id);
        if (!slot) {
          if (live >= t.perMemberLimit) break;
          if (await claimOnce(m.CouponSlot, { _id: id, templateId: tid, couponId, at: now() })) return { resumed: false };
          slot = await slotId(id);
          if (!slot) throw new Error(`coupon slot ${id} vanished`);
        }
        if (slot.couponId === couponId) return { resumed: true };
        if (!(await isVoid(slot.couponId))) live++;
        if (live >= t.perMemberLimit) break;
      }
      throw refuse('BAD_USER_INPUT', `Limit reached: at most ${t.perMemberLimit} of this coupon per member`, 'LIMIT_REACHED', 'templateId');
    });
  }

  return {
    template,
    requireTemplate,
    takeMemberSlot,
    takeQuotaSlot,
    /** Every quota slot of the template is taken (known to this process). */
    isSoldOut: (tid: string) => soldOut.has(tid),

    /** Coupons of a template still to be issued (null: unlimited). */
    async remaining(t: CouponTemplateDoc): Promise<number | null> {
      if (t.totalQuota === null) return null;
      const tid = String(t._id);
      if (soldOut.has(tid)) return 0;
      return t.totalQuota - (await quotaHead(tid, t.totalQuota));
    },

    async templateFor(viewer: Viewer | null, id: string): Promise<CouponTemplateDoc | null> {
      const t = await template(id);
      if (!t) return null;
      return isStaff(viewer) || (t.claimable && t.status === 'ACTIVE') ? t : null;
    },

    /**
     * The coupon centre: claimable ACTIVE templates open to everyone, newest first; staff may ask
     * for all. Group-exclusive templates are left out (knowing which groups the viewer is in would
     * take a request per template); members reach them by id, and claiming checks the group.
     */
    listTemplates(viewer: Viewer | null, args: PageArgs & { all?: boolean | null }): Promise<Page<CouponTemplateDoc>> {
      if (args.all && !isStaff(viewer)) throw forbidden('STAFF role required to list every template');
      return paginate(m.CouponTemplate, args.all ? {} : { status: 'ACTIVE', claimable: true, groupId: null }, args);
    },

    async createTemplate(viewer: Viewer | null, input: TemplateInput): Promise<CouponTemplateDoc> {
      const v = requireRole(viewer, 'STAFF');
      const fields = validateTemplate(input, now());
      const doc = await m.CouponTemplate.create({ ...fields, status: 'ACTIVE', createdAt: now(), createdBy: v.id, stoppedAt: null });
      return doc.toObject() as CouponTemplateDoc;
    },

    /** ACTIVE → STOPPED: no more claims or grants; coupons already issued stay usable. */
    async stopTemplate(viewer: Viewer | null, id: string): Promise<CouponTemplateDoc> {
      requireRole(viewer, 'STAFF');
      const t = await template(id, true);
      if (!t) throw notFound('Coupon template');
      if (t.status !== 'STOPPED') {
        // A one-way flag: concurrent stops can only write the same value.
        await m.CouponTemplate.updateOne({ _id: t._id }, { $set: { status: 'STOPPED', stoppedAt: now() } });
      }
      return (await template(id, true))!;
    },
  };
}

export type Templates = ReturnType<typeof createTemplates>;
