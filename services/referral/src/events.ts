import { badInput, consumeForModules, type Bus, type EventHandlers, type Logger } from '@flywheel/service-kit';
import type { ReferralModule } from './modules';
import type { ReferralService } from './service';

/**
 * The core's handlers: `membership.member.registered` → the member's own invite code, then the
 * inviter binding. Both writes are unique-keyed (memberId; inviteeId), so a redelivery replays into
 * a no-op. Refusals are facts about the input, not failures: logged and acknowledged, never retried.
 */
export function coreHandlers(service: ReferralService, logger: Logger): EventHandlers {
  return {
    'membership.member.registered': async (env) => {
      const { memberId, invitedByCode } = env.data;
      const { inviteCode, binding } = await service.onMemberRegistered(env.data, env.id);
      const log = { memberId, eventId: env.id, inviteCode: inviteCode.code, invitedByCode };
      if (binding?.status === 'SELF_INVITE') logger.warn(log, 'self-invite refused');
      else if (binding?.status === 'UNKNOWN_CODE') logger.warn(log, 'unknown invite code ignored');
      else logger.debug({ ...log, binding: binding?.status ?? 'NONE' }, 'member registered');
    },
  };
}

/** One durable consumer per subject, running the core's handler and every module's for it. */
export const registerConsumers = ({ bus, core, modules }: { bus: Bus; core: EventHandlers; modules: ReferralModule[] }): Promise<void> =>
  consumeForModules(bus, [core, ...modules.map((m) => m.on)]);

/**
 * `referral.price.quote|lock|release` (orders' checkout): quote and lock go to the module that
 * prices the offer's kind; release asks every pricing module (each a no-op when it held nothing).
 */
export function registerPricing(bus: Bus, modules: ReferralModule[]): void {
  const pricers = modules.flatMap((m) => (m.pricing ? [m.pricing] : []));
  const pricer = (kind: string) => {
    const found = pricers.find((p) => p.kind === kind);
    if (!found) throw badInput(`No referral offers of kind ${kind}`, 'offer');
    return found;
  };
  bus.reply('referral.price.quote', (req) => pricer(req.offer.kind).quote(req));
  bus.reply('referral.price.lock', async (req) => {
    await pricer(req.offer.kind).lock(req);
    return { checkoutId: req.checkoutId };
  });
  bus.reply('referral.price.release', async ({ checkoutId }) => {
    let released = false;
    for (const p of pricers) if (await p.release(checkoutId)) released = true;
    return { checkoutId, released };
  });
}
