import { badInput } from '@flywheel/service-kit';
import { MAX_LINES, MAX_QUANTITY, type StockLine } from '../types';

/**
 * Lines as a client sent them (an order, a shipment, an after-sale), validated, with lines of the
 * same SKU added together and ordered by SKU (a stable fingerprint).
 */
export function mergeLines(raw: { skuId: string; quantity: number }[]): StockLine[] {
  if (raw.length < 1 || raw.length > MAX_LINES) throw badInput(`An order has 1 to ${MAX_LINES} lines`, 'lines');
  const merged = new Map<string, number>();
  raw.forEach((line, i) => {
    const skuId = (line.skuId ?? '').trim();
    if (!skuId) throw badInput('skuId is required', `lines[${i}].skuId`);
    if (!Number.isInteger(line.quantity) || line.quantity < 1 || line.quantity > MAX_QUANTITY) {
      throw badInput(`Quantity must be 1 to ${MAX_QUANTITY}`, `lines[${i}].quantity`);
    }
    merged.set(skuId, (merged.get(skuId) ?? 0) + line.quantity);
  });
  for (const [skuId, quantity] of merged) {
    if (quantity > MAX_QUANTITY) throw badInput(`At most ${MAX_QUANTITY} of one SKU per order`, `lines(${skuId}).quantity`);
  }
  return [...merged].map(([skuId, quantity]) => ({ skuId, quantity })).sort((a, b) => (a.skuId < b.skuId ? -1 : 1));
}
