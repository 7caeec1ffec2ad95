import { randomUUID } from 'node:crypto';
import {
  createKeyQueue,
  AppError,
  appendOnce,
  appendToLedger,
  badInput,
  claimOnce,
  decodeSeqCursor,
  encodeSeqCursor,
  findByIds,
  knownLedgerHead,
  replaceById,
  LedgerContentionError,
  ledgerHead,
  outboxRecord,
  pageSize,
  requireRole,
  type Logger,
  type Viewer,
} from '@flywheel/service-kit';
import type { EventData } from '@flywheel/events';
import type { CouponService } from '../coupons';
import type { Models } from '../model';
import {
  localDate,
  loyaltyProgramOf,
  LOYALTY_SETTINGS_KEY,
  loyaltyProgram,
  ONCE_TASKS,
  parseProgram,
  TIERS,
  type LoyaltyProgram,
  type TaskName,
  type TierName,
} from '../program';
import type { Settings } from '../settings';
import { addLots, available, dropExpired, expiryOf, portionOf, proRata, takeFifo, takeNewest, total, type Lot } from './lots';
import type { LotEntryDoc, LotKind, LoyaltyModels, TierEntryDoc } from './model';

export interface LoyaltyDeps {
  models: LoyaltyModels;
  core: Models;
  settings: Settings;
  coupons: CouponService;
  kick: () => void;
  now: () => Date;
  logger: Pick<Logger, 'warn' | 'error'>;
}

const pointsAccount = (memberId: string) => `p:${memberId}`;
const growthAccount = (memberId: string) => `g:${memberId}`;
const DAY_MS = 86_400_000;

type EntryBody = Omit<LotEntryDoc, '_id' | 'accountId' | 'seq' | 'op'>;

export interface PointsView {
  memberId: string;
  balance: number;
  /** Unexpired points whose lots expire within the program's `expiringSoonDays`. */
  expiringSoon: number;
  expiringSoonBefore: Date;
}

export interface TierView {
  memberId: string;
  tier: TierName;
  growth: number;
  /** Set while growth is below the tier: the day the tier is lost unless growth recovers. */
  retainedUntil: Date | null;
  program: LoyaltyProgram;
}

/** A spend the balance does not cover: refused against the ledger's head, nothing taken. */
export class PointsRefused extends AppError {
  constructor(message: string) {
    super('CONFLICT', message);
  }
}

export function createLoyaltyService(deps: LoyaltyDeps) {
  const { models, now } = deps;
  const queue = createKeyQueue().run;
  const program = () => loyaltyProgramOf(deps.settings);

  /** The entry that already holds `op` (a scan on FerretDB: only on the replay path). */
  async function doneOp(op: string): Promise<LotEntryDoc | null> {
    return models.LotEntry.findOne({ op }).lean<LotEntryDoc>();
  }

  /**
   * Appends to one lot account, at most once per `op`, queued per account inside this process.
   * `build` sees the head's lots and returns null to do nothing, or throws to refuse; the decision
   * is made against the real head (a racing replica's insert makes ours a duplicate and we retry).
   */
  async function append(
    accountId: string,
    operation: string,
    build: (lots: Lot[], head: LotEntryDoc | null) => EntryBody | null,
    opts: { mayBeReplay?: boolean } = {},
  ): Promise<{ entry: LotEntryDoc; fresh: boolean } | null> {
    // One operation (an order's earn) moves several accounts (points and growth): unique per account.
    const op = `${accountId}:${operation}`;
    return queue(accountId, async () => {
      for (let round = 1; ; round++) {
        try {
          let refusal: unknown = null;
          let atHead: LotEntryDoc | null = null;
          const entry = await appendToLedger(
            models.LotEntry,
            accountId,
            (head) => {
              // Decided afresh on each head tried (a known head first, then the real one).
              refusal = null;
              atHead = null;
              if (head?.op === op) {
                atHead = head;
                return null;
              }
              try {
                const body = build(head?.lots ?? [], head);
                return body && { ...body, op };
              } catch (err) {
                refusal = err;
                return null;
              }
            },
            // The head this replica wrote last: the insert of seq + 1 proves it current, so an
            // account appended to only here (its events are handled one at a time) is never read.
            { maxAttempts: 12, knownHead: knownLedgerHead(models.LotEntry, accountId), raw: true },
          );
          if (refusal) {
            // A replay of an op that is already in the ledger (below the head) is not refused.
            // Finding it is a scan on FerretDB, so a caller that knows its op is new (it won the
            // claim the op hangs on) skips it: refusals are the common case when a balance runs out.
            if (opts.mayBeReplay === false) throw refusal;
            const done = await doneOp(op);
            if (done) return { entry: done, fresh: false };
            throw refusal;
          }
          if (atHead) return { entry: atHead, fresh: false };
          if (!entry) return null;
          await noteExpiry(accountId, entry.lots);
          return { entry, fresh: true };
        } catch (err) {
          // Our op is already in the ledger below the head (a crash after the append, or another
          // replica): every insert of ours is a duplicate on the unique op until we find it.
          if (!(err instanceof LedgerContentionError)) throw err;
          const done = await doneOp(op);
          if (done) return { entry: done, fresh: false };
          if (round >= 3) throw err;
        }
      }
    });
  }

  /** The sweeper's worklist: accounts holding lots and when the first one expires. */
  const noted = new Map<string, number | null>();
  async function noteExpiry(accountId: string, lots: Lot[]) {
    const next = lots[0]?.expiresAt ?? null;
    // Most appends (an earn adds the latest lot) leave the first expiry as it was: skip the write.
    const key = next ? next.getTime() : null;
    if (noted.has(accountId) && noted.get(accountId) === key) return;
    await replaceById(models.LoyaltyAccount, { _id: accountId, nextExpiry: next, updatedAt: now() });
    if (noted.size > 100_000) noted.clear();
    noted.set(accountId, key);
  }

  const headOf = (accountId: string) => ledgerHead(models.LotEntry, accountId);

  function credit(kind: LotKind, n: number, expiresAt: Date, reason: string, extra: Partial<EntryBody> = {}) {
    return (lots: Lot[]): EntryBody | null => {
      if (n <= 0) return null;
      const next = addLots(lots, [{ expiresAt, n }]);
      return { kind, delta: n, balance: total(next), lots: next, at: now(), reason, ...extra };
    };
  }

  // Nothing to credit appends nothing (`credit` builds no entry): no need to look at the account.
  async function creditPoints(memberId: string, op: string, n: number, kind: LotKind, reason: string, extra: Partial<EntryBody> = {}) {
    if (n <= 0) return null;
    const p = await program();
    return append(pointsAccount(memberId), op, credit(kind, n, expiryOf(now(), p.pointsLifetimeDays), reason, extra));
  }

  /** Growth only: the caller evaluates the tier (see `evaluateTier` for why the order matters). */
  async function appendGrowth(memberId: string, op: string, n: number, reason: string, extra: Partial<EntryBody> = {}) {
    if (n <= 0) return null;
    const p = await program();
    return append(growthAccount(memberId), op, credit('EARN', n, expiryOf(now(), p.growthWindowDays), reason, extra));
  }

  async function creditGrowth(memberId: string, op: string, n: number, reason: string, extra: Partial<EntryBody> = {}) {
    const res = await appendGrowth(memberId, op, n, reason, extra);
    if (res?.fresh) await evaluateTier(memberId, now(), { growthHead: res.entry });
    return res;
  }

  async function pointsOf(memberId: string, at = now()): Promise<number> {
    const head = await headOf(pointsAccount(memberId));
    return available(head?.lots ?? [], at);
  }

  async function growthOf(memberId: string, at = now()): Promise<number> {
    const head = await headOf(growthAccount(memberId));
    return available(head?.lots ?? [], at);
  }

  const tierFor = (p: LoyaltyProgram, growth: number): TierName =>
    [...TIERS].reverse().find((t) => growth >= p.tiers[t].threshold) ?? 'REGULAR';
  const rank = (t: TierName) => TIERS.indexOf(t);

  /**
   * Moves the member's tier to what their growth earns: up at once; down only once growth has
   * been below the current tier for the retention period (the first evaluation below it starts
   * the clock, one that finds growth recovered stops it). Each change is a tier entry carrying
   * `membership.tier.changed`; concurrent evaluations append at most one entry per head.
   *
   * `refundOf`: the paid time of an order whose refund just took growth back. If the member
   * reached their tier after paying that order, the order paid for the upgrade: it is undone at
   * once. Otherwise (and when growth ages out of its window) the retention period applies.
   *
   * Exact across replicas by one rule: whoever appends a tier entry reads the growth head again
   * afterwards and, if growth moved meanwhile, decides again on the newer figure. So a decision of
   * "no change" made on a tier head read after a growth entry was written (`tierHead`, read by the
   * caller) stands without reading the tier again: any tier entry appended since that read was
   * decided by an evaluator that re-checks growth after appending, and sees that growth entry.
   * `growthHead`: the growth entry the caller just wrote (the head when it was written).
   */
  async function evaluateTier(
    memberId: string,
    at: Date,
    opts: { refundOf?: Date; growthHead?: LotEntryDoc | null; tierHead?: TierEntryDoc | null } = {},
  ): Promise<TierEntryDoc | null> {
    const p = await program();
    return queue(`tier:${memberId}`, async () => {
      // Read inside the queue: a growth figure taken before it could be older than the tier head.
      let growthHead = opts.growthHead !== undefined ? opts.growthHead : await headOf(growthAccount(memberId));
      let known = opts.tierHead;
      let last: TierEntryDoc | null = null;
      for (let round = 1; ; round++) {
        const growth = available(growthHead?.lots ?? [], at);
        const decide = (head: TierEntryDoc | null) => decideTier(p, memberId, at, growth, head, opts.refundOf);
        // A known head (or knowing there is none yet) saves the read unless the tier moves.
        const entry =
          known !== undefined && decide(known) === null
            ? null
            : await appendToLedger(models.TierEntry, memberId, decide, known ? { knownHead: known } : {});
        if (!entry) return last;
        last = entry;
        if (entry.outbox) deps.kick();
        const latest = await headOf(growthAccount(memberId));
        if ((latest?.seq ?? 0) === (growthHead?.seq ?? 0) || round >= 5) return last;
        growthHead = latest;
        known = entry;
      }
    });
  }

  /** The tier entry `head` leads to at `growth` (null: none, the tier stands as it is). */
  function decideTier(p: LoyaltyProgram, memberId: string, at: Date, growth: number, head: TierEntryDoc | null, refundOf?: Date) {
    const current: TierName = head?.tier ?? 'REGULAR';
    const earned = tierFor(p, growth);
    const base = { growth, at, tierSince: head?.tierSince ?? head?.at ?? at };
    const move = (direction: 'UP' | 'DOWN') => ({
      ...base,
      tier: earned,
      belowSince: null,
      tierSince: at,
      direction,
      // The relay finds entries by when they were written (the wall clock), whatever `at` says.
      outbox: outboxRecord(
        'membership.tier.changed',
        { memberId, from: current, to: earned, direction, growth, changedAt: at.toISOString() },
        randomUUID(),
        new Date(),
      ),
    });
    if (rank(earned) > rank(current)) return move('UP');
    if (rank(earned) === rank(current)) return head?.belowSince ? { ...base, tier: current, belowSince: null } : null;
    // A refund of the order that paid for this tier takes it back at once.
    if (refundOf && head && base.tierSince.getTime() >= refundOf.getTime()) return move('DOWN');
    // Below the current tier: start the retention clock, or downgrade once it has run out.
    if (!head?.belowSince) return { ...base, tier: current, belowSince: at };
    if (at.getTime() - head.belowSince.getTime() < p.tierRetentionDays * DAY_MS) return null;
    return move('DOWN');
  }

  async function tierOf(memberId: string): Promise<TierName> {
    return (await ledgerHead(models.TierEntry, memberId))?.tier ?? 'REGULAR';
  }

  /** The refund's place among the order's refunds: the running total before and after it. */
  async function refundShare(orderId: string, refundId: string, amount: number): Promise<{ before: number; after: number }> {
    const found = await models.RefundEntry.findOne({ op: refundId }).lean();
    const entry =
      found ??
      (await queue(
        `refund:${orderId}`,
        async () =>
          // Null: this refund is already recorded (a replay, or another replica got there first).
          (await appendOnce(models.RefundEntry, orderId, refundId, (head) => ({
            amount,
            cumulative: (head?.cumulative ?? 0) + amount,
            at: now(),
          }))) ?? (await models.RefundEntry.findOne({ op: refundId }).lean()),
      ));
    if (!entry) throw new Error(`refund ${refundId} of ${orderId} not recorded`);
    return { before: entry.cumulative - entry.amount, after: entry.cumulative };
  }

  function taskPeriod(task: TaskName, at: Date, p: LoyaltyProgram) {
    return ONCE_TASKS.includes(task) ? 'once' : localDate(at, p.timeZone);
  }

  async function rewardTask(memberId: string, claimId: string, points: number, growth: number, reason: string) {
    if (points > 0) await creditPoints(memberId, claimId, points, 'GRANT', reason);
    if (growth > 0) await creditGrowth(memberId, claimId, growth, reason);
  }

  /** The birthday gift (tier's points and coupon), once per member and year, on the birthday itself. */
  async function grantBirthday(memberId: string, at: Date): Promise<boolean> {
    const p = await program();
    const m = await deps.core.Member.findById(memberId).lean();
    const today = localDate(at, p.timeZone);
    if (!m?.birthday || m.birthday !== today.slice(5)) return false;
    const id = `birthday:${memberId}:${today.slice(0, 4)}`;
    const tier = await tierOf(memberId);
    const gift = p.tiers[tier];
    const claim = { _id: id, memberId, at, points: gift.birthdayPoints };
    const first = await claimOnce(models.LoyaltyClaim, claim);
    const stored = first ? claim : await models.LoyaltyClaim.findById(id).lean();
    if (stored?.points) await creditPoints(memberId, id, stored.points, 'GRANT', `Birthday ${today.slice(0, 4)}`);
    if (gift.birthdayCouponTemplateId) {
      await deps.coupons.grant({ key: id, memberId, templateId: gift.birthdayCouponTemplateId, reason: 'Birthday gift' });
    }
    return first;
  }

  return {
    pointsOf,
    growthOf,
    grantBirthday,
    tierOf,
    evaluateTier,
    refundShare,
    program,

    async pointsView(memberId: string): Promise<PointsView> {
      const [p, head] = await Promise.all([program(), headOf(pointsAccount(memberId))]);
      const at = now();
      const soon = new Date(at.getTime() + p.expiringSoonDays * DAY_MS);
      const lots = head?.lots ?? [];
      return {
        memberId,
        balance: available(lots, at),
        expiringSoon: total(lots.filter((l) => l.expiresAt > at && l.expiresAt <= soon)),
        expiringSoonBefore: soon,
      };
    },

    async tierView(memberId: string): Promise<TierView> {
      const [p, head, growth] = await Promise.all([program(), ledgerHead(models.TierEntry, memberId), growthOf(memberId)]);
      const belowSince = head?.belowSince ?? null;
      return {
        memberId,
        tier: head?.tier ?? 'REGULAR',
        growth,
        retainedUntil: belowSince ? new Date(belowSince.getTime() + p.tierRetentionDays * DAY_MS) : null,
        program: p,
      };
    },

    /** The member's points history, newest first (seq-paged by `_id` look-ups). */
    async history(memberId: string, first: number, after?: string | null) {
      const size = pageSize(first, 100);
      const accountId = pointsAccount(memberId);
      const seq = decodeSeqCursor(after);
      const top = seq !== null ? seq - 1 : ((await headOf(accountId))?.seq ?? 0);
      const seqs = Array.from({ length: Math.min(size, top) }, (_, i) => top - i);
      const docs = await Promise.all(seqs.map((s) => models.LotEntry.findById(`${accountId}:${s}`).lean<LotEntryDoc>()));
      const entries = docs.filter((d): d is LotEntryDoc => Boolean(d));
      const last = entries.at(-1);
      return {
        edges: entries.map((e) => ({ node: e, cursor: encodeSeqCursor(e.seq) })),
        pageInfo: { hasNextPage: Boolean(last && last.seq > 1), endCursor: last ? encodeSeqCursor(last.seq) : null },
      };
    },

    /**
     * Points and growth for a paid order at the member's tier rate (× member day); once per order.
     * Growth goes first so that the tier read after it can settle the tier without a second read
     * (see `evaluateTier`); the points use that tier, the one before this order's own upgrade.
     * Steady state, one replica: four commands (growth insert, tier read, order claim, points insert).
     */
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<void> {
      const p = await program();
      const { memberId, orderId } = data;
      const paidAt = new Date(data.paidAt);
      const yuan = Math.floor(data.total / 100);
      const memberDay = p.memberDay && Number(localDate(paidAt, p.timeZone).slice(8, 10)) === p.memberDay.dayOfMonth;
      const reason = memberDay ? `Order ${orderId} (member day)` : `Order ${orderId}`;
      const op = `earn:${orderId}`;
      const earned = await appendGrowth(memberId, op, yuan * p.growthPerYuan, reason, { orderId });
      const tierHead = await ledgerHead(models.TierEntry, memberId);
      const tier = tierHead?.tier ?? 'REGULAR';
      const multiplier = p.tiers[tier].pointsMultiplierPercent * (memberDay ? p.memberDay!.pointsMultiplierPercent : 100);
      const points = Math.floor((yuan * p.pointsPerYuan * multiplier) / 10_000);
      // What the order earned, for refunds; its insert is the claim that fixes the points once.
      // Growth is what the ledger holds for the order (a replay finds the first delivery's).
      const record = { _id: orderId, memberId, total: data.total, points, growth: earned?.entry.delta ?? 0, paidAt };
      if (!(await claimOnce(models.LoyaltyOrder, record, { raw: true }))) {
        const first = await models.LoyaltyOrder.findById(orderId).lean();
        if (first) Object.assign(record, first);
      }
      await creditPoints(memberId, op, record.points, 'EARN', reason, { orderId });
      // A replay evaluates too (reading both heads): its first delivery may have stopped short of it.
      if (earned) await evaluateTier(memberId, now(), earned.fresh ? { growthHead: earned.entry, tierHead } : {});
    },

    /**
     * A refund claws back its pro-rata share of what the order earned (cumulative over the
     * order's refunds, so several partial refunds add up exactly). Never below zero: points
     * already spent are recorded as a shortfall.
     */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const order = await models.LoyaltyOrder.findById(data.orderId).lean();
      // The paid event has not been handled yet: redeliver later rather than lose the claw-back.
      if (!order) throw new Error(`refund ${data.refundId}: order ${data.orderId} not earned yet`);
      const { before, after } = await refundShare(data.orderId, data.refundId, data.amount);
      const points = proRata(order.points, after, order.total) - proRata(order.points, before, order.total);
      const growth = proRata(order.growth, after, order.total) - proRata(order.growth, before, order.total);
      const reason = `Refund ${data.refundId} of order ${data.orderId}`;
      const claw = (n: number) => (lots: Lot[]) => {
        if (n <= 0) return null;
        const res = takeNewest(lots, n, now());
        return {
          kind: 'CLAWBACK' as const,
          delta: -(n - res.shortfall),
          balance: total(res.lots),
          lots: res.lots,
          at: now(),
          reason,
          orderId: data.orderId,
          refundId: data.refundId,
          taken: res.taken,
          shortfall: res.shortfall,
        };
      };
      await append(pointsAccount(data.memberId), `clawback:${data.refundId}`, claw(points));
      const g = await append(growthAccount(data.memberId), `clawback:${data.refundId}`, claw(growth));
      if (g?.fresh) await evaluateTier(data.memberId, now(), { refundOf: order.paidAt, growthHead: g.entry });
    },

    /**
     * Debits `n` points for a checkout (FIFO), once; returns the lots taken (what a release or
     * refund gives back). `PointsRefused` (CONFLICT) when the balance no longer covers it: then
     * nothing was taken. `firstAttempt`: the caller just won the claim this spend hangs on, so it
     * cannot be a replay and a refusal is final without a ledger search.
     */
    async spend(memberId: string, checkoutId: string, n: number, opts: { firstAttempt?: boolean } = {}): Promise<Lot[]> {
      const res = await append(
        pointsAccount(memberId),
        `spend:${checkoutId}`,
        (lots) => {
          const res = takeFifo(lots, n, now());
          if (!res) throw new PointsRefused(`Not enough points: ${available(lots, now())} available, ${n} asked`);
          return {
            kind: 'SPEND',
            delta: -n,
            balance: total(res.lots),
            lots: res.lots,
            at: now(),
            reason: `Checkout ${checkoutId}`,
            orderId: checkoutId,
            taken: res.taken,
          };
        },
        { mayBeReplay: !opts.firstAttempt },
      );
      return res?.entry.taken ?? [];
    },

    /**
     * Gives back `n` of what a checkout spent (all of it on release, a refund's share on refund),
     * with the expiries they had; once per `op`.
     */
    async giveBack(memberId: string, checkoutId: string, n: number, op: string, reason: string, taken?: Lot[]): Promise<void> {
      if (n <= 0) return;
      // What the spend took, as the caller kept it, else from the ledger (a scan: the rare path).
      const spent = taken?.length
        ? taken
        : (await models.LotEntry.findOne({ op: `${pointsAccount(memberId)}:spend:${checkoutId}` }).lean<LotEntryDoc>())?.taken;
      if (!spent?.length) return;
      const portion = portionOf(spent, n);
      await append(pointsAccount(memberId), op, (lots) => {
        const next = addLots(lots, portion);
        return { kind: 'RETURN', delta: n, balance: total(next), lots: next, at: now(), reason, orderId: checkoutId };
      });
    },

    /** Points granted by staff or another service (referral rewards), once per `op`. */
    async grantPoints(memberId: string, op: string, n: number, reason: string) {
      if (!Number.isSafeInteger(n) || n <= 0 || n > 1_000_000) throw badInput('Points must be 1 to 1,000,000', 'points');
      const res = await creditPoints(memberId, op, n, 'GRANT', reason);
      return res?.entry ?? null;
    },

    /** Daily sign-in (签到): once per day; consecutive days make a streak with a bonus every n days. */
    async signIn(viewer: Viewer | null) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const p = await program();
      const at = now();
      const day = localDate(at, p.timeZone);
      const yesterday = localDate(new Date(at.getTime() - DAY_MS), p.timeZone);
      const id = `signin:${memberId}:${day}`;
      const prev = await models.LoyaltyClaim.findById(`signin:${memberId}:${yesterday}`).lean();
      const streak = (prev?.streak ?? 0) + 1;
      const reward = p.tasks.SIGN_IN;
      const bonus = streak % p.signInStreakBonus.days === 0 ? p.signInStreakBonus.points : 0;
      const claim = { _id: id, memberId, at, streak, points: reward.points + bonus, growth: reward.growth };
      const first = await claimOnce(models.LoyaltyClaim, claim);
      const stored = first ? claim : ((await models.LoyaltyClaim.findById(id).lean()) ?? claim);
      // Applied after the claim, under the claim's id as op: a crash in between is finished by the next call.
      await rewardTask(memberId, id, stored.points ?? 0, stored.growth ?? 0, `Sign-in day ${stored.streak}`);
      return { alreadySignedIn: !first, streak: stored.streak ?? 1, points: stored.points ?? 0, day };
    },

    /** Claims a task's reward once per period; the task must be done (profile complete, a paid order). */
    async claimTask(viewer: Viewer | null, task: TaskName) {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      if (task === 'SIGN_IN') throw badInput('Sign in with signIn', 'task');
      const p = await program();
      const at = now();
      if (task === 'COMPLETE_PROFILE') {
        const m = await deps.core.Member.findById(memberId).lean();
        if (!m?.birthday) throw new AppError('CONFLICT', 'Complete your profile (birthday) first');
      }
      if (task === 'FIRST_ORDER') {
        const paid = await models.LoyaltyOrder.exists({ memberId });
        if (!paid) throw new AppError('CONFLICT', 'Place and pay a first order first');
      }
      const period = taskPeriod(task, at, p);
      const id = `task:${memberId}:${task}:${period}`;
      const reward = p.tasks[task];
      const claim = { _id: id, memberId, at, points: reward.points, growth: reward.growth };
      if (!(await claimOnce(models.LoyaltyClaim, claim))) {
        const stored = await models.LoyaltyClaim.findById(id).lean();
        // Finish a claim whose reward a crash interrupted, then refuse the second claim.
        if (stored) await rewardTask(memberId, id, stored.points ?? 0, stored.growth ?? 0, `Task ${task}`);
        throw new AppError(
          'CONFLICT',
          ONCE_TASKS.includes(task) ? 'This task was already rewarded' : 'This task was already rewarded today',
        );
      }
      await rewardTask(memberId, id, reward.points, reward.growth, `Task ${task}`);
      return { task, points: reward.points, growth: reward.growth, period };
    },

    /** Which tasks the member can still claim in their current period. */
    async tasksOf(memberId: string) {
      const p = await program();
      const at = now();
      const tasks = Object.keys(p.tasks) as TaskName[];
      const claimIdOf = (task: TaskName) => {
        const period = taskPeriod(task, at, p);
        return task === 'SIGN_IN' ? `signin:${memberId}:${period}` : `task:${memberId}:${task}:${period}`;
      };
      const claimed = new Set((await findByIds<{ _id: string }>(models.LoyaltyClaim, tasks.map(claimIdOf), { _id: 1 })).map((c) => c._id));
      return tasks.map((task) => ({
        task,
        points: p.tasks[task].points,
        growth: p.tasks[task].growth,
        daily: !ONCE_TASKS.includes(task),
        claimed: claimed.has(claimIdOf(task)),
      }));
    },

    async updateProgram(viewer: Viewer | null, patch: Record<string, unknown>): Promise<LoyaltyProgram> {
      const staff = requireRole(viewer, 'STAFF');
      const current = await program();
      const next = parseProgram(loyaltyProgram, { ...current, ...patch });
      return deps.settings.set(LOYALTY_SETTINGS_KEY, next, staff.id);
    },

    /**
     * Periodic work: writes EXPIRE entries for lots past their expiry (points and growth), moves
     * tiers whose retention ran out, grants today's birthday gifts. Each step is claimed, so
     * re-running at the same instant changes nothing.
     */
    async sweep(at: Date): Promise<Record<string, number>> {
      const tally = { expired: 0, tiersChecked: 0, birthdays: 0 };
      const due = await models.LoyaltyAccount.find({ nextExpiry: { $ne: null, $lte: at } })
        .limit(1000)
        .lean();
      const members = new Set<string>();
      for (const acc of due) {
        try {
          const head = await headOf(acc._id);
          const lots = head?.lots ?? [];
          const firstExpired = lots.find((l) => l.expiresAt <= at);
          if (!firstExpired) {
            await noteExpiry(acc._id, lots);
            continue;
          }
          const res = await append(acc._id, `expire:${acc._id}:${firstExpired.expiresAt.toISOString()}`, (cur) => {
            const d = dropExpired(cur, at);
            if (d.expired === 0) return null;
            return { kind: 'EXPIRE', delta: -d.expired, balance: total(d.lots), lots: d.lots, at, reason: 'Expired' };
          });
          if (res?.fresh) tally.expired += -res.entry.delta;
          if (acc._id.startsWith('g:')) members.add(acc._id.slice(2));
        } catch (err) {
          deps.logger.warn({ err, accountId: acc._id }, 'expiry failed; the next sweep retries');
        }
      }
      // Tiers waiting out their retention, and members whose growth just fell.
      const watched = await models.TierEntry.find({ belowSince: { $ne: null } }, { accountId: 1 }).lean();
      for (const w of watched) members.add(w.accountId);
      for (const memberId of members) {
        await evaluateTier(memberId, at);
        tally.tiersChecked++;
      }
      const p = await program();
      const today = localDate(at, p.timeZone).slice(5);
      const born = await deps.core.Member.find({ birthday: today }, { _id: 1 }).lean();
      for (const m of born) if (await grantBirthday(m._id.toHexString(), at)) tally.birthdays++;
      return tally;
    },
  };
}
export type LoyaltyService = ReturnType<typeof createLoyaltyService>;
