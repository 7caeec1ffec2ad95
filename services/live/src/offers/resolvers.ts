import type { Resolvers } from '../__generated__/resolvers';
import type { OfferService } from './service';

export function offerResolvers(offers: OfferService): Resolvers {
  return {
    Mutation: {
      attachLiveCouponOffer: (_, { input }, { viewer }) => offers.attachCouponOffer(viewer, input),
      claimLiveCoupon: (_, { offerId }, { viewer }) => offers.claimCoupon(viewer, offerId),
      startLiveFlashDeal: (_, { roomId, flashSaleId }, { viewer }) => offers.startFlashDeal(viewer, roomId, flashSaleId),
      endLiveOffer: (_, { id }, { viewer }) => offers.endOffer(viewer, id),
    },
    LiveRoom: {
      offers: (r) => offers.roomOffers(r._id.toHexString()),
      activeFlashDeal: (r) => offers.activeFlashDeal(r._id.toHexString()),
    },
    LiveOffer: {
      id: (o) => o._id,
      room: async (o, _, { loaders }) => (await loaders.liveRoom.load(o.roomId))!,
      couponTemplateId: (o) => (o.kind === 'COUPON' ? o.templateId : null),
      couponName: (o) => (o.kind === 'COUPON' ? o.name : null),
      quantity: (o) => (o.kind === 'COUPON' ? o.quantity : null),
      perViewerLimit: (o) => (o.kind === 'COUPON' ? o.perViewerLimit : null),
      remaining: (o) => offers.remaining(o),
      flashSale: (o) => (o.kind === 'FLASH_DEAL' ? { id: o.flashSaleId } : null),
      product: (o) => (o.kind === 'FLASH_DEAL' ? { id: o.productId } : null),
      startsAt: (o) => o.startsAt ?? null,
      endsAt: (o) => o.endsAt ?? null,
      endedAt: (o) => o.endedAt ?? null,
    },
    LiveCouponClaim: {
      claimNumber: (c) => c.n,
    },
  };
}
