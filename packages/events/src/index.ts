// The one thing services share about each other: event subjects, the envelope, payload
// schemas, and the request/reply contracts. Payloads carry ids and facts, never whole documents.
import { z } from 'zod';
import registry from './services.json';
import { dateTime, fen, id, MemberSegment, MemberTier, OrderSource, orderLine, pricedLine, stockLine } from './shapes';

// services.json is the registry (JSON so plain-JS scripts read it before anything is built).
export type ServiceName = keyof typeof registry.subgraphs;
/** Every subgraph, in composition order. */
export const SERVICES = Object.keys(registry.subgraphs) as readonly ServiceName[];
/** Where each process listens unless PORT says otherwise: the gateway and every subgraph. */
export const DEFAULT_PORTS = Object.freeze({
  gateway: registry.gateway.port,
  ...Object.fromEntries(SERVICES.map((s) => [s, registry.subgraphs[s].port])),
}) as Readonly<Record<ServiceName | 'gateway', number>>;

export { MemberSegment, MemberTier, OrderSource } from './shapes';

function event<S extends ServiceName, T extends z.ZodType>(source: S, version: number, schema: T) {
  return { source, version, schema };
}

/** Event catalogue: subject → publisher, version and payload schema. */
export const events = {
  'membership.member.registered': event(
    'membership',
    1,
    z.object({
      memberId: id,
      registeredAt: dateTime,
      invitedByCode: z.string().max(16).optional(),
      /**
       * HMAC-SHA256 (membership's lookup key) of a purpose label and the phone, base64url: equal
       * phones give equal values, so referral can see one phone behind two accounts (a fraud rule)
       * without ever holding the phone; not reversible without the key, and not the value
       * membership indexes its members by.
       */
      phoneHash: z.string().max(64).optional(),
    }),
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
      /** The coupons the order used (its COUPON adjustments); absent when it used none. */
      couponIds: z.array(id).optional(),
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
  /** An article went out (by staff, or by the scheduled-publishing sweeper: once per schedule). */
  'content.article.published': event(
    'content',
    1,
    z.object({ articleId: id, type: z.enum(['PRODUCT', 'KNOWLEDGE', 'ACTIVITY', 'STORY']), slug: id, publishedAt: dateTime }),
  ),
  /** A brand-site page (brand story, about, qualifications, contact) went out. */
  'content.page.published': event(
    'content',
    1,
    z.object({ pageId: id, kind: z.enum(['BRAND_STORY', 'ABOUT', 'QUALIFICATIONS', 'CONTACT']), slug: id, publishedAt: dateTime }),
  ),
  'live.room.scheduled': event('live', 1, z.object({ roomId: id, scheduledAt: dateTime })),
  /** A room went live (its first LIVE transition; a second `startLiveRoom` publishes nothing). */
  'live.room.started': event('live', 1, z.object({ roomId: id, scheduledAt: dateTime, startedAt: dateTime })),
  /** A live room ended (its ENDED transition); a replay may follow. */
  'live.room.ended': event('live', 1, z.object({ roomId: id, startedAt: dateTime, endedAt: dateTime })),
  /**
   * A notification to one member (预约提醒: a room they subscribed to starts in an hour, 30 or 5
   * minutes, or now). One per member per room and stage. A notification, so in the shared
   * NOTIFICATIONS stream: any delivery channel (WeChat subscription message, SMS, app push)
   * consumes `notifications.>` and delivers it, idempotent on the envelope id.
   */
  'notifications.live.reminder': event(
    'live',
    1,
    z.object({
      memberId: id,
      roomId: id,
      /** Which reminder: an hour, 30 minutes or 5 minutes before, or the room has started. */
      stage: z.enum(['H1', 'M30', 'M5', 'START']),
      title: z.string(),
      startsAt: dateTime,
      sentAt: dateTime,
    }),
  ),
  /** A member moved tier (upgrade at once on growth; downgrade only after the retention period). */
  'membership.tier.changed': event(
    'membership',
    1,
    z.object({
      memberId: id,
      from: MemberTier,
      to: MemberTier,
      direction: z.enum(['UP', 'DOWN']),
      growth: z.number().int().nonnegative(),
      changedAt: dateTime,
    }),
  ),
  /** A member entered another RFM segment (on an order event, or as recency decayed). */
  'membership.segment.changed': event(
    'membership',
    1,
    z.object({
      memberId: id,
      /** Null on a member's first placement. */
      from: MemberSegment.nullable(),
      to: MemberSegment,
      recencyDays: z.number().int().nonnegative().nullable(),
      frequency: z.number().int().nonnegative(),
      monetary: fen,
      changedAt: dateTime,
    }),
  ),
  /** A community post went out (a plain post, or a showcase (晒单) of a paid order line with its rating). */
  'community.post.published': event(
    'community',
    1,
    z.object({
      postId: id,
      memberId: id,
      kind: z.enum(['POST', 'SHOWCASE']),
      productId: id.optional(),
      groupId: id.optional(),
      orderId: id.optional(),
      rating: z.number().int().min(1).max(5).optional(),
      verified: z.boolean(),
      publishedAt: dateTime,
    }),
  ),
  /** Staff hid a community post (moderation); it left every public list and any product rating. */
  'community.post.removed': event('community', 1, z.object({ postId: id, memberId: id, reason: z.string().max(200), removedAt: dateTime })),
  /** A referral reward for a member (share-for-coupon, invite rewards): a coupon or points. */
  'referral.reward.granted': event(
    'referral',
    1,
    z.object({
      rewardId: id,
      memberId: id,
      kind: z.enum(['COUPON', 'POINTS']),
      couponTemplateId: id.optional(),
      points: z.number().int().positive().optional(),
      reason: z.string().max(200),
    }),
  ),
  /**
   * A referral reward taken back (its invitee's first paid order fully refunded within the
   * after-sales window): membership revokes the coupon or claws the points back granted under the
   * same `rewardId`; once per reward.
   */
  'referral.reward.reversed': event(
    'referral',
    1,
    z.object({
      rewardId: id,
      memberId: id,
      kind: z.enum(['COUPON', 'POINTS']),
      couponTemplateId: id.optional(),
      points: z.number().int().positive().optional(),
      reason: z.string().max(200),
    }),
  ),
  /** A member shared something (分享: a product, article, live room, group or page) through a channel; once per share. */
  'referral.share.created': event(
    'referral',
    1,
    z.object({
      shareId: id,
      memberId: id,
      targetKind: z.enum(['PRODUCT', 'ARTICLE', 'LIVE_ROOM', 'GROUP', 'PAGE']),
      targetId: z.string().min(1).max(64),
      channel: z.enum(['WECHAT_FRIEND', 'WECHAT_MOMENTS', 'COPY_LINK', 'POSTER', 'OTHER']),
      sharedAt: dateTime,
    }),
  ),
  /** A distribution (分销) commission booked PENDING for a paid order: once per order and level (1: the buyer's distributor, 2: theirs). */
  'referral.commission.booked': event(
    'referral',
    1,
    z.object({
      commissionId: id,
      orderId: id,
      distributorId: id,
      buyerId: id,
      level: z.union([z.literal(1), z.literal(2)]),
      amount: fen,
      bookedAt: dateTime,
    }),
  ),
  /** A commission settled once its order completed (the after-sales window closed); `amount` is what was still pending. */
  'referral.commission.settled': event(
    'referral',
    1,
    z.object({
      commissionId: id,
      orderId: id,
      distributorId: id,
      level: z.union([z.literal(1), z.literal(2)]),
      amount: fen,
      settledAt: dateTime,
    }),
  ),
  /** A commission reversed pro rata to a refund (once per refund and level), from the pending or, after settlement, the settled balance. */
  'referral.commission.reversed': event(
    'referral',
    1,
    z.object({
      commissionId: id,
      orderId: id,
      distributorId: id,
      level: z.union([z.literal(1), z.literal(2)]),
      refundId: id,
      amount: fen,
      afterSettlement: z.boolean(),
      reversedAt: dateTime,
    }),
  ),
  /** A group buy (拼团) filled with its N paid members (or was completed virtually at expiry): orders releases every order named to fulfilment; once per group (a later payer of a virtually completed group comes in an event of its own). */
  'referral.groupbuy.succeeded': event(
    'referral',
    1,
    z.object({ groupId: id, offerId: id, orderIds: z.array(id).max(100), succeededAt: dateTime }),
  ),
  /** A group buy expired without N paid members: orders refunds every order named through the provider, once each (a payment landing after the failure comes in an event of its own). */
  'referral.groupbuy.failed': event(
    'referral',
    1,
    z.object({ groupId: id, offerId: id, orderIds: z.array(id).max(100), failedAt: dateTime }),
  ),
  /** A member reached a community check-in challenge's required days (打卡挑战完成); once per member and challenge. */
  'community.checkin.completed': event(
    'community',
    1,
    z.object({ challengeId: id, memberId: id, days: z.number().int().positive(), completedAt: dateTime }),
  ),
  /** A member joined a community group (社群): by themselves, or moved in by a tier/segment rule (`cause` names the event). */
  'community.member.joined': event(
    'community',
    1,
    z.object({ groupId: id, memberId: id, by: z.enum(['MEMBER', 'RULE']), cause: id.optional(), joinedAt: dateTime }),
  ),
  /** A member left a community group: by themselves, or moved out by a rule that no longer matches (autoLeave). */
  'community.member.left': event(
    'community',
    1,
    z.object({ groupId: id, memberId: id, by: z.enum(['MEMBER', 'RULE']), cause: id.optional(), leftAt: dateTime }),
  ),
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

/**
 * Notifications to members (reminders; community and referral notices) are a family of their own,
 * `notifications.<publisher>.<kind>`, in one stream whoever publishes: a delivery channel consumes
 * them all with the one filter `notifications.>`. Every other event is in its publisher's stream.
 */
export const NOTIFICATIONS_PREFIX = 'notifications';
export const NOTIFICATIONS_STREAM = 'NOTIFICATIONS';
export const NOTIFICATIONS_FILTER = `${NOTIFICATIONS_PREFIX}.>` as const;
export type NotificationSubject = Extract<EventSubject, `${typeof NOTIFICATIONS_PREFIX}.${string}`>;
/** An envelope of any notification, discriminated by `type`. */
export type NotificationEnvelope = { [S in NotificationSubject]: EventEnvelope<S> }[NotificationSubject];
export const isNotificationSubject = (s: string): s is NotificationSubject => isEventSubject(s) && s.startsWith(`${NOTIFICATIONS_PREFIX}.`);
/** A JetStream stream; `key` names its settings in the chart (the publisher, or `notifications`). */
export type EventStream = { key: string; name: string; subjects: string[] };
const NOTIFICATIONS: EventStream = { key: NOTIFICATIONS_PREFIX, name: NOTIFICATIONS_STREAM, subjects: [NOTIFICATIONS_FILTER] };

/** One JetStream stream per publishing service, holding exactly its event subjects but notifications. */
export function streamName(service: ServiceName): string {
  return `EVENTS_${service.toUpperCase()}`;
}
export function streamSubjects(service: ServiceName): string[] {
  return (Object.keys(events) as EventSubject[]).filter((s) => events[s].source === service && !isNotificationSubject(s));
}
/** The stream holding a subject (or every notification): where it is published and consumed. */
export function streamOf(subject: EventSubject | typeof NOTIFICATIONS_FILTER): EventStream {
  if (subject === NOTIFICATIONS_FILTER || isNotificationSubject(subject)) return NOTIFICATIONS;
  const source = events[subject].source;
  return { key: source, name: streamName(source), subjects: streamSubjects(source) };
}
/** The streams a service publishes to: its own (if it has events) and NOTIFICATIONS (if it sends any). */
export function publisherStreams(service: ServiceName): EventStream[] {
  const own = streamSubjects(service).length ? [streamOf(streamSubjects(service)[0] as EventSubject)] : [];
  const notifies = (Object.keys(events) as EventSubject[]).some((s) => events[s].source === service && isNotificationSubject(s));
  return notifies ? [...own, NOTIFICATIONS] : own;
}
/** Every event stream (the dead-letter stream aside): the publishers' in registry order, then NOTIFICATIONS. */
export const eventStreams = (): EventStream[] => [
  ...SERVICES.flatMap((s) => publisherStreams(s).filter((st) => st !== NOTIFICATIONS)),
  NOTIFICATIONS,
];
/** Renamed subjects: an envelope stored under the old name (an outbox record not yet relayed) is published under the new. */
export const RENAMED_SUBJECTS: Readonly<Record<string, EventSubject>> = Object.freeze({
  'live.notification.reminder': 'notifications.live.reminder',
});
export const DEAD_LETTER_STREAM = 'DEADLETTER';
export const DEAD_LETTER_PREFIX = 'deadletter';

export * from './requests';
export * from './feed';
