import { z } from 'zod';
import { AppError, OBJECT_ID, requireRole, type Logger, type Viewer } from '@flywheel/service-kit';
import type { EventEnvelope } from '@flywheel/events';
import { parseProgram } from '../program';
import type { Settings } from '../settings';
import type { CouponService } from './index';

/**
 * Coupons granted by the membership's own events: a welcome coupon (新人券) on registration and a
 * win-back coupon when a member becomes dormant (沉睡).
 * Which templates is staff-edited data; none means no campaign.
 */
const campaignSettings = z.object({
  welcomeTemplateId: z.string().regex(OBJECT_ID, 'must be a coupon template id').nullable(),
  winBackTemplateId: z.string().regex(OBJECT_ID, 'must be a coupon template id').nullable(),
});
export type CouponCampaigns = z.infer<typeof campaignSettings>;
const KEY = 'couponCampaigns';
const DEFAULTS: CouponCampaigns = { welcomeTemplateId: null, winBackTemplateId: null };

export function createCampaigns(deps: {
  settings: Settings;
  coupons: CouponService;
  templateExists: (id: string) => Promise<boolean>;
  logger: Pick<Logger, 'warn'>;
}) {
  const current = () => deps.settings.get<CouponCampaigns>(KEY, DEFAULTS);

  /** Grants once per key; a refusal (sold out, stopped, limit) is final, so it is logged, not retried. */
  async function grantOnce(key: string, memberId: string, templateId: string, reason: string, eventId: string) {
    try {
      await deps.coupons.grant({ key, memberId, templateId, reason });
    } catch (err) {
      const code = (err as { extensions?: { code?: string } }).extensions?.code;
      if (!code) throw err;
      deps.logger.warn({ err, eventId, memberId, code }, `${reason} coupon refused`);
    }
  }

  return {
    current,

    async update(viewer: Viewer | null, input: Partial<CouponCampaigns>): Promise<CouponCampaigns> {
      const staff = requireRole(viewer, 'STAFF');
      const next = parseProgram(campaignSettings, { ...(await current()), ...input });
      for (const field of ['welcomeTemplateId', 'winBackTemplateId'] as const) {
        const id = next[field];
        if (id && !(await deps.templateExists(id))) throw new AppError('NOT_FOUND', `Coupon template ${id} not found`, { field });
      }
      return deps.settings.set(KEY, next, staff.id);
    },

    async onRegistered(env: EventEnvelope<'membership.member.registered'>) {
      const { welcomeTemplateId } = await current();
      if (!welcomeTemplateId) return;
      await grantOnce(`welcome:${env.data.memberId}`, env.data.memberId, welcomeTemplateId, 'Welcome', env.id);
    },

    async onSegmentChanged(env: EventEnvelope<'membership.segment.changed'>) {
      if (env.data.to !== 'DORMANT') return;
      const { winBackTemplateId } = await current();
      if (!winBackTemplateId) return;
      // One coupon per time the member went dormant (each change is its own event).
      await grantOnce(`winback:${env.id}`, env.data.memberId, winBackTemplateId, 'Win-back', env.id);
    },
  };
}
