import {
  appendToLedger,
  badInput,
  decryptPii,
  encryptPii,
  isSelfOrStaff,
  ledgerHead,
  requireRole,
  text,
  wholeNumber,
  type PiiCipherKey,
  type Viewer,
} from '@flywheel/service-kit';
import type { AddressBook, AddressSnapshot } from '../clients/membership';
import { finalIdOf } from '../checkout/finals';
import type { CheckoutModels } from '../checkout/model';
import type { Models, OrderDoc } from '../order/model';
import { shippingFee, type FeeInput } from './fees';
import {
  SHOP_TEMPLATE,
  type FeeRuleDoc,
  type OrderAddressDoc,
  type RegionRuleDoc,
  type ShippingMethod,
  type ShippingModels,
  type ShippingTemplateEntry,
} from './model';

export interface FeeRuleInput {
  first: number;
  firstFee: number;
  additional: number;
  additionalFee: number;
}

export interface SetShippingTemplateInput {
  name: string;
  enabled?: boolean | null;
  method: ShippingMethod;
  defaultRule: FeeRuleInput;
  regionRules?: (FeeRuleInput & { provinceCodes: string[] })[] | null;
  undeliverable?: string[] | null;
  freeThreshold?: number | null;
}

/** A shipping address as the order's member and staff see it (decrypted). */
export interface OrderAddressView {
  recipientName: string;
  phone: string;
  province: { code: string; name: string };
  city: { code: string; name: string };
  district: { code: string; name: string };
  detail: string;
  label: string | null;
}

const MAX_FEE = 100_000; // 1000 yuan: beyond any parcel's fee; a typo guard.
const MAX_REGION_RULES = 34;
const PROVINCES = 34;
const MAX_AMOUNT = 1_000_000; // units or grams
const PROVINCE = /^\d{2}0000$/;

/** `first` and `additional` are units (COUNT) or grams (WEIGHT). */
function parseRule(r: FeeRuleInput | null | undefined, field: string): FeeRuleDoc {
  if (!r) throw badInput(`${field} is required`, field);
  return {
    first: wholeNumber(r.first, `${field}.first`, 1, MAX_AMOUNT),
    firstFee: wholeNumber(r.firstFee, `${field}.firstFee`, 0, MAX_FEE),
    additional: wholeNumber(r.additional, `${field}.additional`, 1, MAX_AMOUNT),
    additionalFee: wholeNumber(r.additionalFee, `${field}.additionalFee`, 0, MAX_FEE),
  };
}

function parseProvinces(codes: readonly string[] | null | undefined, field: string, max: number): string[] {
  const list = codes ?? [];
  if (list.length > max) throw badInput(`${field} has at most ${max} provinces`, field);
  return list.map((c, i) => {
    const code = (c ?? '').trim();
    if (!PROVINCE.test(code)) throw badInput(`${field}[${i}] must be a province code (6 digits ending in 0000)`, `${field}[${i}]`);
    return code;
  });
}

export interface ShippingDeps {
  models: ShippingModels & Pick<Models, 'Order'> & Pick<CheckoutModels, 'CheckoutFinal'>;
  /** Null when orders runs alone (tests): orders then carry no address and the default rule prices them. */
  addresses: AddressBook | null;
  pii: PiiCipherKey;
  now: () => Date;
}

/**
 * Shipping (运费): the shop's template (staff-managed, versioned), the fee of a checkout, and the
 * address snapshot an order keeps (encrypted; erased with the member).
 */
export function createShipping(deps: ShippingDeps) {
  const { models, pii, now } = deps;

  const template = () => ledgerHead(models.ShippingTemplate, SHOP_TEMPLATE);

  function open(a: AddressSnapshot | OrderAddressDoc): OrderAddressView {
    const sealed = 'phoneEnc' in a;
    return {
      recipientName: sealed ? decryptPii(pii, a.recipientNameEnc) : a.recipientName,
      phone: sealed ? decryptPii(pii, a.phoneEnc) : a.phone,
      province: { code: a.provinceCode, name: a.provinceName },
      city: { code: a.cityCode, name: a.cityName },
      district: { code: a.districtCode, name: a.districtName },
      detail: sealed ? decryptPii(pii, a.detailEnc) : a.detail,
      label: a.label ?? null,
    };
  }

  return {
    template,

    async setTemplate(viewer: Viewer | null, input: SetShippingTemplateInput): Promise<ShippingTemplateEntry> {
      const staffId = requireRole(viewer, 'STAFF').id;
      const method = input.method;
      if (method !== 'COUNT' && method !== 'WEIGHT') throw badInput('method is COUNT or WEIGHT', 'method');
      const name = text(input.name, 'name', 30);
      const defaultRule = parseRule(input.defaultRule, 'defaultRule');
      const raw = input.regionRules ?? [];
      if (raw.length > MAX_REGION_RULES) throw badInput(`At most ${MAX_REGION_RULES} region rules`, 'regionRules');
      const seen = new Set<string>();
      const regionRules: RegionRuleDoc[] = raw.map((r, i) => {
        const provinceCodes = parseProvinces(r.provinceCodes, `regionRules[${i}].provinceCodes`, PROVINCES);
        if (!provinceCodes.length) throw badInput('A region rule names at least one province', `regionRules[${i}].provinceCodes`);
        for (const c of provinceCodes) {
          if (seen.has(c)) throw badInput(`Province ${c} is in more than one rule`, `regionRules[${i}].provinceCodes`);
          seen.add(c);
        }
        return { ...parseRule(r, `regionRules[${i}]`), provinceCodes };
      });
      const undeliverable = parseProvinces(input.undeliverable, 'undeliverable', PROVINCES);
      const priced = undeliverable.find((c) => seen.has(c));
      if (priced) throw badInput(`Province ${priced} is both priced and undeliverable`, 'undeliverable');
      const freeThreshold = input.freeThreshold == null ? null : wholeNumber(input.freeThreshold, 'freeThreshold', 0, 100_000_000);
      const entry = await appendToLedger(models.ShippingTemplate, SHOP_TEMPLATE, () => ({
        name,
        enabled: input.enabled ?? true,
        method,
        defaultRule,
        regionRules,
        undeliverable: [...new Set(undeliverable)],
        freeThreshold,
        updatedBy: staffId,
        at: now(),
      }));
      return entry!;
    },

    /** The address a checkout ships to: the one named, or the member's default (null when the book is empty). */
    async addressFor(memberId: string, addressId: string | null): Promise<AddressSnapshot | null> {
      if (!deps.addresses) {
        if (addressId) throw badInput('Addresses are not available', 'addressId');
        return null;
      }
      return deps.addresses.snapshot(memberId, addressId);
    },

    /** The fee for a checkout, against the template in force now. */
    async feeFor(input: Omit<FeeInput, 'template'>) {
      return shippingFee({ ...input, template: await template() });
    },

    seal(a: AddressSnapshot): OrderAddressDoc {
      return {
        addressId: a.addressId,
        recipientNameEnc: encryptPii(pii, a.recipientName),
        phoneEnc: encryptPii(pii, a.phone),
        detailEnc: encryptPii(pii, a.detail),
        provinceCode: a.provinceCode,
        provinceName: a.provinceName,
        cityCode: a.cityCode,
        cityName: a.cityName,
        districtCode: a.districtCode,
        districtName: a.districtName,
        label: a.label ?? null,
      };
    },

    open,

    /** The order's address for its member and staff; null for anyone else, and once erased. */
    addressOf(viewer: Viewer | null, order: OrderDoc): OrderAddressView | null {
      if (!order.shippingAddress || !isSelfOrStaff(viewer, order.memberId)) return null;
      return open(order.shippingAddress);
    },

    /**
     * `membership.member.erased`: the address snapshots of the member's orders go, on the order
     * and on the checkout decision that carries a copy of it. A plain update of data nothing
     * decides on; a repeat changes nothing.
     */
    async erase(memberId: string): Promise<number> {
      const ids = (await models.Order.find({ memberId, shippingAddress: { $exists: true } }, { _id: 1 }).lean<OrderDoc[]>()).map(
        (o) => o._id,
      );
      if (!ids.length) return 0;
      const at = now();
      await models.Order.updateMany({ _id: { $in: ids } }, { $unset: { shippingAddress: 1 }, $set: { addressErasedAt: at } });
      await models.CheckoutFinal.updateMany({ _id: { $in: ids.map(finalIdOf) } }, { $unset: { 'order.shippingAddress': 1 } });
      return ids.length;
    },
  };
}
export type Shipping = ReturnType<typeof createShipping>;
