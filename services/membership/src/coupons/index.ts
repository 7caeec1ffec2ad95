import { notFound } from '@flywheel/service-kit';
import type { MembershipModule, ModuleDeps } from '../modules';
import { createCampaigns } from './campaigns';
import { createCouponResolvers } from './resolvers';
import { createCouponService } from './service';

/** A line of the order as benefits see it (catalog's priced line, with its category path). */
export interface BenefitLineInput {
  skuId: string;
  productId: string;
  categoryIds?: string[];
  quantity: number;
  /** Integer fen. */
  unitPrice: number;
}

/** A coupon of the member that applies to an order, and what it takes off. */
export interface CouponOffer {
  couponId: string;
  templateId: string;
  name: string;
  /** Integer fen, positive: what the coupon takes off this order. */
  discount: number;
  /**
   * A group-exclusive coupon's community group: it applies only while the member is in the group,
   * which the caller asks community (`community.group.membership`) — once, for the coupon it would use.
   */
  groupId?: string;
}

export interface CouponService {
  /** Gives a member a coupon of a template, once per `key` (quota and per-member limit apply). */
  grant(input: { key: string; memberId: string; templateId: string; reason: string }): Promise<{ couponId: string }>;
  /** The member's available coupons that apply to these lines, best (largest discount) first (group membership unchecked). */
  offers(memberId: string, lines: BenefitLineInput[], subtotal: number, at: Date): Promise<CouponOffer[]>;
  /** One chosen coupon for these lines (group membership unchecked); throws the refusal (NOT_FOUND, FORBIDDEN, BAD_USER_INPUT, CONFLICT). */
  offer(memberId: string, couponId: string, lines: BenefitLineInput[], subtotal: number, at: Date): Promise<CouponOffer>;
  /** AVAILABLE → LOCKED for this checkout; idempotent for the same checkout; CONFLICT otherwise. */
  lock(couponId: string, memberId: string, checkoutId: string): Promise<void>;
  /** LOCKED by this checkout → AVAILABLE; false when it was not locked by it (a no-op). */
  release(couponId: string, checkoutId: string): Promise<boolean>;
  /** LOCKED by this checkout → USED (payment); idempotent. */
  consume(couponId: string, checkoutId: string): Promise<void>;
  /** USED by this checkout → AVAILABLE again (full refund); false when it was not (a no-op). */
  restore(couponId: string, checkoutId: string): Promise<boolean>;
}

/**
 * Coupon templates, claims and grants (quota and per-member limits as unique slot claims), the
 * member's wallet, and each coupon's lock → use → return as ledger appends (see service.ts).
 */
export function createCouponsModule(deps: ModuleDeps): MembershipModule & { coupons: CouponService } {
  const service = createCouponService(deps);
  const coupons: CouponService = service.coupons;
  const campaigns = createCampaigns({
    settings: deps.settings,
    coupons,
    templateExists: async (id) => Boolean(await service.template(id)),
    logger: deps.logger,
  });
  return {
    name: 'coupons',
    resolvers: createCouponResolvers(service, campaigns),
    coupons,
    init: async () => {
      // Callers namespace their own keys (`live:<roomId>:…`); `request:` keeps them apart from
      // this module's internal keys (`referral:…`, GraphQL staff grants).
      deps.bus.reply('membership.coupon.grant', (req) =>
        coupons.grant({ key: `request:${req.key}`, memberId: req.memberId, templateId: req.templateId, reason: req.reason }),
      );
      deps.bus.reply('membership.coupon.revoke', (req) => service.revokeGrant(`request:${req.key}`, req.reason));
      // What a caller is about to promise (a live offer, a lottery prize): unknown is NOT_FOUND.
      deps.bus.reply('membership.coupon.template', async (req) => {
        const t = await service.template(req.templateId);
        if (!t) throw notFound('Coupon template');
        const active = t.status === 'ACTIVE' && !(t.validUntil && t.validUntil.getTime() <= deps.now().getTime());
        return { templateId: String(t._id), name: t.name, active };
      });
    },
    on: {
      'membership.member.registered': (env) => campaigns.onRegistered(env),
      'membership.segment.changed': (env) => campaigns.onSegmentChanged(env),
      'referral.reward.granted': async (env) => {
        const d = env.data;
        if (d.kind !== 'COUPON') return; // POINTS rewards are the loyalty module's
        if (!d.couponTemplateId) {
          deps.logger.warn({ eventId: env.id, rewardId: d.rewardId }, 'coupon reward without a template; ignored');
          return;
        }
        try {
          await coupons.grant({ key: `referral:${d.rewardId}`, memberId: d.memberId, templateId: d.couponTemplateId, reason: d.reason });
        } catch (err) {
          // A refusal (sold out, limit, stopped template) is final: redelivering cannot change it.
          const code = (err as { extensions?: { code?: string } }).extensions?.code;
          if (!code) throw err;
          deps.logger.warn({ err, eventId: env.id, rewardId: d.rewardId, code }, 'referral coupon reward refused');
        }
      },
      // Under the grant's key: an unused coupon is REVOKED, a used one marked revoke-wanted; once.
      'referral.reward.reversed': async (env) => {
        if (env.data.kind !== 'COUPON') return;
        await service.revokeGrant(`referral:${env.data.rewardId}`, env.data.reason || 'Referral reward reversed');
      },
    },
  };
}
