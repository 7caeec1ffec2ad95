import type { Bus, EventHandlers } from '@flywheel/service-kit';
import type { GroupsService } from './service';

/**
 * Tier and segment changes: learnt newest-changedAt-first, then the member is moved into the
 * BY_TIER / BY_SEGMENT groups they now match (and out of autoLeave ones). Each move is decided by
 * an append to the member's move ledger refused when a move was already decided on that profile
 * entry, so a redelivery or the other replica's copy moves nothing.
 */
export const groupsHandlers = (groups: GroupsService): EventHandlers => ({
  'membership.tier.changed': (env) => groups.learnTier(env),
  'membership.segment.changed': (env) => groups.learnSegment(env),
});

/** Membership asks whether a member is in a group now (group-exclusive coupons): the core membership row decides. */
export function replyToGroupMembership(bus: Bus, groups: GroupsService): void {
  bus.reply('community.group.membership', async (req) => ({ member: await groups.isMember(req.groupId, req.memberId) }));
}
