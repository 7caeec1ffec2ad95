import { Schema, type Connection } from 'mongoose';
import { ledgerIndexes, type LedgerEntry } from '@flywheel/service-kit';

export type ShippingMethod = 'COUNT' | 'WEIGHT';
export type ShippingWaiver = 'TIER' | 'THRESHOLD';

/** 首件/续件 (units) or 首重/续重 (grams): `firstFee` covers the first `first`, each further `additional` (or part) costs `additionalFee`. */
export interface FeeRuleDoc {
  first: number;
  firstFee: number;
  additional: number;
  additionalFee: number;
}

export interface RegionRuleDoc extends FeeRuleDoc {
  /** Province codes (GB/T 2260, ending in 0000) this rule prices. */
  provinceCodes: string[];
}

/**
 * One version of the shop's shipping template (运费模板), an entry of the append-only ledger
 * `accountId = 'shop'`: the head is the template in force. A change appends a version, so orders
 * placed before keep the fee they were quoted (they store it) and the version they were priced by.
 */
export interface ShippingTemplateEntry extends LedgerEntry {
  name: string;
  /** Off: checkouts charge no shipping fee. */
  enabled: boolean;
  method: ShippingMethod;
  defaultRule: FeeRuleDoc;
  regionRules: RegionRuleDoc[];
  /** Provinces not delivered to: a checkout to one is refused. */
  undeliverable: string[];
  /** 满 X 元包邮: goods total after discounts at or above this (fen) ships free; null: never. */
  freeThreshold: number | null;
  updatedBy: string;
  at: Date;
}

/** The shipping fee an order was charged, as computed at checkout (never recomputed). */
export interface OrderShippingDoc {
  /** Integer fen the member pays for shipping (0 when waived). */
  fee: number;
  /** Integer fen the template asked before any waiver. */
  baseFee: number;
  waivedBy: ShippingWaiver | null;
  /** The template version (ledger seq) the fee came from; null when no template was in force. */
  templateVersion: number | null;
}

/**
 * The address an order ships to, copied from the member's book at checkout. Name, phone and
 * detail are AES-256-GCM ciphertext under orders' PII_ENCRYPTION_KEY; erasure removes the whole
 * snapshot.
 */
export interface OrderAddressDoc {
  addressId: string;
  recipientNameEnc: string;
  phoneEnc: string;
  detailEnc: string;
  provinceCode: string;
  provinceName: string;
  cityCode: string;
  cityName: string;
  districtCode: string;
  districtName: string;
  label: string | null;
}

export const SHOP_TEMPLATE = 'shop';

export function createShippingModels(db: Connection) {
  const schema = new Schema<ShippingTemplateEntry>(
    {
      _id: String,
      accountId: { type: String, required: true },
      seq: { type: Number, required: true },
      name: String,
      enabled: Boolean,
      method: String,
      defaultRule: Schema.Types.Mixed,
      regionRules: Schema.Types.Mixed,
      undeliverable: [String],
      freeThreshold: { type: Number, default: null },
      updatedBy: String,
      at: Date,
    },
    { versionKey: false, minimize: false },
  );
  for (const idx of ledgerIndexes) schema.index(idx);
  return { ShippingTemplate: db.model<ShippingTemplateEntry>('ShippingTemplate', schema, 'shipping_templates') };
}
export type ShippingModels = ReturnType<typeof createShippingModels>;
