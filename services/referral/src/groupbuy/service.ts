import { randomUUID } from 'node:crypto';
import type { EventData, ReplyData, RequestData } from '@flywheel/events';
import {
  AppError,
  badInput,
  claimOnce,
  findByIds,
  fromBusError,
  isDuplicateKey,
  isObjectId,
  notFound,
  optionalText,
  outboxRecord,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  sha256,
  wholeNumber,
  type Bus,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type {
  GroupBuyCheckoutDoc,
  GroupBuyDoc,
  GroupBuyModels,
  GroupBuyOfferDoc,
  GroupBuyOutcomeDoc,
  GroupBuyPaidDoc,
  GroupBuySlotDoc,
} from './model';

export const GROUP_BUY_LIMITS = {
  groupSize: { min: 2, max: 20 },
  /** A group's time limit: 5 minutes to 7 days. */
  durationMinutes: { min: 5, max: 7 * 24 * 60 },
  stockCap: { max: 1_000_000 },
  perMemberLimit: { max: 99 },
  idempotencyKey: 100,
} as const;

export interface CreateGroupBuyOfferInput {
  skuId: string;
  groupSize: number;
  groupPrice: number;
  durationMinutes: number;
  startsAt: Date;
  endsAt: Date;
  stockCap: number;
  perMemberLimit: number;
  virtualCompletion: boolean;
  idempotencyKey: string;
}

export type GroupBuyStatus = 'OPEN' | 'SUCCEEDED' | 'FAILED';

/** A group as readers see it: counted from its slot and payment claims. */
export interface GroupBuyView extends GroupBuyDoc {
  /** Members whose order paid. */
  memberCount: number;
  /** Slots held (paid, or an unpaid order still within its payment time). */
  slotsTaken: number;
  status: GroupBuyStatus;
}

export interface GroupBuyDeps {
  models: GroupBuyModels;
  bus: Pick<Bus, 'request'>;
  kick: () => void;
  now: () => Date;
  logger?: Pick<Logger, 'warn'>;
}

type Quote = RequestData<'referral.price.quote'>;
type GroupBuyOffer = Extract<Quote['offer'], { kind: 'GROUP_BUY' }>;

/** The group an opener's checkout creates: derived, so a replay of the checkout finds the same group. */
export const groupIdFor = (checkoutId: string) => sha256(`groupbuy\0${checkoutId}`).slice(0, 24);

const conflict = (reason: string, message: string) => new AppError('CONFLICT', message, { reason });

/**
 * Group buys (拼团). Every decision is an insert into a unique key (docs/concurrency.md):
 * - a group is created by its opener's lock; its `seat` (`offerId:k`, k ≤ stockCap / groupSize) is the stock cap;
 * - a group's N slots and a member's joins of an offer are pools of numbered places (`pool:n:gen`):
 *   held by the latest generation unless released, so a group never holds N + 1 and a freed slot is
 *   taken again by exactly one claimer;
 * - a slot's payment (`orders.order.paid`) is a claim per order, and the group's outcome a claim per
 *   group carrying `referral.groupbuy.succeeded|failed` in its outbox.
 */
export function createGroupBuyService(deps: GroupBuyDeps) {
  const { models, now, kick } = deps;
  const { GroupBuyOffer: Offer, GroupBuy: Group, GroupBuySlot: Slot, GroupBuyRelease: Release, GroupBuyPaid: Paid } = models;
  const { GroupBuyOutcome: Outcome, GroupBuyCheckout: Checkout } = models;

  /**
   * The places of a pool of `places` numbers: the latest generation of each, those still held, and
   * every generation seen (`all`). Read by `_id` only, a generation at a time: place n has a
   * generation g + 1 only once generation g was released, so the walk stops at the first held or
   * missing one (usually one or two reads).
   */
  async function poolState(pool: string, places: number) {
    const latest = new Map<number, GroupBuySlotDoc>();
    const released = new Set<string>();
    const all: GroupBuySlotDoc[] = [];
    let numbers = Array.from({ length: places }, (_, i) => i + 1);
    for (let gen = 1; numbers.length; gen++) {
      const ids = numbers.map((n) => `${pool}:${n}:${gen}`);
      const [slots, releases] = await Promise.all([
        findByIds<GroupBuySlotDoc>(Slot, ids),
        findByIds<{ _id: string }>(Release, ids, { _id: 1 }),
      ]);
      for (const r of releases) released.add(String(r._id));
      for (const s of slots) {
        latest.set(s.n, s);
        all.push(s);
      }
      numbers = slots.filter((s) => released.has(s._id)).map((s) => s.n);
    }
    const held = [...latest.values()].filter((s) => !released.has(s._id));
    return { latest, held, released, all };
  }

  const memberPool = (offerId: string, memberId: string) => `${offerId}:m:${memberId}`;

  /** The paid orders among the checkouts that ever held a place in the group (paid places are never released). */
  async function paidOf(group: GroupBuyDoc): Promise<GroupBuyPaidDoc[]> {
    const { all } = await poolState(group._id, group.groupSize);
    const paid = await findByIds<GroupBuyPaidDoc>(Paid, [...new Set(all.map((s) => s.checkoutId))]);
    return paid.filter((p) => p.groupId === group._id).sort((a, b) => a.at.getTime() - b.at.getTime());
  }

  /** The first free place of the pool, claimed for the checkout (its own when it holds one already); null when full. */
  async function claimPlace(pool: string, capacity: number, base: Omit<GroupBuySlotDoc, '_id' | 'pool' | 'n' | 'gen' | 'at'>) {
    for (let attempt = 0; attempt < capacity * 3 + 3; attempt++) {
      const { latest, held, released } = await poolState(pool, capacity);
      const mine = held.find((s) => s.checkoutId === base.checkoutId);
      if (mine) return mine;
      let n = 1;
      while (n <= capacity && latest.has(n) && !released.has(latest.get(n)!._id)) n++;
      if (n > capacity) return null;
      const gen = (latest.get(n)?.gen ?? 0) + 1;
      const doc: GroupBuySlotDoc = { _id: `${pool}:${n}:${gen}`, pool, n, gen, ...base, at: now() };
      if (await claimOnce(Slot, { ...doc })) return doc;
    }
    return null;
  }

  async function offerOf(offerId: string): Promise<GroupBuyOfferDoc> {
    const offer = isObjectId(offerId) ? await Offer.findById(offerId).lean<GroupBuyOfferDoc>() : null;
    if (!offer) throw notFound('Group-buy offer');
    return offer;
  }

  async function view(group: GroupBuyDoc): Promise<GroupBuyView> {
    const [{ held }, paid, outcome] = await Promise.all([
      poolState(group._id, group.groupSize),
      paidOf(group),
      Outcome.findById(group._id).lean<GroupBuyOutcomeDoc>(),
    ]);
    return { ...group, memberCount: paid.length, slotsTaken: held.length, status: outcome?.outcome ?? 'OPEN' };
  }

  /** A group still taking members at `at`: not decided, not expired. */
  async function requireJoinable(group: GroupBuyDoc, at: Date) {
    if (group.closed || group.expiresAt <= at || (await Outcome.exists({ _id: group._id }))) {
      throw conflict('GROUP_CLOSED', 'This group buy is closed; open a new group');
    }
  }

  /** Checks a checkout against the offer and the group; what it would open or join. */
  async function priced(req: Pick<Quote, 'checkoutId' | 'memberId' | 'lines'> & { offer: GroupBuyOffer }) {
    const offer = await offerOf(req.offer.offerId);
    const at = now();
    if (at < offer.startsAt || at >= offer.endsAt) throw conflict('OFFER_NOT_ACTIVE', 'This group-buy offer is not on now');
    const line = req.lines.find((l) => l.skuId === offer.skuId);
    if (!line) throw badInput("The order has no line of the group-buy offer's SKU", 'lines');
    if (line.quantity !== 1) throw badInput('A group-buy order buys one unit of the offer', 'lines');
    const joining = req.offer.groupId ?? null;
    if (joining) {
      const group = isObjectId(joining) ? await Group.findById(joining).lean<GroupBuyDoc>() : null;
      if (!group || group.offerId !== offer._id) throw notFound('Group buy');
      await requireJoinable(group, at);
      const { held } = await poolState(group._id, group.groupSize);
      const others = held.filter((s) => s.checkoutId !== req.checkoutId);
      if (others.length >= offer.groupSize) throw conflict('GROUP_FULL', 'This group is full; open a new group or join another');
      if (others.some((s) => s.memberId === req.memberId)) throw conflict('ALREADY_IN_GROUP', 'You are in this group already');
    }
    const amount = Math.min(0, offer.groupPrice - line.unitPrice);
    const groupId = joining ?? groupIdFor(req.checkoutId);
    return { offer, groupId, opening: !joining, amount };
  }

  /** Creates the opener's group once, in the first free seat of the offer's allotment. */
  async function openGroup(offer: GroupBuyOfferDoc, groupId: string, checkoutId: string, memberId: string) {
    if (await Group.exists({ _id: groupId })) return;
    const seats = Math.floor(offer.stockCap / offer.groupSize);
    const at = now();
    for (let k = (await Group.countDocuments({ offerId: offer._id })) + 1; k <= seats; k++) {
      const group: GroupBuyDoc = {
        _id: groupId,
        offerId: offer._id,
        leaderId: memberId,
        openerCheckoutId: checkoutId,
        seat: `${offer._id}:${k}`,
        groupSize: offer.groupSize,
        createdAt: at,
        expiresAt: new Date(at.getTime() + offer.durationMinutes * 60_000),
      };
      try {
        await Group.create(group);
        return;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        if (await Group.exists({ _id: groupId })) return; // a replay of this checkout opened it
      }
    }
    throw new AppError('OUT_OF_STOCK', 'This group-buy offer has sold out', { reason: 'GROUP_BUY_SOLD_OUT' });
  }

  /** Gives back every place the checkout holds, unless its order paid (a paid slot stays; a failed group refunds it). */
  async function release(checkoutId: string): Promise<boolean> {
    const c = await Checkout.findById(checkoutId).lean<GroupBuyCheckoutDoc>();
    if (!c || (await Paid.exists({ _id: checkoutId }))) return false;
    const pools = await Promise.all([poolState(memberPool(c.offerId, c.memberId), c.memberPlaces), poolState(c.groupId, c.groupPlaces)]);
    const slots = pools.flatMap((p) => p.held.filter((s) => s.checkoutId === checkoutId));
    let released = false;
    for (const s of slots) if (await claimOnce(Release, { _id: s._id, pool: s.pool, checkoutId, at: now() })) released = true;
    return released;
  }

  /** The group's outcome, claimed once; then any paid order the outcome left out gets its own record. */
  async function decide(group: GroupBuyDoc, at: Date, expired: boolean): Promise<GroupBuyOutcomeDoc['outcome'] | null> {
    const offer = await offerOf(group.offerId);
    let outcome = await Outcome.findById(group._id).lean<GroupBuyOutcomeDoc>();
    if (!outcome) {
      const paid = await paidOf(group);
      const full = paid.length >= group.groupSize;
      if (!full && !expired) return null;
      const kind = full || offer.virtualCompletion ? 'SUCCEEDED' : 'FAILED';
      const orderIds = paid.map((p) => p._id);
      await claimOnce(Outcome, {
        _id: group._id,
        groupId: group._id,
        offerId: group.offerId,
        outcome: kind,
        virtual: !full,
        orderIds,
        at,
        outbox: outcomeEvent(kind, group, orderIds, at),
      });
      outcome = await Outcome.findById(group._id).lean<GroupBuyOutcomeDoc>();
      await Group.updateOne({ _id: group._id }, { $set: { closed: true } });
      kick();
    }
    if (!outcome) return null;
    // A payment that landed after (or while) the outcome was claimed: its own record, same outcome.
    for (const p of await paidOf(group)) {
      if (outcome.orderIds.includes(p._id)) continue;
      const late = await claimOnce(Outcome, {
        _id: `${group._id}:late:${p._id}`,
        groupId: group._id,
        offerId: group.offerId,
        outcome: outcome.outcome,
        virtual: outcome.virtual,
        orderIds: [p._id],
        at,
        outbox: outcomeEvent(outcome.outcome, group, [p._id], at),
      });
      if (late) kick();
    }
    return outcome.outcome;
  }

  function outcomeEvent(kind: GroupBuyOutcomeDoc['outcome'], group: GroupBuyDoc, orderIds: string[], at: Date) {
    const base = { groupId: group._id, offerId: group.offerId, orderIds };
    return kind === 'SUCCEEDED'
      ? outboxRecord('referral.groupbuy.succeeded', { ...base, succeededAt: at.toISOString() }, randomUUID(), at)
      : outboxRecord('referral.groupbuy.failed', { ...base, failedAt: at.toISOString() }, randomUUID(), at);
  }

  return {
    /** Staff: an offer on one SKU; the SKU and its price are asked of catalog. A replay of the key answers the first offer. */
    async createOffer(viewer: Viewer | null, input: CreateGroupBuyOfferInput): Promise<GroupBuyOfferDoc> {
      const staff = requireRole(viewer, 'STAFF');
      const key = optionalText(input.idempotencyKey, 'idempotencyKey', GROUP_BUY_LIMITS.idempotencyKey);
      if (!key) throw badInput('idempotencyKey is required', 'idempotencyKey');
      const skuId = requireObjectId(input.skuId, 'skuId');
      const { groupSize: gs, durationMinutes: dm } = GROUP_BUY_LIMITS;
      const groupSize = wholeNumber(input.groupSize, 'groupSize', gs.min, gs.max);
      const durationMinutes = wholeNumber(input.durationMinutes, 'durationMinutes', dm.min, dm.max);
      const groupPrice = wholeNumber(input.groupPrice, 'groupPrice', 1, Number.MAX_SAFE_INTEGER);
      const stockCap = wholeNumber(input.stockCap, 'stockCap', groupSize, GROUP_BUY_LIMITS.stockCap.max);
      const perMemberLimit = wholeNumber(input.perMemberLimit, 'perMemberLimit', 1, GROUP_BUY_LIMITS.perMemberLimit.max);
      const startsAt = new Date(input.startsAt);
      const endsAt = new Date(input.endsAt);
      if (Number.isNaN(startsAt.getTime()) || Number.isNaN(endsAt.getTime()) || startsAt >= endsAt) {
        throw badInput('startsAt must be before endsAt', 'endsAt');
      }
      const id = sha256(`createGroupBuyOffer\0${key}`).slice(0, 24);
      const first = await Offer.findById(id).lean<GroupBuyOfferDoc>();
      if (first) return first;
      const quote = await deps.bus.request('catalog.price.quote', { lines: [{ skuId, quantity: 1 }] }).catch(fromBusError);
      const line = quote.lines[0]!;
      if (groupPrice >= line.unitPrice) {
        throw new AppError('BAD_USER_INPUT', `groupPrice must be below the SKU's price (${line.unitPrice} fen)`, {
          field: 'groupPrice',
          reason: 'GROUP_PRICE_NOT_BELOW_PRICE',
        });
      }
      const offer: GroupBuyOfferDoc = {
        _id: id,
        skuId,
        productId: line.productId,
        listPrice: line.unitPrice,
        groupSize,
        groupPrice,
        durationMinutes,
        startsAt,
        endsAt,
        stockCap,
        perMemberLimit,
        virtualCompletion: Boolean(input.virtualCompletion),
        createdBy: staff.id,
        createdAt: now(),
      };
      if (!(await claimOnce(Offer, { ...offer }))) return (await Offer.findById(id).lean<GroupBuyOfferDoc>())!;
      return offer;
    },

    async offers(): Promise<GroupBuyOfferDoc[]> {
      return Offer.find().sort({ createdAt: -1 }).limit(100).lean<GroupBuyOfferDoc[]>();
    },
    async offer(id: string): Promise<GroupBuyOfferDoc | null> {
      return isObjectId(id) ? Offer.findById(id).lean<GroupBuyOfferDoc>() : null;
    },
    offerOf,

    async group(id: string): Promise<GroupBuyView | null> {
      const group = isObjectId(id) ? await Group.findById(id).lean<GroupBuyDoc>() : null;
      return group ? view(group) : null;
    },

    /** Groups of the offer a member can still join, oldest first (the nearest to filling). */
    async openGroups(rawOfferId: string): Promise<GroupBuyView[]> {
      const offerId = requireObjectId(rawOfferId, 'offerId');
      const groups = await Group.find({ offerId, closed: { $ne: true }, expiresAt: { $gt: now() } })
        .sort({ createdAt: 1 })
        .limit(50)
        .lean<GroupBuyDoc[]>();
      const views = await Promise.all(groups.map(view));
      return views.filter((g) => g.status === 'OPEN' && g.slotsTaken < g.groupSize);
    },

    /** The groups a member opened or joined (self or staff), newest first. */
    async memberGroups(viewer: Viewer | null, memberId: string): Promise<GroupBuyView[]> {
      requireSelfOrStaff(viewer, memberId);
      const groupIds = await Slot.distinct('groupId', { memberId, kind: 'GROUP' });
      const groups = await Group.find({ _id: { $in: groupIds } })
        .sort({ createdAt: -1 })
        .limit(100)
        .lean<GroupBuyDoc[]>();
      return Promise.all(groups.map(view));
    },

    pricing: {
      kind: 'GROUP_BUY' as const,
      async quote(req: Quote): Promise<ReplyData<'referral.price.quote'>> {
        if (req.offer.kind !== 'GROUP_BUY') throw badInput('Not a group-buy offer', 'offer');
        const p = await priced({ ...req, offer: req.offer });
        const limit = p.offer.perMemberLimit;
        const joins = (await poolState(memberPool(p.offer._id, req.memberId), limit)).held.filter((s) => s.checkoutId !== req.checkoutId);
        if (joins.length >= limit) throw conflict('GROUP_BUY_LIMIT', `At most ${limit} group-buy purchase(s) of this offer per member`);
        const label = `拼团价 (${p.offer.groupSize}人团)`;
        return { adjustments: [{ kind: 'GROUP_BUY', skuId: p.offer.skuId, amount: p.amount, label, ref: `groupbuy:${p.groupId}` }] };
      },

      async lock(req: RequestData<'referral.price.lock'>): Promise<void> {
        if (req.offer.kind !== 'GROUP_BUY') throw badInput('Not a group-buy offer', 'offer');
        const { checkoutId, memberId } = req;
        const groupId = req.offer.groupId ?? groupIdFor(checkoutId);
        const adj = req.adjustments.find((a) => a.kind === 'GROUP_BUY');
        if (!adj || adj.ref !== `groupbuy:${groupId}`) throw conflict('PRICE_CHANGED', 'The group-buy price changed; check out again');
        const offer = await offerOf(req.offer.offerId);
        const known = await Checkout.findById(checkoutId).lean<GroupBuyCheckoutDoc>();
        if (known && (await poolState(known.groupId, known.groupPlaces)).held.some((s) => s.checkoutId === checkoutId)) return;
        // Before any place: what the order's payment, cancellation or release will look up by id.
        const record = {
          _id: checkoutId,
          offerId: offer._id,
          groupId,
          memberId,
          memberPlaces: offer.perMemberLimit,
          groupPlaces: offer.groupSize,
        };
        if (!known) await claimOnce(Checkout, { ...record, at: now() });
        const base = { checkoutId, memberId, offerId: offer._id, groupId };
        try {
          if (!(await claimPlace(memberPool(offer._id, memberId), offer.perMemberLimit, { ...base, kind: 'MEMBER' }))) {
            throw conflict('GROUP_BUY_LIMIT', `At most ${offer.perMemberLimit} group-buy purchase(s) of this offer per member`);
          }
          if (!req.offer.groupId) await openGroup(offer, groupId, checkoutId, memberId);
          else {
            const group = await Group.findById(groupId).lean<GroupBuyDoc>();
            if (!group || group.offerId !== offer._id) throw notFound('Group buy');
            await requireJoinable(group, now());
            if ((await poolState(groupId, offer.groupSize)).held.some((s) => s.memberId === memberId && s.checkoutId !== checkoutId)) {
              throw conflict('ALREADY_IN_GROUP', 'You are in this group already');
            }
          }
          if (!(await claimPlace(groupId, offer.groupSize, { ...base, kind: 'GROUP' }))) {
            throw conflict('GROUP_FULL', 'This group is full; open a new group or join another');
          }
        } catch (err) {
          await release(checkoutId);
          throw err;
        }
      },

      release,
    },

    /** `orders.order.paid`: the slot of a group-buy order is paid; the group may succeed now. */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      // Most paid orders are not group buys: one lookup by id says so.
      const c = await Checkout.findById(data.orderId).lean<GroupBuyCheckoutDoc>();
      if (!c) return;
      const { all } = await poolState(c.groupId, c.groupPlaces);
      if (!all.some((s) => s.checkoutId === data.orderId)) return;
      await claimOnce(Paid, { _id: data.orderId, groupId: c.groupId, offerId: c.offerId, memberId: c.memberId, at: now() });
      const group = await Group.findById(c.groupId).lean<GroupBuyDoc>();
      if (group) await decide(group, now(), false);
    },

    /** `orders.order.cancelled`: an unpaid join (payment timed out, or cancelled) frees its slot. */
    orderCancelled: (data: EventData<'orders.order.cancelled'>) => release(data.orderId).then(() => undefined),

    /** Groups past their time without an outcome: SUCCEEDED (full, or completed virtually) or FAILED, once each. */
    async sweep(at: Date): Promise<Record<string, number>> {
      const due = await Group.find({ closed: { $ne: true }, expiresAt: { $lte: at } })
        .sort({ expiresAt: 1 })
        .limit(200)
        .lean<GroupBuyDoc[]>();
      const tally = { succeeded: 0, failed: 0 };
      for (const group of due) {
        try {
          const outcome = await decide(group, at, true);
          if (outcome === 'SUCCEEDED') tally.succeeded++;
          else if (outcome === 'FAILED') tally.failed++;
        } catch (err) {
          deps.logger?.warn({ err, groupId: group._id }, 'group-buy expiry failed; will retry');
        }
      }
      return tally;
    },
  };
}
export type GroupBuyService = ReturnType<typeof createGroupBuyService>;
