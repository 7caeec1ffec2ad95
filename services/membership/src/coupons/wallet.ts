import {
  decodeSeqCursor,
  findByIds,
  isSelfOrStaff,
  ledgerHead,
  pageSize,
  seqPage,
  type Connection as Page,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import { refuse, type CouponContext, type CouponLedger } from './ledger';
import type { CouponDoc, CouponWalletEntryDoc } from './model';
import { discountOf, type PricedLine } from './rules';
import type { Templates } from './templates';

/** A coupon as a member sees it now (EXPIRED is the AVAILABLE coupon past its window). */
export type CouponViewState = 'AVAILABLE' | 'LOCKED' | 'USED' | 'EXPIRED' | 'REVOKED';

export interface CouponOfferView {
  couponId: string;
  templateId: string;
  name: string;
  discount: number;
  /** The template's community group, when the coupon is group-exclusive (the caller checks membership). */
  groupId?: string;
}

export interface WalletSummary {
  available: number;
  locked: number;
  used: number;
  expired: number;
  revoked: number;
}

/** What `Member.coupons` resolves to: the member's wallet, loaded once however many fields ask. */
export interface WalletShape {
  memberId: string;
  load(): Promise<{ seq: number; coupon: CouponDoc }[]>;
}

export function viewState(c: Pick<CouponDoc, 'state' | 'validUntil'>, at: Date): CouponViewState {
  if (c.state === 'AVAILABLE' && c.validUntil.getTime() < at.getTime()) return 'EXPIRED';
  return c.state;
}

/** The member's wallet (its list, summary and pages) and the coupons in it that an order can use. */
export function createWallet(ctx: CouponContext, ledger: CouponLedger, templates: Templates) {
  const { m, now } = ctx;
  const { owned, windowRefusal, lockedElsewhere, alreadyUsed, revokedRefusal } = ledger;
  const { template, requireTemplate } = templates;

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
    const out: WalletSummary = { available: 0, locked: 0, used: 0, expired: 0, revoked: 0 };
    for (const { coupon } of list) {
      const s = viewState(coupon, at);
      if (s === 'AVAILABLE') out.available++;
      else if (s === 'LOCKED') out.locked++;
      else if (s === 'USED') out.used++;
      else if (s === 'REVOKED') out.revoked++;
      else out.expired++;
    }
    return out;
  }

  return {
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
        out.push({
          couponId: c._id,
          templateId: c.templateId,
          name: c.name,
          discount,
          validUntil: c.validUntil.getTime(),
          ...(t.groupId ? { groupId: t.groupId } : {}),
        });
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
      if (head.state === 'REVOKED') throw revokedRefusal();
      const late = windowRefusal(first, at);
      if (late) throw late;
      const t = await requireTemplate(first.templateId);
      const { discount, refusal } = discountOf(t, lines, subtotal);
      if (refusal === 'OUT_OF_SCOPE') throw refuse('BAD_USER_INPUT', 'This coupon does not apply to these products', refusal, 'couponId');
      if (refusal === 'BELOW_THRESHOLD') {
        throw refuse('BAD_USER_INPUT', `This coupon needs at least ${t.threshold} fen of eligible products`, refusal, 'couponId');
      }
      if (discount <= 0) throw refuse('BAD_USER_INPUT', 'This coupon takes nothing off this order', 'NO_DISCOUNT', 'couponId');
      return { couponId, templateId: first.templateId, name: first.name, discount, ...(t.groupId ? { groupId: t.groupId } : {}) };
    },

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
  };
}
