import { isStaff, requireRole } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { RfmService } from './service';

export function createRfmResolvers(rfm: RfmService): Resolvers {
  return {
    Query: {
      segmentSizes: (_, __, { viewer }) => {
        requireRole(viewer, 'STAFF');
        return rfm.segmentSizes();
      },
      segmentMembers: (_, { segment, first, after }, { viewer }) => {
        requireRole(viewer, 'STAFF');
        return rfm.segmentMembers(segment, { first, after });
      },
      rfmSettings: (_, __, { viewer }) => {
        requireRole(viewer, 'STAFF');
        return rfm.settings();
      },
    },
    Mutation: {
      updateRfmSettings: (_, { input }, { viewer }) => {
        const v = requireRole(viewer, 'STAFF');
        return rfm.updateSettings(input, v.id);
      },
    },
    Member: {
      rfm: (m, _, { viewer }) => (isStaff(viewer) ? rfm.profileOf(m._id.toHexString(), m.registeredAt ?? null) : null),
    },
    RfmProfile: {
      history: (p, { first, after }) => rfm.history(p.memberId, { first, after }, p.segmentSeq),
    },
    SegmentChange: {
      id: (e) => e._id,
      changedAt: (e) => e.at,
    },
  };
}
