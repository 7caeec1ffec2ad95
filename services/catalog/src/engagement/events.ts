import type { Bus } from '@flywheel/service-kit';
import type { EngagementService } from './service';

/** Erasure reaches catalog as an event: the member's favourites and views go (idempotent by itself). */
export async function registerEngagementEvents(bus: Bus, engagement: EngagementService): Promise<void> {
  await bus.consume('membership.member.erased', async (env) => {
    await engagement.eraseMember(env.data.memberId);
  });
}
