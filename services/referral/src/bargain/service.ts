import { randomBytes } from 'node:crypto';
import { Types } from 'mongoose';
import type { EventData, ReplyData, RequestData } from '@flywheel/events';
import {
  AppError,
  badInput,
  claimOnce,
  fromBusError,
  isDuplicateKey,
  notFound,
  optionalText,
  requireObjectId,
  requireRole,
  requireViewer,
  sha256,
  text,
  wholeNumber,
  type Bus,
  type Viewer,
} from '@flywheel/service-kit';
import { bargainCuts, priceAfter } from './cuts';
import type { BargainDoc, BargainHelpDoc, BargainModels, BargainOfferDoc, BargainStatus } from './model';

export const BARGAIN_LIMITS = {
  helpersNeeded: { min: 1, max: 100 },
  durationHours: { min: 1, max: 720 },
  stock: { max: 1_000_000 },
  /** Helps from one device per offer and clock hour (the velocity rule) when staff set none. */
  deviceHelpsPerHour: { default: 3, max: 100 },
  idempotencyKey: 100,
  /** Lists answer the newest ones only. */
  list: 100,
} as const;

const HOUR_MS = 3_600_000;
const MAX_START_ATTEMPTS = 20;
/**
 * A bargain's id: 24 hex digits (checkout takes it as an ObjectId) derived from the member's
 * start ledger `offerId:memberId` and the seq, so the unique `_id` is the claim of that seq.
 */
const bargainIdOf = (account: string, seq: number) => sha256(`bargain\0${account}\0${seq}`).slice(0, 24);
/** A frontend-generated device id: no `:` (it is part of the velocity claim's key), no spaces. */
const DEVICE_ID = /^[A-Za-z0-9_-]{8,64}$/;

export interface CreateBargainOfferInput {
  skuId: string;
  startPrice?: number | null;
  floorPrice: number;
  helpersNeeded: number;
  durationHours: number;
  startsAt: Date | string;
  endsAt: Date | string;
  stock?: number | null;
  deviceHelpsPerHour?: number | null;
  idempotencyKey?: string | null;
}

/** What `Bargain` resolves from: the bargain, its cuts so far and its purchase state. */
export interface BargainView {
  doc: BargainDoc;
  helps: BargainHelpDoc[];
  currentPrice: number;
  status: BargainStatus;
}

/** What `BargainCut` resolves from: the help and whose bargain it cut (who may see the helper). */
export type CutShape = BargainHelpDoc & { starterId: string };

export interface HelpResult {
  bargain: BargainView;
  number: number;
  amount: number;
}

export interface BargainDeps {
  models: BargainModels;
  bus: Bus;
  now: () => Date;
}

const refused = (code: 'CONFLICT' | 'FORBIDDEN' | 'RATE_LIMITED' | 'OUT_OF_STOCK', reason: string, message: string) =>
  // The reason leads the message too: a bus refusal reaches orders as code and message only.
  new AppError(code, `${reason}: ${message}`, { reason });

const toDate = (raw: Date | string, field: string) => {
  const d = raw instanceof Date ? raw : new Date(raw);
  if (Number.isNaN(d.getTime())) throw badInput(`${field} is not a date-time`, field);
  return d;
};

export function createBargainService(deps: BargainDeps) {
  const { models, bus, now } = deps;

  async function offerOf(id: string): Promise<BargainOfferDoc> {
    const offer = await models.BargainOffer.findById(id).lean<BargainOfferDoc>();
    if (!offer) throw notFound('Bargain offer');
    return offer;
  }

  async function find(rawId: string): Promise<BargainDoc | null> {
    const id = requireObjectId(rawId, 'bargainId').toLowerCase();
    return models.Bargain.findById(id).lean<BargainDoc>();
  }

  /** The bargain's state, derived from its claims: the paid order, the held purchase, the cuts, the clock. */
  async function view(doc: BargainDoc, at = now()): Promise<BargainView & { held: string | null; bought: boolean }> {
    const [helps, bought, purchase] = await Promise.all([
      models.BargainHelp.find({ bargainId: doc._id }).sort({ k: 1 }).lean<BargainHelpDoc[]>(),
      models.BargainBought.exists({ _id: doc._id }),
      models.BargainPurchase.findById(doc._id, { checkoutId: 1 }).lean<{ checkoutId: string }>(),
    ]);
    const cuts = bargainCuts(doc.seed, doc.startPrice - doc.floorPrice, doc.helpersNeeded);
    const currentPrice = priceAfter(cuts, doc.startPrice, helps.length);
    const status: BargainStatus = bought
      ? 'BOUGHT'
      : at >= doc.expiresAt && !purchase
        ? 'EXPIRED'
        : helps.length >= doc.helpersNeeded
          ? 'FLOOR_REACHED'
          : 'OPEN';
    return { doc, helps, currentPrice, status, held: purchase?.checkoutId ?? null, bought: Boolean(bought) };
  }

  /** The catalog's list price of one unit; NOT_FOUND for an unknown SKU. */
  async function listPrice(skuId: string) {
    try {
      const quote = await bus.request('catalog.price.quote', { lines: [{ skuId, quantity: 1 }] });
      const line = quote.lines[0]!;
      return { unitPrice: line.unitPrice, productId: line.productId, name: `${line.name} ${line.skuName}`.trim() };
    } catch (err) {
      return fromBusError(err);
    }
  }

  /** The starter buying under this checkout: refused for anyone else, once bought, or after expiry. */
  async function buyable(req: { checkoutId: string; memberId: string; offer: RequestData<'referral.price.quote'>['offer'] }) {
    if (req.offer.kind !== 'BARGAIN') throw badInput('Not a bargain offer', 'offer');
    const doc = await models.Bargain.findById(req.offer.bargainId).lean<BargainDoc>();
    if (!doc) throw notFound('Bargain');
    if (doc.memberId !== req.memberId)
      throw refused('FORBIDDEN', 'NOT_STARTER', 'Only the member who started the bargain buys at its price');
    const v = await view(doc);
    if (v.bought || (v.held && v.held !== req.checkoutId)) throw refused('CONFLICT', 'ALREADY_BOUGHT', 'This bargain was bought already');
    // Past expiry only a purchase this checkout already holds stands (a replayed lock).
    if (v.status === 'EXPIRED') throw refused('CONFLICT', 'BARGAIN_EXPIRED', 'This bargain has expired');
    return v;
  }

  /** Claims a device's help within the hour: `offerId:deviceId:hour:n`, n ≤ the offer's limit. */
  async function takeDeviceSlot(offer: BargainOfferDoc, deviceId: string, at: Date): Promise<string> {
    const hour = Math.floor(at.getTime() / HOUR_MS);
    for (let n = 1; n <= offer.deviceHelpsPerHour; n++) {
      const _id = `${offer._id}:${deviceId}:${hour}:${n}`;
      if (await claimOnce(models.DeviceSlot, { _id, offerId: offer._id, deviceId, at })) return _id;
    }
    throw refused('RATE_LIMITED', 'HELPER_VELOCITY', `At most ${offer.deviceHelpsPerHour} helps from one device per offer in an hour`);
  }

  return {
    view: (doc: BargainDoc) => view(doc),
    offerOf,

    /**
     * Staff: a bargain offer for one SKU. The SKU must exist (catalog's quote); the start price
     * defaults to its list price. Each of the helpers cuts at least 1 fen, so the gap between the
     * start and floor prices must be at least the number of helpers. A replayed key returns the first.
     */
    async createOffer(viewer: Viewer | null, input: CreateBargainOfferInput): Promise<BargainOfferDoc> {
      const staffId = requireRole(viewer, 'STAFF').id;
      const skuId = requireObjectId(input.skuId, 'skuId').toLowerCase();
      const key = optionalText(input.idempotencyKey, 'idempotencyKey', BARGAIN_LIMITS.idempotencyKey);
      const id = key ? sha256(`createBargainOffer\0${staffId}\0${key}`).slice(0, 24) : new Types.ObjectId().toHexString();
      if (key) {
        const first = await models.BargainOffer.findById(id).lean<BargainOfferDoc>();
        if (first) return first;
      }
      const { helpersNeeded: h, durationHours: d } = BARGAIN_LIMITS;
      const helpersNeeded = wholeNumber(input.helpersNeeded, 'helpersNeeded', h.min, h.max);
      const durationHours = wholeNumber(input.durationHours, 'durationHours', d.min, d.max);
      const floorPrice = wholeNumber(input.floorPrice, 'floorPrice', 1, Number.MAX_SAFE_INTEGER);
      const deviceHelpsPerHour = wholeNumber(
        input.deviceHelpsPerHour ?? BARGAIN_LIMITS.deviceHelpsPerHour.default,
        'deviceHelpsPerHour',
        1,
        BARGAIN_LIMITS.deviceHelpsPerHour.max,
      );
      const stock = input.stock == null ? undefined : wholeNumber(input.stock, 'stock', 1, BARGAIN_LIMITS.stock.max);
      const startsAt = toDate(input.startsAt, 'startsAt');
      const endsAt = toDate(input.endsAt, 'endsAt');
      if (endsAt <= startsAt) throw badInput('endsAt must be after startsAt', 'endsAt');
      const sku = await listPrice(skuId);
      const startPrice = wholeNumber(input.startPrice ?? sku.unitPrice, 'startPrice', 1, Number.MAX_SAFE_INTEGER);
      if (floorPrice >= startPrice) throw badInput('floorPrice must be below the start price', 'floorPrice');
      if (startPrice - floorPrice < helpersNeeded) {
        throw badInput('Every helper cuts at least 1 fen: startPrice − floorPrice must be at least helpersNeeded', 'helpersNeeded');
      }
      const offer: BargainOfferDoc = {
        _id: id,
        skuId,
        productId: sku.productId,
        name: sku.name,
        startPrice,
        floorPrice,
        helpersNeeded,
        durationHours,
        startsAt,
        endsAt,
        ...(stock ? { stock } : {}),
        deviceHelpsPerHour,
        createdBy: staffId,
        createdAt: now(),
      };
      try {
        await models.BargainOffer.create(offer);
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        return (await models.BargainOffer.findById(id).lean<BargainOfferDoc>())!; // a racing replay won
      }
      return offer;
    },

    /** Staff see every offer; everyone else the ones running now. Newest first. */
    async offers(viewer: Viewer | null): Promise<BargainOfferDoc[]> {
      const at = now();
      const filter = viewer?.roles.includes('STAFF') ? {} : { startsAt: { $lte: at }, endsAt: { $gt: at } };
      return models.BargainOffer.find(filter).sort({ createdAt: -1 }).limit(BARGAIN_LIMITS.list).lean<BargainOfferDoc[]>();
    },

    async offer(rawId: string): Promise<BargainOfferDoc | null> {
      const id = requireObjectId(rawId, 'id').toLowerCase();
      return models.BargainOffer.findById(id).lean<BargainOfferDoc>();
    },

    /** Signed-in callers (the starter's friends open it from a shared link); null when unknown. */
    async bargain(viewer: Viewer | null, rawId: string): Promise<BargainView | null> {
      requireViewer(viewer);
      const doc = await find(rawId);
      return doc ? view(doc) : null;
    },

    async myBargains(viewer: Viewer | null): Promise<BargainView[]> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const docs = await models.Bargain.find({ memberId }).sort({ createdAt: -1 }).limit(BARGAIN_LIMITS.list).lean<BargainDoc[]>();
      return Promise.all(docs.map((d) => view(d)));
    },

    /**
     * A member starts a bargain on a running offer. Bargains are the member's start ledger
     * `offerId:memberId` (the id claims the seq): a new one is inserted only when the newest is
     * closed (bought, or expired with no purchase held), so concurrent starts open one; a member
     * with an open bargain gets it back. A replayed key returns its bargain.
     */
    async start(viewer: Viewer | null, rawOfferId: string, rawKey: string): Promise<BargainView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const offerId = requireObjectId(rawOfferId, 'offerId').toLowerCase();
      const key = text(rawKey, 'idempotencyKey', BARGAIN_LIMITS.idempotencyKey);
      const keyHash = sha256(`startBargain\0${memberId}\0${offerId}\0${key}`);
      const replay = await models.Bargain.findOne({ keyHash }).lean<BargainDoc>();
      if (replay) return view(replay);
      const offer = await offerOf(offerId);
      const at = now();
      if (at < offer.startsAt) throw refused('CONFLICT', 'OFFER_NOT_STARTED', 'This bargain offer has not started');
      if (at >= offer.endsAt) throw refused('CONFLICT', 'OFFER_ENDED', 'This bargain offer has ended');
      const account = `${offerId}:${memberId}`;
      for (let attempt = 1; attempt <= MAX_START_ATTEMPTS; attempt++) {
        const head = await models.Bargain.findOne({ accountId: account }).sort({ seq: -1 }).lean<BargainDoc>();
        if (head) {
          const current = await view(head, at);
          if (current.status !== 'BOUGHT' && current.status !== 'EXPIRED') return current;
        }
        const seq = (head?.seq ?? 0) + 1;
        const doc: BargainDoc = {
          _id: bargainIdOf(account, seq),
          accountId: account,
          seq,
          offerId,
          memberId,
          skuId: offer.skuId,
          keyHash,
          seed: randomBytes(32).toString('hex'),
          startPrice: offer.startPrice,
          floorPrice: offer.floorPrice,
          helpersNeeded: offer.helpersNeeded,
          expiresAt: new Date(Math.min(at.getTime() + offer.durationHours * HOUR_MS, offer.endsAt.getTime())),
          createdAt: at,
          status: 'OPEN',
        };
        try {
          await models.Bargain.create(doc);
          return view(doc, at);
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          // Another start took this seq (or this key): its bargain is the member's open one.
          const replayed = await models.Bargain.findOne({ keyHash }).lean<BargainDoc>();
          if (replayed) return view(replayed);
        }
      }
      throw new Error(`bargain starts of ${account}: gave up after ${MAX_START_ATTEMPTS} attempts under contention`);
    },

    /**
     * Another member helps: once per helper (`bargainId:helperId`), the k-th cut to exactly one
     * helper (`bargainId:k`), no help past the floor (CONFLICT FLOOR_REACHED), at most the offer's
     * helps per device and hour (a slot claim first; given back when the help is refused after).
     */
    async help(viewer: Viewer | null, rawBargainId: string, rawDeviceId: string): Promise<HelpResult> {
      const helperId = requireRole(viewer, 'CUSTOMER').id;
      const deviceId = (rawDeviceId ?? '').trim();
      if (!DEVICE_ID.test(deviceId)) throw badInput('deviceId must be 8 to 64 letters, digits, - or _', 'deviceId');
      const doc = await find(rawBargainId);
      if (!doc) throw notFound('Bargain');
      if (doc.memberId === helperId) throw refused('FORBIDDEN', 'SELF_HELP', 'The starter cannot help their own bargain');
      const helpId = `${doc._id}:${helperId}`;
      if (await models.BargainHelp.exists({ _id: helpId })) throw refused('CONFLICT', 'ALREADY_HELPED', 'You helped this bargain already');
      const at = now();
      const before = await view(doc, at);
      if (before.status === 'BOUGHT') throw refused('CONFLICT', 'BARGAIN_BOUGHT', 'This bargain was bought');
      if (at >= doc.expiresAt) throw refused('CONFLICT', 'BARGAIN_EXPIRED', 'This bargain has expired');
      if (before.helps.length >= doc.helpersNeeded) throw refused('CONFLICT', 'FLOOR_REACHED', 'This bargain is at its floor price');
      const offer = await offerOf(doc.offerId);
      const deviceSlot = await takeDeviceSlot(offer, deviceId, at);
      const cuts = bargainCuts(doc.seed, doc.startPrice - doc.floorPrice, doc.helpersNeeded);
      try {
        for (let k = before.helps.length + 1; k <= doc.helpersNeeded; k++) {
          const help: BargainHelpDoc = {
            _id: helpId,
            bargainId: doc._id,
            offerId: doc.offerId,
            helperId,
            deviceId,
            slot: `${doc._id}:${k}`,
            k,
            amount: cuts[k - 1]!,
            at,
          };
          try {
            await models.BargainHelp.create(help);
          } catch (err) {
            if (!isDuplicateKey(err)) throw err;
            if (await models.BargainHelp.exists({ _id: helpId }))
              throw refused('CONFLICT', 'ALREADY_HELPED', 'You helped this bargain already');
            continue; // slot k went to another helper: try k + 1
          }
          if (k === doc.helpersNeeded) await models.Bargain.updateOne({ _id: doc._id }, { $set: { status: 'FLOOR_REACHED' } });
          return { bargain: await view(doc), number: k, amount: help.amount };
        }
        throw refused('CONFLICT', 'FLOOR_REACHED', 'This bargain is at its floor price');
      } catch (err) {
        // A refused help does not count against the device: its slot is ours alone to give back.
        await models.DeviceSlot.deleteOne({ _id: deviceSlot });
        throw err;
      }
    },

    /**
     * `referral.price.quote`: the BARGAIN adjustment bringing the bargain SKU's line (one unit) to
     * the current price; none when the catalog's unit price is already at or below it.
     */
    async quote(req: RequestData<'referral.price.quote'>): Promise<ReplyData<'referral.price.quote'>> {
      const v = await buyable(req);
      const line = req.lines.find((l) => l.skuId === v.doc.skuId);
      if (!line) throw badInput('The order has no line of the bargain SKU', 'lines');
      if (line.quantity !== 1) throw badInput('A bargain buys one unit', 'quantity');
      const amount = Math.min(0, v.currentPrice - line.unitPrice);
      if (amount === 0) return { adjustments: [] };
      return { adjustments: [{ kind: 'BARGAIN', skuId: v.doc.skuId, amount, label: '砍价 Bargain price', ref: `bargain:${v.doc._id}` }] };
    },

    /**
     * `referral.price.lock`: the bargain's one purchase for this checkout (`_id` = bargainId),
     * idempotent per checkout; another checkout is CONFLICT ALREADY_BOUGHT. With a stock cap the
     * same insert takes a unit slot `offerId:n`; none left is OUT_OF_STOCK BARGAIN_SOLD_OUT.
     */
    async lock(req: RequestData<'referral.price.lock'>): Promise<void> {
      const v = await buyable(req);
      if (v.held === req.checkoutId) return;
      const ref = `bargain:${v.doc._id}`;
      if (req.adjustments.some((a) => a.ref === ref && a.skuId !== v.doc.skuId))
        throw badInput('The adjustment names another SKU', 'adjustments');
      const offer = await offerOf(v.doc.offerId);
      const slots = offer.stock ? Array.from({ length: offer.stock }, (_, i) => `${offer._id}:${i + 1}`) : [v.doc._id];
      const taken = offer.stock ? await models.BargainPurchase.countDocuments({ offerId: offer._id }) : 0;
      for (const slot of [...slots.slice(taken), ...slots.slice(0, taken)]) {
        const purchase = { _id: v.doc._id, checkoutId: req.checkoutId, offerId: offer._id, memberId: req.memberId, slot, at: now() };
        try {
          await models.BargainPurchase.create(purchase);
          return;
        } catch (err) {
          if (!isDuplicateKey(err)) throw err;
          const holder = await models.BargainPurchase.findById(v.doc._id, { checkoutId: 1 }).lean<{ checkoutId: string }>();
          if (holder?.checkoutId === req.checkoutId) return;
          if (holder) throw refused('CONFLICT', 'ALREADY_BOUGHT', 'This bargain was bought already');
        }
      }
      throw refused('OUT_OF_STOCK', 'BARGAIN_SOLD_OUT', 'Every unit of this bargain offer is sold');
    },

    /** `referral.price.release`: frees the purchase this checkout holds, unless its order was paid. */
    async release(checkoutId: string): Promise<boolean> {
      const held = await models.BargainPurchase.findOne({ checkoutId }, { _id: 1 }).lean<{ _id: string }>();
      if (!held || (await models.BargainBought.exists({ _id: held._id }))) return false;
      const { deletedCount } = await models.BargainPurchase.deleteOne({ _id: held._id, checkoutId });
      return deletedCount > 0;
    },

    /** `orders.order.paid` for a checkout holding a bargain's purchase: BOUGHT, once (`_id` = bargainId). */
    async orderPaid(data: EventData<'orders.order.paid'>, eventId: string): Promise<void> {
      const held = await models.BargainPurchase.findOne({ checkoutId: data.orderId }, { _id: 1 }).lean<{ _id: string }>();
      if (!held) return;
      await claimOnce(models.BargainBought, { _id: held._id, orderId: data.orderId, eventId, at: new Date(data.paidAt) });
      await models.Bargain.updateOne({ _id: held._id }, { $set: { status: 'BOUGHT' } });
    },

    /** Marks bargains past their expiry EXPIRED (a projection: reads derive it from the clock too). */
    async sweep(at: Date): Promise<Record<string, number>> {
      const due = await models.Bargain.find({ status: { $in: ['OPEN', 'FLOOR_REACHED'] }, expiresAt: { $lte: at } })
        .limit(500)
        .lean<BargainDoc[]>();
      let expired = 0;
      for (const doc of due) {
        const { status } = await view(doc, at);
        if (status !== 'EXPIRED' && status !== 'BOUGHT') continue; // a purchase is held: paid or released later
        await models.Bargain.updateOne({ _id: doc._id }, { $set: { status } });
        if (status === 'EXPIRED') expired++;
      }
      return { expired };
    },
  };
}

export type BargainService = ReturnType<typeof createBargainService>;
