import DataLoader from 'dataloader';
import { Types } from 'mongoose';
import {
  AppError,
  badInput,
  byIdLoader,
  claimOnce,
  isDuplicateKey,
  isObjectId,
  isStaff,
  notFound,
  paginate,
  requireRole,
  sha256,
  text,
  wholeNumber,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import type { Models, ProductDoc, SkuDoc } from '../model';
import { money, type Money } from '../money';
import type { StockAccounts } from '../stock/accounts';
import { availableOf, flashAccount, flashStatusAt, totalsOf, MAX_PER_MEMBER_LIMIT, MAX_STOCK, type FlashSaleStatus } from '../stock/ledger';
import type { StockEntryDoc } from '../stock/model';
import type { StockLoaders } from '../stock/service';
import { SWEEP_BATCH } from '../sweeper/service';
import type { FlashAdmission } from './admission';
import type { FlashSaleDoc } from './model';

export interface FlashSaleView {
  id: string;
  sku: SkuDoc;
  product: ProductDoc;
  flashPrice: Money;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  status: FlashSaleStatus;
  remaining: number;
  groupId: string | null;
}

export interface CreateFlashSaleInput {
  skuId: string;
  flashPrice: number;
  quota: number;
  perMemberLimit: number;
  startsAt: Date;
  endsAt: Date;
  /** Restricts the flash sale to the current members of one community group. */
  groupId?: string | null;
  idempotencyKey?: string | null;
}

export interface FlashSaleListArgs extends PageArgs {
  status?: FlashSaleStatus | null;
  groupId?: string | null;
}

/**
 * A community group id, shaped as group-exclusive coupons take it (community is not asked whether
 * the group exists: its membership request answers false for an unknown group alike).
 */
function groupIdOf(value: string | null | undefined): string | null {
  if (value === null || value === undefined) return null;
  const groupId = value.trim();
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(groupId)) throw badInput('groupId must be a community group id', 'groupId');
  return groupId;
}

/** What request-scoped lookups flash sales need from the products' loaders. */
export interface EntityLoaders {
  sku: DataLoader<string, SkuDoc | null>;
  product: DataLoader<string, ProductDoc | null>;
}

/** A deterministic ObjectId for an idempotency key: a replay creates (or finds) the same document. */
const objectIdFrom = (hash: string) => new Types.ObjectId(hash.slice(0, 24));

/**
 * Flash sales of each SKU that have not ended, earliest start first; flash sales by id; and
 * whether the request's viewer is in a community group (one request per group per GraphQL
 * request; anyone but a signed-in customer is in none).
 */
function flashLoaders(models: Models, now: () => Date, admission: FlashAdmission, viewer: Viewer | null) {
  return {
    groupMember: new DataLoader<string, boolean>(async (groupIds) => {
      const customer = viewer?.roles.includes('CUSTOMER') ? viewer.id : null;
      const joined = customer ? await admission.joinedGroups(customer, groupIds) : new Set<string>();
      return groupIds.map((g) => joined.has(g));
    }),
    flashSale: byIdLoader(models.FlashSale),
    /** Flash sales of each SKU that have not ended, earliest start first. */
    flashSalesBySku: new DataLoader<string, FlashSaleDoc[]>(async (skuIds) => {
      const valid = skuIds.filter(isObjectId);
      const sales = valid.length
        ? await models.FlashSale.find({ skuId: { $in: valid }, endsAt: { $gt: now() } })
            .sort({ startsAt: 1, _id: 1 })
            .lean<FlashSaleDoc[]>()
        : [];
      return skuIds.map((id) => sales.filter((f) => f.skuId.toHexString() === id));
    }),
  };
}

export type FlashSaleLoaders = ReturnType<typeof flashLoaders>;
export type FlashLoaders = EntityLoaders & StockLoaders & FlashSaleLoaders;

export interface FlashSaleDeps {
  models: Models;
  accounts: StockAccounts;
  admission: FlashAdmission;
  /** Told when a flash sale of the product was created (its listing and read models follow). */
  onFlashSaleCreated?: (productId: string) => Promise<unknown>;
  now: () => Date;
}

/** Flash sales: creation (the quota carved out of the SKU), their views, and settling ended ones. */
export function createFlashSaleService({ models, accounts, admission, now, ...deps }: FlashSaleDeps) {
  /**
   * After the end: the quota left in the flash sale's account goes back to the SKU. The flash
   * side (QUOTA_RETURN) is written first; each one's SKU counterpart (FLASH_RETURN, op
   * `<entry>:back`) is then ensured, so a crash in between is repaired by the next pass. Works
   * from the ledger alone (the allocation entry names the SKU), so it also returns the quota of
   * a creation that crashed before its flash sale document was written. True when nothing is
   * left to do (no unit still reserved).
   */
  async function settleFlash(flashSaleId: string, endsAt: Date, at: Date): Promise<boolean> {
    if (at < endsAt) return false;
    const allocation = await models.StockEntry.findOne({ op: `${flashSaleId}:ALLOCATE` }).lean<StockEntryDoc>();
    if (!allocation) return true;
    const account = flashAccount(flashSaleId);
    const fields = { flashSaleId };
    await accounts.append(account, `${flashSaleId}:INITIAL`, (t, head) =>
      head ? null : accounts.move(t, 'INITIAL', allocation.qty, fields),
    );
    await accounts.append(account, null, (t) => {
      const left = availableOf(t);
      return left > 0 ? accounts.move(t, 'QUOTA_RETURN', left, fields) : null;
    });
    const returns = await models.StockEntry.find({ accountId: account, kind: 'QUOTA_RETURN' }).lean<StockEntryDoc[]>();
    for (const r of returns) {
      await accounts.append(allocation.accountId, `${r._id}:back`, (t) => accounts.move(t, 'FLASH_RETURN', r.qty, fields));
    }
    const head = await accounts.headOf(account);
    return !head || head.reserved === 0;
  }

  async function flashView(loaders: FlashLoaders, flash: FlashSaleDoc, at: Date): Promise<FlashSaleView | null> {
    const id = flash._id.toHexString();
    const [sku, product, head] = await Promise.all([
      loaders.sku.load(flash.skuId.toHexString()),
      loaders.product.load(flash.productId.toHexString()),
      loaders.stockHead.load(flashAccount(id)),
    ]);
    if (!sku || !product) return null;
    const available = availableOf(totalsOf(head));
    const status = flashStatusAt(flash, available, at);
    return {
      id,
      sku,
      product,
      flashPrice: money(flash.flashPrice),
      quota: flash.quota,
      perMemberLimit: flash.perMemberLimit,
      startsAt: flash.startsAt,
      endsAt: flash.endsAt,
      status,
      remaining: status === 'ENDED' ? 0 : available,
      groupId: flash.groupId ?? null,
    };
  }

  /**
   * Customers see flash sales of products on sale, a group-exclusive one only while they are in
   * its group; staff see all.
   */
  async function flashVisible(viewer: Viewer | null, loaders: FlashLoaders, view: FlashSaleView): Promise<boolean> {
    if (isStaff(viewer)) return true;
    if (view.product.status !== 'ON_SALE') return false;
    return !view.groupId || loaders.groupMember.load(view.groupId);
  }

  /** Ended flash sales give their unsold quota back; done once nothing is reserved any more. */
  async function settleFlashSales(): Promise<number> {
    let settled = 0;
    const due = await models.FlashSettlement.find({ dueAt: { $lte: now() } })
      .sort({ dueAt: 1 })
      .limit(SWEEP_BATCH)
      .lean();
    for (const item of due) {
      if (await settleFlash(item._id, item.dueAt, now())) {
        await models.FlashSettlement.deleteOne({ _id: item._id });
        settled++;
      }
    }
    return settled;
  }

  const flashSales = {
    loaders: (viewer: Viewer | null) => flashLoaders(models, now, admission, viewer),
    settleFlash,
    settleFlashSales,

    /**
     * Carves the quota out of the SKU (FLASH_ALLOCATE) into the flash sale's own account, then
     * writes the flash sale, which makes it reachable. The settlement record written first returns
     * the quota at the end even if creation stops half way; with an idempotency key a replay
     * finishes (or finds) the same flash sale.
     */
    async createFlashSale(viewer: Viewer | null, input: CreateFlashSaleInput): Promise<FlashSaleDoc> {
      const v = requireRole(viewer, 'STAFF');
      const sku = isObjectId(input.skuId) ? await models.Sku.findById(input.skuId).lean<SkuDoc>() : null;
      if (!sku) throw notFound('SKU');
      const flashPrice = input.flashPrice;
      if (!Number.isSafeInteger(flashPrice) || flashPrice < 1 || flashPrice >= sku.price) {
        throw badInput('The flash price is a whole number of fen above zero and below the SKU price', 'flashPrice');
      }
      const quota = wholeNumber(input.quota, 'quota', 1, MAX_STOCK);
      const perMemberLimit = wholeNumber(input.perMemberLimit, 'perMemberLimit', 1, Math.min(MAX_PER_MEMBER_LIMIT, quota));
      const startsAt = new Date(input.startsAt);
      const endsAt = new Date(input.endsAt);
      if (!(startsAt < endsAt)) throw badInput('startsAt must be before endsAt', 'endsAt');
      if (endsAt <= now()) throw badInput('endsAt must be in the future', 'endsAt');
      const groupId = groupIdOf(input.groupId);
      const idemKey = input.idempotencyKey == null ? null : text(input.idempotencyKey, 'idempotencyKey', 100);
      const hash = idemKey ? sha256(`${v.id}\ncreateFlashSale\n${idemKey}`) : null;
      const _id = hash ? objectIdFrom(hash) : new Types.ObjectId();
      const id = _id.toHexString();
      const key = hash ?? id;
      const replayed = await models.FlashSale.findOne({ key }).lean<FlashSaleDoc>();
      if (replayed) {
        const same =
          replayed.skuId.equals(sku._id) &&
          replayed.flashPrice === flashPrice &&
          replayed.quota === quota &&
          replayed.perMemberLimit === perMemberLimit &&
          replayed.startsAt.getTime() === startsAt.getTime() &&
          replayed.endsAt.getTime() === endsAt.getTime() &&
          (replayed.groupId ?? null) === groupId;
        if (!same) throw new AppError('CONFLICT', 'This idempotencyKey was used for a different flash sale');
        return replayed;
      }

      await claimOnce(models.FlashSettlement, { _id: id, dueAt: endsAt });
      const fields = { flashSaleId: id, by: v.id };
      let allocation: StockEntryDoc;
      try {
        const allocated = await accounts.append(input.skuId, `${id}:ALLOCATE`, (t) =>
          accounts.skuMove(sku, t, 'FLASH_ALLOCATE', quota, fields, (before) =>
            badInput(`Only ${availableOf(before)} available for the flash quota`, 'quota'),
          ),
        );
        allocation = allocated!.entry;
      } catch (err) {
        await models.FlashSettlement.deleteOne({ _id: id });
        throw err;
      }
      // A replay finishing a creation that stopped half way must not change what was carved.
      if (allocation.qty !== quota) throw new AppError('CONFLICT', 'This idempotencyKey was used for a different flash sale');
      await accounts.append(flashAccount(id), `${id}:INITIAL`, (t, head) =>
        head ? null : accounts.move(t, 'INITIAL', allocation.qty, fields),
      );
      const doc: FlashSaleDoc = {
        _id,
        key,
        skuId: sku._id,
        productId: sku.productId,
        flashPrice,
        quota,
        perMemberLimit,
        startsAt,
        endsAt,
        groupId,
        createdBy: v.id,
        createdAt: now(),
      };
      try {
        await models.FlashSale.create(doc);
        admission.forgetSku(input.skuId);
        await deps.onFlashSaleCreated?.(sku.productId.toHexString());
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        return (await models.FlashSale.findOne({ key }).lean<FlashSaleDoc>()) ?? doc;
      }
      return doc;
    },

    async flashSale(viewer: Viewer | null, loaders: FlashLoaders, id: string): Promise<FlashSaleView | null> {
      const flash = await loaders.flashSale.load(id);
      const view = flash && (await flashView(loaders, flash, now()));
      return view && (await flashVisible(viewer, loaders, view)) ? view : null;
    },

    flashView: (loaders: FlashLoaders, flash: FlashSaleDoc) => flashView(loaders, flash, now()),

    /** A flash sale's SKU, product and window (`catalog.flash.describe`); unknown is NOT_FOUND. */
    async describe(id: string): Promise<{ flashSaleId: string; skuId: string; productId: string; startsAt: string; endsAt: string }> {
      const flash = isObjectId(id) ? await models.FlashSale.findById(id).lean<FlashSaleDoc>() : null;
      if (!flash) throw notFound('Flash sale');
      return {
        flashSaleId: flash._id.toHexString(),
        skuId: flash.skuId.toHexString(),
        productId: flash.productId.toHexString(),
        startsAt: flash.startsAt.toISOString(),
        endsAt: flash.endsAt.toISOString(),
      };
    },

    /**
     * With a groupId, that group's flash sales (for a customer, only while they are in it: else an
     * empty page); without, customers see those open to everyone and staff see all.
     */
    async listFlashSales(viewer: Viewer | null, loaders: FlashLoaders, args: FlashSaleListArgs) {
      const at = now();
      const groupId = groupIdOf(args.groupId);
      if (groupId && !isStaff(viewer) && !(await loaders.groupMember.load(groupId))) {
        return { edges: [], pageInfo: { hasNextPage: false, endCursor: null } };
      }
      const byGroup = groupId ? { groupId } : isStaff(viewer) ? {} : { groupId: null };
      const byStatus: Record<string, unknown> =
        args.status === 'UPCOMING'
          ? { startsAt: { $gt: at } }
          : args.status === 'ENDED'
            ? { endsAt: { $lte: at } }
            : args.status
              ? { startsAt: { $lte: at }, endsAt: { $gt: at } }
              : {};
      const page = await paginate(models.FlashSale, { ...byStatus, ...byGroup }, args);
      const views = await Promise.all(
        page.edges.map(async (e) => {
          const node = await flashView(loaders, e.node, at);
          const shown = node !== null && (await flashVisible(viewer, loaders, node)) && (!args.status || node.status === args.status);
          return shown ? [{ node, cursor: e.cursor }] : [];
        }),
      );
      return { edges: views.flat(), pageInfo: page.pageInfo };
    },

    /** The SKU's live flash sale (one with quota left first), or else the next one, of those the viewer may see. */
    async flashSaleOfSku(viewer: Viewer | null, loaders: FlashLoaders, sku: SkuDoc): Promise<FlashSaleView | null> {
      const at = now();
      const sales = await loaders.flashSalesBySku.load(sku._id.toHexString());
      const views = (
        await Promise.all(
          sales.map(async (f) => {
            const view = await flashView(loaders, f, at);
            return view && (isStaff(viewer) || !view.groupId || (await loaders.groupMember.load(view.groupId))) ? [view] : [];
          }),
        )
      ).flat();
      return (
        views.find((v) => v.status === 'LIVE') ??
        views.find((v) => v.status === 'SOLD_OUT') ??
        views.find((v) => v.status === 'UPCOMING') ??
        null
      );
    },
  };
  return flashSales;
}

export type FlashSaleService = ReturnType<typeof createFlashSaleService>;
