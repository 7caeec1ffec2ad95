import { fromBusError, type Bus } from '@flywheel/service-kit';
import type { CatalogQuote, StockLine } from '../types';

/**
 * Orders' view of catalog over NATS request/reply: server-side prices and stock reservations.
 * Refusals arrive as AppErrors with catalog's code (NOT_FOUND, BAD_USER_INPUT, OUT_OF_STOCK);
 * no answer in time is UNAVAILABLE.
 */
export function createCatalogClient(bus: Pick<Bus, 'request'>, timeoutMs?: number) {
  return {
    /**
     * Prices come only from catalog, never from the client. `orderId` when the quote is for
     * placing that order: catalog's flash gate then holds the flash lines' units for it.
     */
    async quote(lines: StockLine[], memberId?: string, orderId?: string): Promise<CatalogQuote> {
      const request = { lines, memberId, ...(orderId ? { orderId } : {}) };
      const quote = await bus.request('catalog.price.quote', request, { timeoutMs }).catch(fromBusError);
      const asked = new Map(lines.map((l) => [l.skuId, l.quantity]));
      const consistent =
        quote.lines.length === lines.length &&
        quote.lines.every((l) => asked.get(l.skuId) === l.quantity) &&
        quote.total === quote.lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
      if (!consistent) throw new Error('catalog quote does not match the request');
      return quote;
    },

    /** All lines or none; idempotent per order id (a replay answers with the first result). */
    async reserve(orderId: string, memberId: string, lines: (StockLine & { flashSaleId?: string })[]): Promise<void> {
      await bus.request('catalog.stock.reserve', { orderId, memberId, lines }, { timeoutMs }).catch(fromBusError);
    },

    /** Gives back what a checkout's quote holds at the flash gate (it stopped before reserving). */
    async unhold(orderId: string, flashSaleIds: string[]): Promise<void> {
      await bus.request('catalog.flash.unhold', { orderId, flashSaleIds }, { timeoutMs }).catch(fromBusError);
    },

    /** Gives back an order's reservation; catalog releases it at most once. */
    async release(orderId: string): Promise<boolean> {
      const reply = await bus.request('catalog.stock.release', { orderId }, { timeoutMs }).catch(fromBusError);
      return reply.released;
    },
  };
}
export type CatalogClient = ReturnType<typeof createCatalogClient>;
