import type { Resolvers } from './__generated__/resolvers';

export const resolvers: Resolvers = {
  Query: {
    groups: (_, args, { viewer, service }) => service.listGroups(viewer, args),
    group: (_, { id }, { loaders }) => loaders.group.load(id),
  },
  Mutation: {
    createGroup: (_, { input }, { viewer, service }) => service.createGroup(viewer, input),
  },
  Group: {
    __resolveReference: (ref, { loaders }) => loaders.group.load(ref.id),
    id: (g) => g._id,
    memberCount: (g, _, { loaders }) => loaders.memberCount.load(g._id),
  },
  Member: {
    // Membership owns the member; a reference is all community needs to answer for it.
    __resolveReference: (ref) => ref,
    groups: (m, _, { viewer, service, loaders }) => {
      service.assertMayReadMember(viewer, m.id);
      return loaders.groupsOfMember.load(m.id);
    },
  },
};
