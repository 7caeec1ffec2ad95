import { ruleFee, shippingFee } from '../shipping/fees';
import type { ShippingTemplateEntry } from '../shipping/model';

// The fee arithmetic, pure (the gateway test addresses-shipping.test.ts covers checkout end to end).
const template = (over: Partial<ShippingTemplateEntry> = {}): ShippingTemplateEntry => ({
  _id: 'shop:3',
  accountId: 'shop',
  seq: 3,
  name: '按重量',
  enabled: true,
  method: 'WEIGHT',
  // 首重 1 kg 12 元, 续重 each started 500 g 4 元.
  defaultRule: { first: 1000, firstFee: 1200, additional: 500, additionalFee: 400 },
  regionRules: [{ provinceCodes: ['440000'], first: 1000, firstFee: 800, additional: 1000, additionalFee: 300 }],
  undeliverable: ['540000'],
  freeThreshold: 9900,
  updatedBy: 'staff',
  at: new Date(),
  ...over,
});
const base = { provinceCode: '110000', lines: [{ quantity: 3, weightGrams: 450 }], goodsTotal: 5000, tierFreeShipping: false };

describe('shipping fees', () => {
  test('by weight: 首重 then each started 续重 step; a SKU without a weight counts 0 g but a parcel still costs 首重', () => {
    expect(ruleFee({ first: 1000, firstFee: 1200, additional: 500, additionalFee: 400 }, 1350)).toBe(1600);
    expect(shippingFee({ ...base, template: template() })).toEqual({ fee: 1600, baseFee: 1600, waivedBy: null, templateVersion: 3 });
    expect(shippingFee({ ...base, lines: [{ quantity: 2 }], template: template() }).fee).toBe(1200);
  });

  test('a province of its own rule; undeliverable refused; no address is the default rule', () => {
    expect(shippingFee({ ...base, provinceCode: '440000', template: template() }).fee).toBe(1100);
    expect(() => shippingFee({ ...base, provinceCode: '540000', template: template() })).toThrow(/does not deliver/);
    expect(shippingFee({ ...base, provinceCode: null, template: template() }).fee).toBe(1600);
  });

  test('waived by the tier first, then by the threshold; no template or a disabled one charges nothing', () => {
    expect(shippingFee({ ...base, tierFreeShipping: true, template: template() })).toMatchObject({
      fee: 0,
      baseFee: 1600,
      waivedBy: 'TIER',
    });
    expect(shippingFee({ ...base, goodsTotal: 9900, template: template() })).toMatchObject({ fee: 0, waivedBy: 'THRESHOLD' });
    expect(shippingFee({ ...base, goodsTotal: 9899, template: template() }).fee).toBe(1600);
    expect(shippingFee({ ...base, template: null })).toEqual({ fee: 0, baseFee: 0, waivedBy: null, templateVersion: null });
    expect(shippingFee({ ...base, provinceCode: '540000', template: template({ enabled: false }) }).fee).toBe(0);
  });
});
