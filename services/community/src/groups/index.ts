import type { Connection } from 'mongoose';
import type { Bus, Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { CommunityModule } from '../modules';
import { groupsHandlers, replyToGroupMembership } from './events';
import { createGroupModels } from './model';
import type { PostService } from '../posts/service';
import { groupsResolvers } from './resolvers';
import { createGroupRhythms, createRhythmModels } from './rhythm';
import { createGroupsService, type GroupsService } from './service';

/** Group rules, capacity seats, rule-driven moves, operators, announcements, polls and rhythms. */
export function createGroupsModule(deps: {
  db: Connection;
  bus: Bus;
  models: Models;
  logger: Logger;
  kick: () => void;
  now: () => Date;
  /** Rhythm occurrences are published as posts. */
  posts: PostService;
}): CommunityModule & { groups: GroupsService } {
  const models = createGroupModels(deps.db);
  const groups = createGroupsService({ models, core: deps.models, kick: deps.kick, now: deps.now, logger: deps.logger });
  const rhythms = createGroupRhythms({
    models: createRhythmModels(deps.db),
    core: deps.models,
    groups,
    posts: deps.posts,
    now: deps.now,
    logger: deps.logger,
  });
  return {
    name: 'groups',
    groups,
    resolvers: groupsResolvers(groups, rhythms),
    outboxSources: [models.Move],
    on: groupsHandlers(groups),
    init: async () => replyToGroupMembership(deps.bus, groups),
    sweep: async (at) => ({ ...(await rhythms.sweep(at)), ...(await groups.sweepSeatHolds(at)) }),
  };
}
