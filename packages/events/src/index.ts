// The one thing services share about each other: event subjects, the envelope, payload
// schemas, and the request/reply contracts. Payloads carry ids and facts, never whole documents.
import { z } from 'zod';

export const SERVICES = ['content', 'catalog', 'orders', 'live', 'community', 'membership', 'referral'] as const;
export type ServiceName = (typeof SERVICES)[number];

const id = z.string().min(1);
const dateTime = z.iso.datetime();
/** Integer fen; JSON numbers are exact up to 2^53. */
const fen = z.number().int().safe();

export const OrderSource = z.discriminatedUnion('kind', [
  z.object({ kind: z.literal('DIRECT') }),
  z.object({ kind: z.literal('CONTENT'), articleId: id }),
  z.object({ kind: z.literal('LIVE'), roomId: id }),
  z.object({ kind: z.literal('COMMUNITY'), postId: id }),
  z.object({ kind: z.literal('REFERRAL'), code: id }),
]);
export type OrderSource = z.infer<typeof OrderSource>;

const orderLine = z.object({ skuId: id, productId: id, quantity: z.number().int().positive(), unitPrice: fen });
const stockLine = z.object({ skuId: id, quantity: z.number().int().positive() });
/** Which price a line was sold at; flash lines name their flash sale. */
const PriceKind = z.enum(['LIST', 'MEMBER', 'FLASH']);
const pricedLine = orderLine.extend({ priceKind: PriceKind, flashSaleId: id.optional() });

function event<S extends ServiceName, T extends z.ZodType>(source: S, version: number, schema: T) {
  return { source, version, schema };
}

/** Event catalogue: subject → publisher, version and payload schema. */
export const events = {
  'membership.member.registered': event(
    'membership',
    1,
    z.object({ memberId: id, registeredAt: dateTime, invitedByCode: z.string().optional() }),
  ),
  'membership.member.erased': event('membership', 1, z.object({ memberId: id })),
  'catalog.product.changed': event('catalog', 1, z.object({ productId: id, status: z.string() })),
  'orders.order.placed': event(
    'orders',
    1,
    z.object({
      orderId: id,
      memberId: id,
      total: fen,
      currency: z.literal('CNY'),
      lines: z.array(orderLine).min(1),
      source: OrderSource,
    }),
  ),
  /** Available stock of a SKU fell to or below its threshold (staff alert). */
  'catalog.stock.low': event(
    'catalog',
    1,
    z.object({ skuId: id, productId: id, available: z.number().int(), threshold: z.number().int() }),
  ),
  'orders.order.paid': event(
    'orders',
    1,
    z.object({
      orderId: id,
      memberId: id,
      total: fen,
      currency: z.literal('CNY'),
      lines: z.array(pricedLine).min(1),
      source: OrderSource,
      paymentId: id,
      paidAt: dateTime,
    }),
  ),
  'orders.order.cancelled': event(
    'orders',
    1,
    z.object({
      orderId: id,
      memberId: id,
      reason: z.enum(['MEMBER', 'EXPIRED', 'STAFF']),
      lines: z.array(stockLine),
      cancelledAt: dateTime,
    }),
  ),
  'orders.order.shipped': event(
    'orders',
    1,
    z.object({ orderId: id, memberId: id, shipmentId: id, carrier: z.string(), trackingNumber: z.string(), lines: z.array(stockLine) }),
  ),
  'orders.order.delivered': event('orders', 1, z.object({ orderId: id, memberId: id, deliveredAt: dateTime })),
  'orders.order.completed': event('orders', 1, z.object({ orderId: id, memberId: id, total: fen, completedAt: dateTime })),
  'orders.order.refunded': event(
    'orders',
    1,
    z.object({
      orderId: id,
      memberId: id,
      refundId: id,
      amount: fen,
      currency: z.literal('CNY'),
      /** Lines whose goods came back (return-and-refund): their stock is returned. */
      restock: z.array(stockLine),
      refundedAt: dateTime,
    }),
  ),
  'live.room.scheduled': event('live', 1, z.object({ roomId: id, scheduledAt: dateTime })),
} as const;

export type EventSubject = keyof typeof events;
export type EventData<S extends EventSubject> = z.infer<(typeof events)[S]['schema']>;

export const Envelope = z.object({
  id,
  type: z.string().min(1),
  version: z.number().int().positive(),
  occurredAt: dateTime,
  source: z.string().min(1),
  data: z.unknown(),
});
export interface EventEnvelope<S extends EventSubject = EventSubject> {
  id: string;
  type: S;
  version: number;
  occurredAt: string;
  source: ServiceName;
  data: EventData<S>;
}

export function isEventSubject(subject: string): subject is EventSubject {
  return Object.prototype.hasOwnProperty.call(events, subject);
}

/** Builds a validated envelope; throws on a payload that breaks the contract. */
export function envelope<S extends EventSubject>(
  subject: S,
  data: EventData<S>,
  opts: { id: string; occurredAt?: Date },
): EventEnvelope<S> {
  const def = events[subject];
  return {
    id: opts.id,
    type: subject,
    version: def.version,
    occurredAt: (opts.occurredAt ?? new Date()).toISOString(),
    source: def.source,
    data: def.schema.parse(data) as EventData<S>,
  };
}

/** Parses a raw message on consume; a message that breaks the contract is rejected here. */
export function parseEnvelope<S extends EventSubject>(subject: S, raw: unknown): EventEnvelope<S> {
  const env = Envelope.parse(raw);
  if (env.type !== subject) throw new Error(`envelope type ${env.type} on subject ${subject}`);
  const def = events[subject];
  if (env.version > def.version) throw new Error(`${subject} v${env.version} is newer than this consumer (v${def.version})`);
  return { ...env, type: subject, source: def.source, data: def.schema.parse(env.data) as EventData<S> };
}

/** One JetStream stream per publishing service, holding exactly its event subjects. */
export function streamName(service: ServiceName): string {
  return `EVENTS_${service.toUpperCase()}`;
}
export function streamSubjects(service: ServiceName): string[] {
  return (Object.keys(events) as EventSubject[]).filter((s) => events[s].source === service);
}
export const DEAD_LETTER_STREAM = 'DEADLETTER';
export const DEAD_LETTER_PREFIX = 'deadletter';

// ---------------------------------------------------------------------------------------------
// Request/reply: commands that need an answer now. Subjects never overlap event subjects.

function request<Req extends z.ZodType, Res extends z.ZodType>(service: ServiceName, req: Req, res: Res) {
  return { service, request: req, reply: res };
}

export const requests = {
  /**
   * Server-side prices. With `memberId` the quote applies member prices and any live flash sale
   * the member may still buy (per-member limit); all prices are as of now.
   */
  'catalog.price.quote': request(
    'catalog',
    z.object({ lines: z.array(stockLine).min(1).max(100), memberId: id.optional() }),
    z.object({
      lines: z.array(
        pricedLine.extend({
          name: z.string(),
          skuName: z.string(),
          /**
           * Units that could be reserved as of the quote: the SKU's regular stock (its ledger head)
           * or, for a FLASH line, the flash sale's remaining quota. Advisory (the reservation
           * decides); optional so that older catalogs stay valid.
           */
          available: z.number().int().optional(),
        }),
      ),
      total: fen,
      currency: z.literal('CNY'),
    }),
  ),
  /**
   * Reserves stock for an order, all lines or none (OUT_OF_STOCK names the SKU). Idempotent per
   * orderId: a replay answers with the first result. Flash lines draw on the flash sale's quota
   * and the member's limit.
   */
  'catalog.stock.reserve': request(
    'catalog',
    z.object({
      orderId: id,
      memberId: id,
      lines: z
        .array(stockLine.extend({ flashSaleId: id.optional() }))
        .min(1)
        .max(100),
    }),
    z.object({ orderId: id, reservedAt: dateTime }),
  ),
  /** Releases an order's reservation exactly once (a checkout that failed after reserving). */
  'catalog.stock.release': request('catalog', z.object({ orderId: id }), z.object({ orderId: id, released: z.boolean() })),
} as const;

export type RequestSubject = keyof typeof requests;
export type RequestData<S extends RequestSubject> = z.infer<(typeof requests)[S]['request']>;
export type ReplyData<S extends RequestSubject> = z.infer<(typeof requests)[S]['reply']>;

/** Typed failure of a request; `code` uses the same set as GraphQL errors. */
export const ReplyError = z.object({ code: z.string(), message: z.string() });
export const ReplyWire = z.union([
  z.object({ ok: z.literal(true), data: z.unknown() }),
  z.object({ ok: z.literal(false), error: ReplyError }),
]);
