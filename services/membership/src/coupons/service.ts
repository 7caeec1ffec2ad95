import { createHash } from 'node:crypto';
import {
  createKeyQueue,
  AppError,
  appendToLedger,
  badInput,
  claimOnce,
  decodeSeqCursor,
  findByIds,
  forbidden,
  isObjectId,
  isSelfOrStaff,
  isStaff,
  ledgerHead,
  notFound,
  pageSize,
  paginate,
  requireRole,
  seqPage,
  type Connection as Page,
  type ErrorCode,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { ModuleDeps } from '../modules';
import { isMemberDay } from '../program';
import {
  createCouponModels,
  type CouponDoc,
  type CouponEntryDoc,
  type CouponIssueEntryDoc,
  type CouponMoveEntryDoc,
  type CouponSlotDoc,
  type CouponTemplateDoc,
  type CouponWalletEntryDoc,
} from './model';
import { couponWindow, discountOf, validateTemplate, type PricedLine, type TemplateInput } from './rules';

/** A coupon as a member sees it now (EXPIRED is the AVAILABLE coupon past its window). */
export type CouponViewState = 'AVAILABLE' | 'LOCKED' | 'USED' | 'EXPIRED';

export interface CouponOfferView {
  couponId: string;
  templateId: string;
  name: string;
  discount: number;
}

export interface WalletSummary {
  available: number;
  locked: number;
  used: number;
  expired: number;
}

/** What `Member.coupons` resolves to: the member's wallet, loaded once however many fields ask. */
export interface WalletShape {
  memberId: string;
  load(): Promise<{ seq: number; coupon: CouponDoc }[]>;
}

const TEMPLATE_TTL_MS = 5_000;

const refuse = (code: ErrorCode, message: string, reason: string, field?: string) =>
  new AppError(code, message, field ? { reason, field } : { reason });

/** A deterministic coupon id: the same idempotency key always names the same coupon. */
const couponIdOf = (...parts: string[]) => createHash('sha256').update(parts.join('\0')).digest('hex').slice(0, 24);

export function viewState(c: Pick<CouponDoc, 'state' | 'validUntil'>, at: Date): CouponViewState {
  if (c.state === 'AVAILABLE' && c.validUntil.getTime() < at.getTime()) return 'EXPIRED';
  return c.state;
}

const projected = (state: CouponEntryDoc['state']): CouponDoc['state'] => (state === 'ISSUED' ? 'AVAILABLE' : state);
/** The checkout a coupon's entry is for (the issue is for none). */
const checkoutOf = (entry: CouponEntryDoc): string | null => (entry.op === 'issue' ? null : entry.checkoutId);

export function createCouponService(deps: ModuleDeps) {
  const { db, settings, now, logger } = deps;
  const m = createCouponModels(db);
  // In-process serialisation: a rush on one template queues for its quota slots instead of
  // colliding on the same slot ids; one coupon's transitions queue instead of retrying appends.
  // Across replicas the unique inserts still decide; the queues only save wasted attempts.
  const couponQueue = createKeyQueue().run;
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
  const firstEntry = (couponId: string) => m.CouponEntry.findById(`${couponId}:1`).lean() as unknown as Promise<CouponIssueEntryDoc | null>;
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
      if (soldOut.has(tid)) throw refuse('OUT_OF_STOCK', 'This coupon is sold out', 'SOLD_OUT', 'templateId');

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

  // ---- ledger transitions -------------------------------------------------------------------

  type Decision<R> = { append?: Omit<CouponMoveEntryDoc, '_id' | 'accountId' | 'seq'>; result?: R; error?: AppError };

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

  const coupons = {
    /** Gives a member a coupon of a template, once per `key` (quota and per-member limit apply). */
    async grant(input: { key: string; memberId: string; templateId: string; reason: string }): Promise<{ couponId: string }> {
      if (!input.key || input.key.length > 300) throw badInput('key must be 1..300 characters', 'key');
      if (!isObjectId(input.memberId)) throw badInput('memberId is not a member id', 'memberId');
      const couponId = couponIdOf('grant', input.key);
      const reason = input.reason.slice(0, 200);
      const c = await issueOnce(couponId, input.memberId, input.templateId, { via: 'GRANT', reason }, async () => undefined);
      return { couponId: c._id };
    },

    /** The member's available coupons that apply to these lines, best (largest discount) first. */
    async offers(memberId: string, lines: PricedLine[], subtotal: number, at: Date): Promise<CouponOfferView[]> {
      const wallet = await walletOf(memberId);
      const candidates = wallet
        .map((w) => w.coupon)
        .filter((c) => c.state === 'AVAILABLE' && c.validFrom.getTime() <= at.getTime() && c.validUntil.getTime() >= at.getTime());
      const out: (CouponOfferView & { validUntil: number })[] = [];
      for (const c of candidates) {
        const t = await template(c.templateId);
        if (!t) continue;
        const { discount, refusal } = discountOf(t, lines, subtotal);
        if (refusal || discount <= 0) continue;
        out.push({ couponId: c._id, templateId: c.templateId, name: c.name, discount, validUntil: c.validUntil.getTime() });
      }
      // Best first; on a tie, the one expiring soonest (use it before it is lost).
      out.sort((a, b) => b.discount - a.discount || a.validUntil - b.validUntil || a.couponId.localeCompare(b.couponId));
      return out.map(({ validUntil: _v, ...o }) => o);
    },

    /** One chosen coupon for these lines; throws the refusal (NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, CONFLICT). */
    async offer(memberId: string, couponId: string, lines: PricedLine[], subtotal: number, at: Date): Promise<CouponOfferView> {
      const first = await owned(couponId, memberId);
      const head = (await ledgerHead(m.CouponEntry, couponId))!;
      if (head.state === 'LOCKED') throw lockedElsewhere();
      if (head.state === 'USED') throw alreadyUsed();
      const late = windowRefusal(first, at);
      if (late) throw late;
      const t = await requireTemplate(first.templateId);
      const { discount, refusal } = discountOf(t, lines, subtotal);
      if (refusal === 'OUT_OF_SCOPE') throw refuse('BAD_USER_INPUT', 'This coupon does not apply to these products', refusal, 'couponId');
      if (refusal === 'BELOW_THRESHOLD') {
        throw refuse('BAD_USER_INPUT', `This coupon needs at least ${t.threshold} fen of eligible products`, refusal, 'couponId');
      }
      if (discount <= 0) throw refuse('BAD_USER_INPUT', 'This coupon takes nothing off this order', 'NO_DISCOUNT', 'couponId');
      return { couponId, templateId: first.templateId, name: first.name, discount };
    },

    /** AVAILABLE → LOCKED for this checkout; idempotent for the same checkout; CONFLICT otherwise. */
    async lock(couponId: string, memberId: string, checkoutId: string): Promise<void> {
      const first = await owned(couponId, memberId);
      await move<void>(couponId, (head) => {
        if (head.state === 'LOCKED') return head.checkoutId === checkoutId ? {} : { error: lockedElsewhere() };
        if (head.state === 'USED') return { error: alreadyUsed() };
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

    /** USED by this checkout → AVAILABLE again (full refund); false when it was not (a no-op). */
    async restore(couponId: string, checkoutId: string): Promise<boolean> {
      if (!isObjectId(couponId)) return false;
      return move<boolean>(couponId, (head) =>
        head.state === 'USED' && head.checkoutId === checkoutId
          ? { append: { state: 'AVAILABLE', checkoutId, op: 'restore', at: now() }, result: true }
          : { result: false },
      ).catch((err: unknown) => {
        if (err instanceof AppError && err.extensions.code === 'NOT_FOUND') return false;
        throw err;
      });
    },
  };

  // ---- wallet ---------------------------------------------------------------------------------

  /** The member's coupons, newest first, by `_id` reads of the member's wallet list. */
  async function walletOf(memberId: string): Promise<{ seq: number; coupon: CouponDoc }[]> {
    const head = await ledgerHead(m.CouponWalletEntry, memberId);
    const n = head?.seq ?? 0;
    if (!n) return [];
    const entries = await findByIds<CouponWalletEntryDoc>(
      m.CouponWalletEntry,
      Array.from({ length: n }, (_, i) => `${memberId}:${i + 1}`),
    );
    const seqOf = new Map<string, number>();
    for (const e of entries) if (!seqOf.has(e.couponId) || seqOf.get(e.couponId)! > e.seq) seqOf.set(e.couponId, e.seq);
    const docs = await findByIds<CouponDoc>(m.Coupon, [...seqOf.keys()]);
    return docs.map((coupon) => ({ seq: seqOf.get(coupon._id)!, coupon })).sort((a, b) => b.seq - a.seq);
  }

  function summarize(list: { coupon: CouponDoc }[], at: Date): WalletSummary {
    const out: WalletSummary = { available: 0, locked: 0, used: 0, expired: 0 };
    for (const { coupon } of list) {
      const s = viewState(coupon, at);
      if (s === 'AVAILABLE') out.available++;
      else if (s === 'LOCKED') out.locked++;
      else if (s === 'USED') out.used++;
      else out.expired++;
    }
    return out;
  }

  return {
    coupons,
    models: m,
    template,
    /** A coupon's state as seen now (by the module's clock). */
    stateOf: (c: CouponDoc) => viewState(c, now()),

    /** The viewer's view of a member's wallet: the member themself or staff; null otherwise. */
    walletFor(viewer: Viewer | null, memberId: string): WalletShape | null {
      if (!isSelfOrStaff(viewer, memberId)) return null;
      let loaded: Promise<{ seq: number; coupon: CouponDoc }[]> | undefined;
      return { memberId, load: () => (loaded ??= walletOf(memberId)) };
    },

    async walletSummary(wallet: WalletShape, at = now()): Promise<WalletSummary> {
      return summarize(await wallet.load(), at);
    },

    async walletCoupons(wallet: WalletShape, args: PageArgs & { state?: CouponViewState | null }, at = now()): Promise<Page<CouponDoc>> {
      const first = pageSize(args.first, 100);
      const before = decodeSeqCursor(args.after) ?? Infinity;
      const list = (await wallet.load()).filter((w) => w.seq < before && (!args.state || viewState(w.coupon, at) === args.state));
      return seqPage(list, first, (w) => w.coupon);
    },

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

    /** Claimable ACTIVE templates, newest first; staff may ask for all. */
    listTemplates(viewer: Viewer | null, args: PageArgs & { all?: boolean | null }): Promise<Page<CouponTemplateDoc>> {
      if (args.all && !isStaff(viewer)) throw forbidden('STAFF role required to list every template');
      return paginate(m.CouponTemplate, args.all ? {} : { status: 'ACTIVE', claimable: true }, args);
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
      const { couponId } = await coupons.grant({
        key: `staff:${v.id}:${key}`,
        memberId: input.memberId,
        templateId: input.templateId,
        reason: input.reason,
      });
      return (await m.Coupon.findById(couponId).lean()) as CouponDoc;
    },
  };
}

export type CouponsService = ReturnType<typeof createCouponService>;
