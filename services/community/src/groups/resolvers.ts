import type { Resolvers, Segment, Tier } from '../__generated__/resolvers';
import type { GroupRhythms } from './rhythm';
import type { GroupsService } from './service';

export function groupsResolvers(groups: GroupsService, rhythms: GroupRhythms): Resolvers {
  return {
    Query: {
      groupPoll: (_, { id }, { viewer }) => groups.readPoll(viewer, id),
    },
    Mutation: {
      configureGroup: (_, { id, input }, { viewer }) => groups.configureGroup(viewer, id, input),
      joinGroup: (_, { groupId }, { viewer }) => groups.join(viewer, groupId),
      leaveGroup: (_, { groupId }, { viewer }) => groups.leave(viewer, groupId),
      addGroupMember: (_, { groupId, memberId }, { viewer }) => groups.addMember(viewer, groupId, memberId),
      assignGroupOperator: (_, { groupId, memberId }, { viewer }) => groups.assignOperator(viewer, groupId, memberId),
      pinGroupAnnouncement: (_, { groupId, body }, { viewer }) => groups.pin(viewer, groupId, body),
      createGroupPoll: (_, { input }, { viewer }) => groups.createPoll(viewer, input),
      voteInGroupPoll: (_, { pollId, option }, { viewer }) => groups.vote(viewer, pollId, option),
      scheduleGroupRhythm: (_, { groupId, input }, { viewer }) => rhythms.schedule(viewer, groupId, input),
      stopGroupRhythm: (_, { id }, { viewer }) => rhythms.stop(viewer, id),
    },
    Group: {
      type: (g) => (g.type as never) ?? null,
      rules: (g) => g.rules ?? '',
      capacity: (g) => g.capacity ?? null,
      joinPolicy: (g) => ({
        kind: (g.policy?.kind ?? 'OPEN') as never,
        minTier: (g.policy?.minTier ?? null) as Tier | null,
        segments: (g.policy?.segments ?? []) as Segment[],
      }),
      autoLeave: (g) => g.autoLeave ?? false,
      announcement: (g) => groups.announcement(g._id),
      operatorIds: (g) => groups.operators(g._id),
      rhythms: (g) => rhythms.list(g._id),
    },
    GroupRhythm: {
      id: (r) => r._id,
      kind: (r) => r.kind as never,
      scheduledBy: (r) => r.by,
      createdAt: (r) => r.createdAt.toISOString(),
      stoppedAt: (r) => r.stoppedAt?.toISOString() ?? null,
    },
    GroupAnnouncement: {
      pinnedAt: (a) => a.at.toISOString(),
    },
    GroupPoll: {
      id: (p) => p._id,
      group: (p, _, { loaders }) => loaders.group.load(p.groupId) as never,
      options: (p) => groups.results(p),
      closesAt: (p) => p.closesAt.toISOString(),
      closed: (p) => new Date() >= p.closesAt,
    },
  };
}
