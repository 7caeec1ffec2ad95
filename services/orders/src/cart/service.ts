import { appendToLedger, badInput, claimOnce, ledgerHead, notFound, requireRole, sha256, type Viewer } from '@flywheel/service-kit';
import type { CatalogClient } from '../clients/catalog';
import { codeOf, MAX_LINES, MAX_QUANTITY, type CatalogQuote, type PriceKind, type QuotedLine, type StockLine } from '../types';
import type { CartEntryDoc, CartLineDoc, CartModels } from './model';

export type CartLineStatus = 'OK' | 'PRICE_CHANGED' | 'OUT_OF_STOCK' | 'OFF_SHELF' | 'UNKNOWN' | 'UNAVAILABLE';

/** A cart line as the member sees it now: re-priced and re-checked on every read. */
export interface CartLineView {
  skuId: string;
  productId: string;
  quantity: number;
  /** Integer fen, as quoted now; null when the line cannot be bought now. */
  unitPrice: number | null;
  subtotal: number | null;
  priceKind: PriceKind | null;
  /** Integer fen: what the member saw when they last added or changed the line. */
  seenUnitPrice: number;
  status: CartLineStatus;
  message: string | null;
  addedAt: Date;
}

export interface CartView {
  lines: CartLineView[];
  /** Integer fen: the lines that can be bought now (OK and PRICE_CHANGED). */
  total: number;
  /** Units across the lines that can be bought now. */
  itemCount: number;
}

/** What catalog said about one line: its price, or its refusal (by code), or nothing at all. */
export type LineQuote = { ok: true; line: QuotedLine } | { ok: false; code: string | null; message: string };

/** The line's status given what catalog answered: never dropped, always explained. */
export function assessLine(held: { skuId: string; quantity: number; unitPrice: number }, q: LineQuote) {
  // Catalog's stock figure is advisory (the reservation at checkout decides), but a line asking
  // for more than there is cannot be bought as it stands; older catalogs send no figure.
  const available = q.ok ? q.line.available : undefined;
  if (available !== undefined && held.quantity > available) {
    return {
      status: 'OUT_OF_STOCK' as CartLineStatus,
      message: available > 0 ? `Only ${available} left` : 'Out of stock',
      unitPrice: null,
      subtotal: null,
      priceKind: null,
    };
  }
  if (q.ok) {
    const changed = q.line.unitPrice !== held.unitPrice;
    return {
      status: (changed ? 'PRICE_CHANGED' : 'OK') as CartLineStatus,
      message: changed ? `The price changed from ${held.unitPrice} to ${q.line.unitPrice} fen since this line was added` : null,
      unitPrice: q.line.unitPrice,
      subtotal: q.line.unitPrice * held.quantity,
      priceKind: q.line.priceKind,
    };
  }
  const status: CartLineStatus =
    q.code === 'NOT_FOUND'
      ? 'UNKNOWN'
      : q.code === 'BAD_USER_INPUT'
        ? 'OFF_SHELF'
        : q.code === 'OUT_OF_STOCK'
          ? 'OUT_OF_STOCK'
          : 'UNAVAILABLE';
  const message =
    status === 'UNAVAILABLE'
      ? 'Prices cannot be checked right now; try again shortly'
      : status === 'UNKNOWN'
        ? 'This item no longer exists'
        : q.message;
  return { status, message, unitPrice: null, subtotal: null, priceKind: null };
}

export const BUYABLE: readonly CartLineStatus[] = ['OK', 'PRICE_CHANGED'];

export interface CartDeps {
  models: CartModels;
  catalog: CatalogClient;
  now: () => Date;
}

/** A line's id: one per (member, SKU). */
const lineIdFor = (memberId: string, skuId: string) => sha256(`cart\0${memberId}\0${skuId}`).slice(0, 32);

function parseLine(input: { skuId: string; quantity?: number | null }, needQuantity: boolean): StockLine {
  const skuId = (input.skuId ?? '').trim();
  if (!skuId || skuId.length > 128) throw badInput('skuId must be 1 to 128 characters', 'skuId');
  if (!needQuantity) return { skuId, quantity: 0 };
  const q = input.quantity;
  if (typeof q !== 'number' || !Number.isInteger(q) || q < 1 || q > MAX_QUANTITY)
    throw badInput(`Quantity must be 1 to ${MAX_QUANTITY}`, 'quantity');
  return { skuId, quantity: q };
}

/**
 * The member's cart. Only the member writes it; lines are separate documents and each line's
 * quantity is a ledger, so nothing is a read-modify-write of a whole cart. Prices are never
 * stored as the truth: every read asks catalog again and flags what changed.
 */
export function createCartService(deps: CartDeps) {
  const { models, catalog, now } = deps;

  const head = (lineId: string) => ledgerHead(models.CartEntry, lineId) as Promise<CartEntryDoc | null>;

  /** The member's lines with a quantity, oldest first. */
  async function held(memberId: string): Promise<{ line: CartLineDoc; head: CartEntryDoc }[]> {
    const lines = await models.CartLine.find({ memberId }).sort({ createdAt: 1, _id: 1 }).lean<CartLineDoc[]>();
    const heads = await Promise.all(lines.map((l) => head(l._id)));
    return lines.flatMap((line, i) => {
      const h = heads[i];
      return h && h.quantity > 0 ? [{ line, head: h }] : [];
    });
  }

  /** One quote for the whole cart; when catalog refuses it, one per line to find which lines. */
  async function quoteLines(memberId: string, lines: StockLine[]): Promise<LineQuote[]> {
    const refused = (err: unknown): LineQuote => ({ ok: false, code: codeOf(err), message: (err as Error).message });
    let whole: CatalogQuote;
    try {
      whole = await catalog.quote(lines, memberId);
    } catch (err) {
      const code = codeOf(err);
      if (code === null || code === 'UNAVAILABLE') return lines.map(() => refused(err));
      return Promise.all(
        lines.map((l) =>
          catalog.quote([l], memberId).then(
            (q): LineQuote => ({ ok: true, line: q.lines[0]! }),
            (e: unknown) => refused(e),
          ),
        ),
      );
    }
    const bySku = new Map(whole.lines.map((l) => [l.skuId, l]));
    return lines.map((l) => ({ ok: true, line: bySku.get(l.skuId)! }));
  }

  async function view(memberId: string): Promise<CartView> {
    const items = await held(memberId);
    if (!items.length) return { lines: [], total: 0, itemCount: 0 };
    const quotes = await quoteLines(
      memberId,
      items.map((i) => ({ skuId: i.line.skuId, quantity: i.head.quantity })),
    );
    const lines = items.map(({ line, head: h }, i): CartLineView => {
      const assessed = assessLine({ skuId: line.skuId, quantity: h.quantity, unitPrice: h.unitPrice }, quotes[i]!);
      return {
        skuId: line.skuId,
        productId: line.productId,
        quantity: h.quantity,
        seenUnitPrice: h.unitPrice,
        addedAt: line.createdAt,
        ...assessed,
      };
    });
    const buyable = lines.filter((l) => BUYABLE.includes(l.status));
    return {
      lines,
      total: buyable.reduce((sum, l) => sum + (l.subtotal ?? 0), 0),
      itemCount: buyable.reduce((sum, l) => sum + l.quantity, 0),
    };
  }

  /** Sets a line from its head; `decide` throws to refuse. The price seen is catalog's price now. */
  async function write(memberId: string, skuId: string, quoted: QuotedLine, op: 'ADD' | 'SET', decide: (current: number) => number) {
    const lineId = lineIdFor(memberId, skuId);
    await appendToLedger(models.CartEntry, lineId, (h) => ({
      memberId,
      skuId,
      quantity: decide(h?.quantity ?? 0),
      unitPrice: quoted.unitPrice,
      priceKind: quoted.priceKind,
      op,
      at: now(),
    }));
  }

  return {
    cart: (viewer: Viewer | null) => view(requireRole(viewer, 'CUSTOMER').id),

    /** Adds units of a SKU; adding a SKU already in the cart adds to its line. */
    async addLine(viewer: Viewer | null, input: { skuId: string; quantity: number }): Promise<CartView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const { skuId, quantity } = parseLine(input, true);
      // Catalog vouches for the SKU (and its product) before it enters the cart.
      const quoted = (await catalog.quote([{ skuId, quantity }], memberId)).lines[0]!;
      const lineId = lineIdFor(memberId, skuId);
      if (!(await models.CartLine.exists({ _id: lineId }))) {
        if ((await held(memberId)).length >= MAX_LINES) throw badInput(`A cart holds at most ${MAX_LINES} different items`, 'skuId');
        await claimOnce(models.CartLine, { _id: lineId, memberId, skuId, productId: quoted.productId, createdAt: now() });
      }
      await write(memberId, skuId, quoted, 'ADD', (current) => {
        if (current + quantity > MAX_QUANTITY) throw badInput(`At most ${MAX_QUANTITY} of one item in the cart`, 'quantity');
        return current + quantity;
      });
      return view(memberId);
    },

    /** Sets the quantity of a line already in the cart. */
    async updateLine(viewer: Viewer | null, input: { skuId: string; quantity: number }): Promise<CartView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const { skuId, quantity } = parseLine(input, true);
      if (!(await models.CartLine.exists({ _id: lineIdFor(memberId, skuId) }))) throw notFound('Cart line');
      const quoted = (await catalog.quote([{ skuId, quantity }], memberId)).lines[0]!;
      await write(memberId, skuId, quoted, 'SET', (current) => {
        if (current === 0) throw notFound('Cart line');
        return quantity;
      });
      return view(memberId);
    },

    /** Removing a line that is not in the cart is a no-op. */
    async removeLine(viewer: Viewer | null, input: { skuId: string }): Promise<CartView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const { skuId } = parseLine(input, false);
      await appendToLedger(models.CartEntry, lineIdFor(memberId, skuId), (h) =>
        h && h.quantity > 0
          ? { memberId, skuId, quantity: 0, unitPrice: h.unitPrice, priceKind: h.priceKind, op: 'REMOVE' as const, at: now() }
          : null,
      );
      return view(memberId);
    },

    /** What a checkout from the cart orders: every line with a quantity, flagged or not. */
    async linesToOrder(memberId: string): Promise<StockLine[]> {
      return (await held(memberId)).map(({ line, head: h }) => ({ skuId: line.skuId, quantity: h.quantity }));
    },

    /** Takes the ordered units out of the cart (units added since stay). */
    async checkedOut(memberId: string, checkoutId: string, lines: StockLine[]): Promise<void> {
      await Promise.all(
        lines.map(({ skuId, quantity }) =>
          appendToLedger(models.CartEntry, lineIdFor(memberId, skuId), (h) =>
            h && h.quantity > 0 && h.checkoutId !== checkoutId
              ? {
                  memberId,
                  skuId,
                  quantity: Math.max(0, h.quantity - quantity),
                  unitPrice: h.unitPrice,
                  priceKind: h.priceKind,
                  op: 'CHECKOUT' as const,
                  checkoutId,
                  at: now(),
                }
              : null,
          ),
        ),
      );
    },
  };
}
export type CartService = ReturnType<typeof createCartService>;
