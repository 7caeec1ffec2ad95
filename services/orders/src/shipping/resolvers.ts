import type { Resolvers } from '../__generated__/resolvers';
import { money } from '../types';
import type { ShippingTemplateEntry } from './model';
import type { Shipping } from './service';
import { requireRole } from '@flywheel/service-kit';

const templateView = (t: ShippingTemplateEntry) => ({
  version: t.seq,
  name: t.name,
  enabled: t.enabled,
  method: t.method,
  defaultRule: feeRule(t.defaultRule),
  regionRules: t.regionRules.map((r) => ({ ...feeRule(r), provinceCodes: r.provinceCodes })),
  undeliverable: t.undeliverable,
  freeThreshold: t.freeThreshold === null ? null : money(t.freeThreshold),
  updatedAt: t.at,
});
const feeRule = (r: ShippingTemplateEntry['defaultRule']) => ({
  first: r.first,
  firstFee: money(r.firstFee),
  additional: r.additional,
  additionalFee: money(r.additionalFee),
});

export function shippingResolvers(shipping: Shipping): Resolvers {
  return {
    Query: {
      shippingTemplate: async () => {
        const t = await shipping.template();
        return t ? templateView(t) : null;
      },
    },
    Mutation: {
      setShippingTemplate: async (_, { input }, { viewer }) => {
        requireRole(viewer, 'STAFF');
        return { template: templateView(await shipping.setTemplate(viewer, input)) };
      },
    },
    Order: {
      shippingFee: (o) => money(o.shipping?.fee ?? 0),
      shipping: (o) =>
        o.shipping ? { fee: money(o.shipping.fee), baseFee: money(o.shipping.baseFee), waivedBy: o.shipping.waivedBy } : null,
      shippingAddress: (o, _, { viewer }) => shipping.addressOf(viewer, o),
    },
  };
}
