import type { Bus, Logger } from '@flywheel/service-kit';
import type { CommunityService } from './service';

/**
 * `membership.member.registered` → the member joins the welcome group(s). Each join is keyed
 * `groupId:memberId`, so a redelivery (or a crash after some joins) replays into a no-op.
 */
export async function registerConsumers({ bus, service, logger }: { bus: Bus; service: CommunityService; logger: Logger }): Promise<void> {
  await bus.consume('membership.member.registered', async (env) => {
    const groups = await service.welcomeMember(env.data.memberId, env.id);
    logger.debug({ memberId: env.data.memberId, groups: groups.map((g) => g._id), eventId: env.id }, 'member welcomed');
  });
}
