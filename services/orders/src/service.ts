import { createHash, randomUUID } from 'node:crypto';
import type { QueryFilter } from 'mongoose';
import type { OrderSource, ReplyData } from '@flywheel/events';
import {
  AppError,
  badInput,
  BusRequestError,
  byIdLoader,
  ErrorCode,
  forbidden,
  isDuplicateKey,
  isStaff,
  notFound,
  paginate,
  outboxRecord,
  requireRole,
  requireViewer,
  type BaseContext,
  type Bus,
  type Connection,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { Models, OrderDoc, OrderLineDoc, OrderSourceDoc, OrderSourceKind } from './model';

export const CURRENCY = 'CNY';
export interface Money {
  /** Integer fen. */
  amount: number;
  currency: typeof CURRENCY;
}
export const money = (amount: number): Money => ({ amount, currency: CURRENCY });

export const MAX_LINES = 50;
export const MAX_QUANTITY = 99;
const SOURCE_KINDS: readonly OrderSourceKind[] = ['DIRECT', 'CONTENT', 'LIVE', 'COMMUNITY', 'REFERRAL'];

export interface PlaceOrderInput {
  lines: { skuId: string; quantity: number }[];
  idempotencyKey: string;
  /** DIRECT when omitted. */
  source?: { kind: OrderSourceKind; refId?: string | null } | null;
}

export type PriceQuote = ReplyData<'catalog.price.quote'>;

/** A member as orders knows one: by key only (membership owns the rest). */
export interface MemberRef {
  id: string;
}

export interface OrdersDeps {
  models: Models;
  /** Request/reply to other services (prices from catalog). */
  bus: Pick<Bus, 'request'>;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  catalogTimeoutMs?: number;
  now?: () => Date;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** The order id for one member's checkout: the same key from the same member is the same order. */
export const orderIdFor = (memberId: string, idempotencyKey: string) => sha256(`placeOrder\0${memberId}\0${idempotencyKey}`).slice(0, 32);

/** Validated, with lines of the same SKU added together and ordered by SKU (a stable fingerprint). */
function parseRequest(input: PlaceOrderInput): { key: string; lines: { skuId: string; quantity: number }[]; source: OrderSourceDoc } {
  const key = (input.idempotencyKey ?? '').trim();
  if (key.length < 1 || key.length > 128) throw badInput('idempotencyKey must be 1 to 128 characters', 'idempotencyKey');
  const raw = input.lines ?? [];
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
  const lines = [...merged].map(([skuId, quantity]) => ({ skuId, quantity })).sort((a, b) => (a.skuId < b.skuId ? -1 : 1));
  return { key, lines, source: parseSource(input.source) };
}

function parseSource(raw: PlaceOrderInput['source']): OrderSourceDoc {
  const kind = raw?.kind ?? 'DIRECT';
  if (!SOURCE_KINDS.includes(kind)) throw badInput(`Unknown source kind ${kind}`, 'source.kind');
  const refId = raw?.refId?.trim() || null;
  if (kind === 'DIRECT') {
    if (refId) throw badInput('A DIRECT order has no source reference', 'source.refId');
    return { kind, refId: null };
  }
  if (!refId || refId.length > 128) throw badInput(`A ${kind} order needs its source reference (1 to 128 characters)`, 'source.refId');
  return { kind, refId };
}

/** The event contract names each kind's reference. */
function eventSource({ kind, refId }: OrderSourceDoc): OrderSource {
  switch (kind) {
    case 'DIRECT':
      return { kind };
    case 'CONTENT':
      return { kind, articleId: refId! };
    case 'LIVE':
      return { kind, roomId: refId! };
    case 'COMMUNITY':
      return { kind, postId: refId! };
    case 'REFERRAL':
      return { kind, code: refId! };
  }
}

/** Another service's refusal keeps its code; no answer at all is UNAVAILABLE (set by the bus). */
function fromBus(err: unknown): never {
  if (err instanceof BusRequestError) {
    const code = (Object.values(ErrorCode) as string[]).includes(err.code) ? (err.code as ErrorCode) : ErrorCode.INTERNAL_SERVER_ERROR;
    throw new AppError(code, err.message);
  }
  throw err;
}

/** The member's own orders are theirs and staff's to see; nobody else's. */
function canSee(viewer: Viewer | null, memberId: string): boolean {
  return isStaff(viewer) || Boolean(viewer?.roles.includes('CUSTOMER') && viewer.id === memberId);
}

export function createOrderService(deps: OrdersDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  // Order ids are hashes (the idempotency claim), not time-ordered: page by createdAt.
  const newestFirst = (filter: QueryFilter<OrderDoc>, args: PageArgs) => paginate(models.Order, filter, args, { by: 'createdAt' });

  /** Prices come only from catalog, never from the client. */
  async function price(lines: { skuId: string; quantity: number }[]): Promise<PriceQuote> {
    const quote = await deps.bus.request('catalog.price.quote', { lines }, { timeoutMs: deps.catalogTimeoutMs }).catch(fromBus);
    const asked = new Map(lines.map((l) => [l.skuId, l.quantity]));
    const consistent =
      quote.lines.length === lines.length &&
      quote.lines.every((l) => asked.get(l.skuId) === l.quantity) &&
      quote.total === quote.lines.reduce((sum, l) => sum + l.unitPrice * l.quantity, 0);
    if (!consistent) throw new Error('catalog quote does not match the request');
    return quote;
  }

  /** The first order placed under this claim, if it asked for the same thing. */
  function replay(existing: OrderDoc, requestHash: string): OrderDoc {
    if (existing.requestHash !== requestHash) {
      throw new AppError('CONFLICT', 'This idempotency key was already used for a different order');
    }
    return existing;
  }

  return {
    /**
     * Places an order once per (member, idempotency key): the order's id is derived from both, so
     * inserting it is the claim and racing replays all get the winner's order. The event rides
     * in the same insert (outbox).
     */
    async placeOrder(viewer: Viewer | null, input: PlaceOrderInput): Promise<OrderDoc> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const { key, lines, source } = parseRequest(input);
      const _id = orderIdFor(memberId, key);
      const requestHash = sha256(JSON.stringify({ lines, source }));
      const existing = await models.Order.findById(_id).lean<OrderDoc>();
      if (existing) return replay(existing, requestHash);

      const quote = await price(lines);
      // Checkout saga extension point: reserving stock (catalog) and locking coupons and points
      // (membership) go here, keyed by the order id so a racing replay takes nothing twice, each
      // with a release when the insert below loses the claim or fails.

      const createdAt = now();
      const orderLines: OrderLineDoc[] = quote.lines.map((l) => ({
        productId: l.productId,
        skuId: l.skuId,
        name: l.name,
        skuName: l.skuName,
        quantity: l.quantity,
        unitPrice: l.unitPrice,
        subtotal: l.unitPrice * l.quantity,
      }));
      const order: OrderDoc = {
        _id,
        memberId,
        status: 'PENDING_PAYMENT',
        lines: orderLines,
        total: quote.total,
        currency: CURRENCY,
        source,
        requestHash,
        createdAt,
        outbox: outboxRecord(
          'orders.order.placed',
          {
            orderId: _id,
            memberId,
            total: quote.total,
            currency: CURRENCY,
            lines: orderLines.map(({ skuId, productId, quantity, unitPrice }) => ({ skuId, productId, quantity, unitPrice })),
            source: eventSource(source),
          },
          randomUUID(),
          createdAt,
        ),
      };
      try {
        await models.Order.create(order);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        const winner = await models.Order.findById(_id).lean<OrderDoc>();
        if (!winner) throw err;
        return replay(winner, requestHash);
      }
      deps.kick();
      return order;
    },

    /** Another member's order answers exactly like an unknown one. */
    async order(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc> {
      requireViewer(viewer);
      const order = await loaders.order.load(id);
      if (!order || !canSee(viewer, order.memberId)) throw notFound('Order');
      return order;
    },

    /** For `_entities`: null rather than an error, so one hidden order does not fail a whole plan. */
    async orderReference(viewer: Viewer | null, loaders: OrderLoaders, id: string): Promise<OrderDoc | null> {
      const order = await loaders.order.load(id);
      return order && canSee(viewer, order.memberId) ? order : null;
    },

    memberOrders(viewer: Viewer | null, memberId: string, args: PageArgs): Promise<Connection<OrderDoc>> {
      requireViewer(viewer);
      if (!canSee(viewer, memberId)) throw forbidden("Only the member or staff can list a member's orders");
      return newestFirst({ memberId }, args);
    },

    loaders: () => createLoaders(models),
  };
}

function createLoaders(models: Models) {
  return {
    order: byIdLoader(models.Order),
  };
}
export type OrderLoaders = ReturnType<typeof createLoaders>;
export type OrderService = ReturnType<typeof createOrderService>;

export interface Context extends BaseContext {
  service: OrderService;
  loaders: OrderLoaders;
}
