import type { Connection } from 'mongoose';
import type { Logger } from '@flywheel/service-kit';
import type { Models } from '../model';
import type { CommunityModule } from '../modules';
import { groupsHandlers } from './events';
import { createGroupModels } from './model';
import { groupsResolvers } from './resolvers';
import { createGroupsService, type GroupsService } from './service';

/** Group rules, capacity seats, rule-driven moves, operators, announcements and polls. */
export function createGroupsModule(deps: {
  db: Connection;
  models: Models;
  logger: Logger;
  kick: () => void;
  now: () => Date;
}): CommunityModule & { groups: GroupsService } {
  const models = createGroupModels(deps.db);
  const groups = createGroupsService({ models, core: deps.models, kick: deps.kick, now: deps.now, logger: deps.logger });
  return {
    name: 'groups',
    groups,
    resolvers: groupsResolvers(groups),
    outboxSources: [models.Move],
    on: groupsHandlers(groups),
  };
}
