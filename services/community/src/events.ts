import { consumeForModules, type Bus, type EventHandlers, type Logger } from '@flywheel/service-kit';
import type { CommunityModule } from './modules';
import type { CommunityService } from './service';

/**
 * The core's handlers: `membership.member.registered` → the member joins the welcome group(s).
 * Each join is keyed `groupId:memberId`, so a redelivery (or a crash after some joins) replays
 * into a no-op.
 */
export function coreHandlers(service: CommunityService, logger: Logger): EventHandlers {
  return {
    'membership.member.registered': async (env) => {
      const groups = await service.welcomeMember(env.data.memberId, env.id);
      logger.debug({ memberId: env.data.memberId, groups: groups.map((g) => g._id), eventId: env.id }, 'member welcomed');
    },
  };
}

/** One durable consumer per subject, running the core's handler and every module's for it. */
export const registerConsumers = ({ bus, core, modules }: { bus: Bus; core: EventHandlers; modules: CommunityModule[] }): Promise<void> =>
  consumeForModules(bus, [core, ...modules.map((m) => m.on)]);
