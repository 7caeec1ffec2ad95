import { isSelfOrStaff, requireRole, scalarResolvers } from '@flywheel/service-kit';
import type { Resolvers } from './__generated__/resolvers';

export const resolvers: Resolvers = {
  ...scalarResolvers,
  Query: {
    me: (_, __, { viewer, loaders }) => (viewer?.roles.includes('CUSTOMER') ? loaders.member.load(viewer.id) : null),
    session: (_, __, { viewer, service }) => service.sessionOf(viewer),
    member: (_, { id }, { viewer, loaders }) => {
      requireRole(viewer, 'STAFF');
      return loaders.member.load(id);
    },
    members: (_, args, { viewer, service }) => service.listMembers(viewer, args),
  },
  Mutation: {
    requestLoginCode: (_, { input }, { service }) => service.requestLoginCode(input.phone),
    login: (_, { input }, { service }) => service.login(input),
    staffLogin: (_, { input }, { service }) => service.staffLogin(input.email, input.password),
    createStaffAccount: (_, { input }, { viewer, service }) => service.createStaffAccount(viewer, input),
    refreshSession: (_, { input }, { service }) => service.refreshSession(input.refreshToken),
    updateProfile: (_, { input }, { viewer, service }) => service.updateProfile(viewer, input),
  },
  Member: {
    __resolveReference: (ref, { loaders }) => loaders.member.load(ref.id),
    id: (m) => m._id.toHexString(),
    phone: (m, _, { viewer, service }) => service.phoneFor(viewer, m),
    birthday: (m, _, { viewer }) => (isSelfOrStaff(viewer, m._id.toHexString()) ? (m.birthday ?? null) : null),
  },
  Session: {
    member: (s, _, { loaders }) => (s.memberId ? loaders.member.load(s.memberId) : null),
    staff: (s, _, { loaders }) => (s.staffId ? loaders.staff.load(s.staffId) : null),
  },
  StaffAccount: {
    id: (s) => s._id.toHexString(),
    role: (s) => s.role ?? 'STAFF',
  },
};
