import type { Resolvers } from './__generated__/resolvers';
import type { MemberRef } from './service';

// Member is owned by membership: referral returns a reference and resolves its own Member
// fields from the id alone.
const memberRef = (id: string): MemberRef => ({ id });

export const resolvers: Resolvers = {
  Query: {
    inviteCode: (_, { code }, { service, loaders }) => {
      const normalized = service.normalizeCode(code);
      return normalized ? loaders.codeByCode.load(normalized) : null;
    },
  },
  InviteCode: {
    __resolveReference: (ref, { loaders }) => loaders.codeByCode.load(ref.code),
    owner: (c) => memberRef(c.memberId),
    inviteeCount: (c, _, { loaders }) => loaders.inviteeCount.load(c.code),
  },
  Member: {
    __resolveReference: (ref) => ref,
    inviteCode: (m, _, { viewer, service, loaders }) => {
      service.assertMayReadMember(viewer, m.id);
      return loaders.codeByMember.load(m.id);
    },
    invitedBy: async (m, _, { viewer, service, loaders }) => {
      service.assertMayReadMember(viewer, m.id);
      const binding = await loaders.bindingByInvitee.load(m.id);
      return binding ? memberRef(binding.inviterId) : null;
    },
  },
};
