import {
  AppError,
  appendToLedger,
  badInput,
  ledgerHead,
  notFound,
  optionalText,
  requireObjectId,
  requireRole,
  requireSelfOrStaff,
  wholeNumber,
  type Viewer,
} from '@flywheel/service-kit';
import type { ReferralService } from '../service';
import {
  ATTRIBUTIONS,
  DISTRIBUTOR_MODES,
  type Attribution,
  type BuyerBindingDoc,
  type DistributionModels,
  type DistributorEntryDoc,
  type DistributorMode,
  type ProductRate,
  type SettingsEntryDoc,
} from './model';

const SETTINGS_ACCOUNT = 'distribution';
const DAY_MS = 86_400_000;
export const DISTRIBUTION_LIMITS = { maxBps: 5000, maxBindingDays: 365, maxProductRates: 200, reason: 200 } as const;

export type SettingsView = Omit<SettingsEntryDoc, '_id' | 'accountId' | 'seq' | 'by' | 'at'> & { version: number; updatedAt: Date | null };

/** Until staff save their own: approved distributors, first touch for 30 days, 10% and 5%, ¥10 minimum. */
export const DEFAULT_SETTINGS: SettingsView = {
  version: 0,
  updatedAt: null,
  mode: 'APPROVED',
  attribution: 'FIRST_TOUCH',
  bindingDays: 30,
  level1Bps: 1000,
  level2Bps: 500,
  productRates: [],
  minWithdrawal: 1000,
};

export interface SettingsInput {
  mode: string;
  attribution: string;
  bindingDays: number;
  level1Bps: number;
  level2Bps: number;
  productRates?: readonly ProductRate[] | null;
  minWithdrawal: number;
  /** The version the staff member edited: another save in between is CONFLICT. */
  expectedVersion: number;
}

export type BindOutcome = { status: 'BOUND' | 'KEPT'; binding: BuyerBindingDoc };

/** Refusals of a binding: reasons the client and the order's decision both name. */
export const selfReferral = () =>
  new AppError('BAD_USER_INPUT', "A distributor's own link earns them nothing", { reason: 'SELF_REFERRAL', field: 'code' });
const notADistributor = () => new AppError('CONFLICT', 'This code does not belong to a distributor', { reason: 'NOT_A_DISTRIBUTOR' });

export interface DistributorDeps {
  models: DistributionModels;
  invites: ReferralService;
  now: () => Date;
}

function validSettings(input: SettingsInput): Omit<SettingsEntryDoc, '_id' | 'accountId' | 'seq' | 'by' | 'at'> {
  if (!DISTRIBUTOR_MODES.includes(input.mode as DistributorMode)) throw badInput('Unknown mode', 'mode');
  if (!ATTRIBUTIONS.includes(input.attribution as Attribution)) throw badInput('Unknown attribution', 'attribution');
  const bps = (v: number, field: string) => wholeNumber(v, field, 0, DISTRIBUTION_LIMITS.maxBps);
  const rates = input.productRates ?? [];
  if (rates.length > DISTRIBUTION_LIMITS.maxProductRates)
    throw badInput(`At most ${DISTRIBUTION_LIMITS.maxProductRates} product rates`, 'productRates');
  const seen = new Set<string>();
  const productRates = rates.map((r, i) => {
    const productId = requireObjectId(r.productId, `productRates[${i}].productId`).toLowerCase();
    if (seen.has(productId)) throw badInput('A product appears twice', `productRates[${i}].productId`);
    seen.add(productId);
    return {
      productId,
      level1Bps: bps(r.level1Bps, `productRates[${i}].level1Bps`),
      level2Bps: bps(r.level2Bps, `productRates[${i}].level2Bps`),
    };
  });
  return {
    mode: input.mode as DistributorMode,
    attribution: input.attribution as Attribution,
    bindingDays: wholeNumber(input.bindingDays, 'bindingDays', 1, DISTRIBUTION_LIMITS.maxBindingDays),
    level1Bps: bps(input.level1Bps, 'level1Bps'),
    level2Bps: bps(input.level2Bps, 'level2Bps'),
    productRates,
    minWithdrawal: wholeNumber(input.minWithdrawal, 'minWithdrawal', 1, 100_000_000),
  };
}

const viewOf = (head: SettingsEntryDoc | null): SettingsView =>
  head
    ? {
        version: head.seq,
        updatedAt: head.at,
        mode: head.mode,
        attribution: head.attribution,
        bindingDays: head.bindingDays,
        level1Bps: head.level1Bps,
        level2Bps: head.level2Bps,
        productRates: head.productRates,
        minWithdrawal: head.minWithdrawal,
      }
    : DEFAULT_SETTINGS;

/** Settings, distributors and buyer bindings: who earns on whose orders. */
export function createDistributorService(deps: DistributorDeps) {
  const { models, invites, now } = deps;

  const settings = async () => viewOf(await ledgerHead(models.Settings, SETTINGS_ACCOUNT));
  const statusHead = (memberId: string) => ledgerHead(models.Distributor, memberId);

  /** Approved (and not revoked since), or anyone not revoked when the mode is EVERYONE. */
  async function isDistributor(memberId: string, mode?: DistributorMode): Promise<boolean> {
    const head = await statusHead(memberId);
    if (head?.status === 'APPROVED') return true;
    if (head?.status === 'REVOKED') return false;
    return (mode ?? (await settings()).mode) === 'EVERYONE';
  }

  async function statusView(memberId: string) {
    const [head, rule] = await Promise.all([statusHead(memberId), settings()]);
    const active = head?.status === 'APPROVED' || (head?.status !== 'REVOKED' && rule.mode === 'EVERYONE');
    return { memberId, status: head?.status ?? null, active, since: head?.at ?? null, reason: head?.reason ?? null };
  }

  /** Appends the status `to` unless it is already the head; CONFLICT (reason: the current status) when `allowed` says no. */
  async function moveStatus(
    memberId: string,
    by: string,
    to: DistributorEntryDoc['status'],
    allowed: (head: DistributorEntryDoc | null) => boolean,
    reason?: string,
  ) {
    let refusedFrom: string | null = null;
    await appendToLedger(models.Distributor, memberId, (head) => {
      if (head?.status === to) return null;
      if (!allowed(head)) {
        refusedFrom = head?.status ?? 'NONE';
        return null;
      }
      return { status: to, by, at: now(), ...(reason ? { reason } : {}) };
    });
    if (refusedFrom) throw new AppError('CONFLICT', `A distributor ${refusedFrom} cannot become ${to}`, { reason: refusedFrom });
    return statusView(memberId);
  }

  /** The buyer's binding still valid at `at`, if any. */
  async function activeBinding(buyerId: string, at: Date): Promise<BuyerBindingDoc | null> {
    const head = await ledgerHead(models.BuyerBinding, buyerId);
    return head && head.expiresAt > at ? head : null;
  }

  /**
   * Binds a buyer to the distributor owning `rawCode`, by the attribution rule: FIRST_TOUCH keeps a
   * binding still within its window (KEPT), LAST_TOUCH moves it (a new window). The binding is a
   * per-buyer ledger, so two racing links leave one head, decided by the insert.
   */
  async function bind(buyerId: string, rawCode: string, via: BuyerBindingDoc['via'], at: Date = now()): Promise<BindOutcome> {
    const code = invites.normalizeCode(rawCode);
    const owner = code ? ((await invites.loaders().codeByCode.load(code))?.memberId ?? null) : null;
    if (!code || !owner) throw notFound('Distributor code');
    if (owner === buyerId) throw selfReferral();
    const rule = await settings();
    if (!(await isDistributor(owner, rule.mode))) throw notADistributor();
    let kept: BuyerBindingDoc | null = null;
    const entry = await appendToLedger(models.BuyerBinding, buyerId, (head) => {
      const active = head && head.expiresAt > at ? head : null;
      // Within its window a first touch holds (even against the same link again); a last touch moves it and restarts the window.
      if (active && rule.attribution === 'FIRST_TOUCH') {
        kept = active;
        return null;
      }
      return { distributorId: owner, code, via, boundAt: at, expiresAt: new Date(at.getTime() + rule.bindingDays * DAY_MS) };
    });
    if (entry) return { status: 'BOUND', binding: entry };
    if (kept) return { status: 'KEPT', binding: kept };
    throw new Error(`binding of ${buyerId} neither written nor kept`);
  }

  return {
    settings,
    isDistributor,
    activeBinding,
    bind,

    async setSettings(viewer: Viewer | null, input: SettingsInput): Promise<SettingsView> {
      const by = requireRole(viewer, 'STAFF').id;
      const body = validSettings(input);
      const expected = wholeNumber(input.expectedVersion, 'expectedVersion', 0, Number.MAX_SAFE_INTEGER);
      let stale = false;
      const entry = await appendToLedger(models.Settings, SETTINGS_ACCOUNT, (head) => {
        if ((head?.seq ?? 0) !== expected) {
          stale = true;
          return null;
        }
        return { ...body, by, at: now() };
      });
      if (!entry || stale) throw new AppError('CONFLICT', 'The settings changed since you read them', { reason: 'STALE_VERSION' });
      return viewOf(entry);
    },

    async readSettings(viewer: Viewer | null) {
      requireRole(viewer, 'STAFF');
      return settings();
    },

    /** A member asks to become a distributor (APPROVED mode); a repeat answers the same status. */
    async apply(viewer: Viewer | null) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      return moveStatus(memberId, memberId, 'APPLIED', (head) => !head);
    },

    async approve(viewer: Viewer | null, rawMemberId: string) {
      const by = requireRole(viewer, 'STAFF').id;
      const memberId = requireObjectId(rawMemberId, 'memberId').toLowerCase();
      return moveStatus(memberId, by, 'APPROVED', () => true);
    },

    async revoke(viewer: Viewer | null, rawMemberId: string, rawReason?: string | null) {
      const by = requireRole(viewer, 'STAFF').id;
      const memberId = requireObjectId(rawMemberId, 'memberId').toLowerCase();
      const reason = optionalText(rawReason, 'reason', DISTRIBUTION_LIMITS.reason) ?? undefined;
      return moveStatus(memberId, by, 'REVOKED', () => true, reason);
    },

    /** A signed-in visitor arrived through a distributor's link. */
    async bindDistributor(viewer: Viewer | null, rawCode: string): Promise<BindOutcome> {
      const buyerId = requireRole(viewer, 'CUSTOMER').id;
      return bind(buyerId, rawCode ?? '', 'LINK');
    },

    /** The member's distributor status (self or staff): status null when they never applied nor were approved. */
    async statusOf(viewer: Viewer | null, memberId: string) {
      requireSelfOrStaff(viewer, memberId);
      return statusView(memberId);
    },
  };
}

export type DistributorService = ReturnType<typeof createDistributorService>;
