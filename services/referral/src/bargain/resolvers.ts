import { DateTime, isSelfOrStaff } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { BargainService } from './service';

export function bargainResolvers(bargains: BargainService): Resolvers {
  return {
    DateTime,
    Query: {
      bargainOffers: (_, __, { viewer }) => bargains.offers(viewer),
      bargainOffer: (_, { id }) => bargains.offer(id),
      bargain: (_, { id }, { viewer }) => bargains.bargain(viewer, id),
      myBargains: (_, __, { viewer }) => bargains.myBargains(viewer),
    },
    Mutation: {
      createBargainOffer: (_, { input }, { viewer }) => bargains.createOffer(viewer, input),
      startBargain: (_, { offerId, idempotencyKey }, { viewer }) => bargains.start(viewer, offerId, idempotencyKey),
      helpBargain: (_, { bargainId, deviceId }, { viewer }) => bargains.help(viewer, bargainId, deviceId),
    },
    BargainOffer: {
      id: (o) => o._id,
      stock: (o) => o.stock ?? null,
    },
    Bargain: {
      id: (b) => b.doc._id,
      offer: (b) => bargains.offerOf(b.doc.offerId),
      starter: (b) => ({ id: b.doc.memberId }),
      helpers: (b) => b.helps.length,
      cuts: (b) => b.helps.map((h) => ({ ...h, starterId: b.doc.memberId })),
      expiresAt: (b) => b.doc.expiresAt,
      createdAt: (b) => b.doc.createdAt,
    },
    BargainCut: {
      number: (c) => c.k,
      helper: (c, _, { viewer }) => (isSelfOrStaff(viewer, c.starterId) ? { id: c.helperId } : null),
    },
  };
}
