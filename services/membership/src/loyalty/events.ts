import type { Bus } from '@flywheel/service-kit';
import type { LoyaltyService } from './service';

/**
 * Points other services grant and take back under their own keys (community's showcase rewards);
 * `request:` keeps the callers' keys apart from this module's own grant ops. And the program's
 * facts other services follow (its time zone).
 */
export function registerLoyaltyRepliers(bus: Bus, loyalty: LoyaltyService): void {
  bus.reply('membership.points.grant', (req) =>
    loyalty.grantByKey({ key: `request:${req.key}`, memberId: req.memberId, points: req.points, reason: req.reason }),
  );
  bus.reply('membership.points.revoke', (req) => loyalty.revokeByKey(`request:${req.key}`, req.reason));
  // The program's time zone (community's check-in days follow it).
  bus.reply('membership.program.describe', async () => ({ timeZone: (await loyalty.program()).timeZone }));
}
