import { randomUUID } from 'node:crypto';
import type { EventData } from '@flywheel/events';
import { AppError, appendOnce, isDuplicateKey, outboxRecord, type Logger } from '@flywheel/service-kit';
import type { ReferralService } from '../service';
import type { CommissionLevel, DistributionModels, OrderCommissionEntryDoc, OrderDecisionDoc } from './model';
import { commissionOf, reversedAfter } from './rates';
import type { DistributorService } from './service';

export interface CommissionDeps {
  models: DistributionModels;
  distributors: DistributorService;
  invites: ReferralService;
  kick: () => void;
  now: () => Date;
  logger: Logger;
}

type EntryBody = Omit<OrderCommissionEntryDoc, '_id' | 'accountId' | 'seq' | 'op'>;
const accountOf = (orderId: string, level: CommissionLevel) => `${orderId}:${level}`;
const reasonOf = (err: unknown) => (err instanceof AppError ? (err.extensions.reason as string | undefined) : undefined);

/**
 * Commissions of paid orders (分销佣金): decided once per order (the decision claim), booked
 * PENDING per level, settled when the order completes, reversed pro rata on every refund (from
 * the settled balance after settlement, which may go negative: a recorded shortfall). Each step is
 * an entry of the order-level ledger carrying its event, mirrored into the distributor's ledger
 * under the same op, so a redelivered event completes whatever a crash left half done.
 */
export function createCommissionService(deps: CommissionDeps) {
  const { models, distributors, invites, kick, now, logger } = deps;

  /** Applies an order-level entry to its distributor's balances, once (op `order:<entry id>`). */
  async function mirror(e: OrderCommissionEntryDoc): Promise<void> {
    await appendOnce(models.CommissionEntry, e.distributorId, `order:${e._id}`, (head) => {
      const t = head ?? { pending: 0, settled: 0, withdrawn: 0 };
      const base = { kind: e.kind, amount: e.amount, orderId: e.orderId, level: e.level, withdrawn: t.withdrawn, at: e.at };
      if (e.kind === 'BOOK') return { ...base, pending: t.pending + e.amount, settled: t.settled, shortfall: 0 };
      if (e.kind === 'SETTLE') return { ...base, pending: t.pending - e.amount, settled: t.settled + e.amount, shortfall: 0 };
      const fromSettled = e.fromSettled ?? 0;
      return {
        ...base,
        pending: t.pending - (e.amount - fromSettled),
        settled: t.settled - fromSettled,
        // What the settled balance (already paid out, perhaps) could not cover: owed back, not lost.
        shortfall: Math.max(0, fromSettled - Math.max(0, t.settled)),
      };
    });
  }

  /** One step of an order-level ledger, once per op; then its mirror (again on a replay: a no-op if done). */
  async function step(account: string, op: string, build: (head: OrderCommissionEntryDoc | null) => EntryBody) {
    const written = await appendOnce(models.OrderCommission, account, op, build);
    const entry = written ?? (await models.OrderCommission.findOne({ op }).lean<OrderCommissionEntryDoc>());
    if (!entry) throw new Error(`order commission ${op} neither written nor found`);
    await mirror(entry);
    if (written) kick();
    return entry;
  }

  function book(d: OrderDecisionDoc, level: OrderDecisionDoc['levels'][number]) {
    const account = accountOf(d._id, level.level);
    return step(account, `${account}:book`, () => {
      const at = now();
      const data: EventData<'referral.commission.booked'> = {
        commissionId: account,
        orderId: d._id,
        distributorId: level.distributorId,
        buyerId: d.buyerId,
        level: level.level,
        amount: level.amount,
        bookedAt: at.toISOString(),
      };
      return {
        kind: 'BOOK',
        orderId: d._id,
        level: level.level,
        distributorId: level.distributorId,
        buyerId: d.buyerId,
        orderTotal: d.orderTotal,
        amount: level.amount,
        booked: level.amount,
        reversed: 0,
        refunded: 0,
        settled: false,
        at,
        outbox: outboxRecord('referral.commission.booked', data, randomUUID(), at),
      };
    });
  }

  /** Who earns on a paid order, decided once: the buyer's distributor at payment, and that distributor's inviter. */
  async function decide(data: EventData<'orders.order.paid'>): Promise<OrderDecisionDoc> {
    const first = await models.OrderDecision.findById(data.orderId).lean<OrderDecisionDoc>();
    if (first) return first;
    const buyerId = data.memberId;
    const paidAt = new Date(data.paidAt);
    const rule = await distributors.settings();
    let refusal: OrderDecisionDoc['refusal'];
    if (data.source.kind === 'REFERRAL') {
      try {
        await distributors.bind(buyerId, data.source.code, 'ORDER', paidAt);
      } catch (err) {
        const reason = reasonOf(err);
        if (reason === 'SELF_REFERRAL') refusal = 'SELF_REFERRAL';
        else if (!(err instanceof AppError)) throw err;
        else logger.info({ orderId: data.orderId, code: data.source.code, reason }, 'order link binds nobody');
      }
    }
    const levels: OrderDecisionDoc['levels'] = [];
    const binding = refusal ? null : await distributors.activeBinding(buyerId, paidAt);
    if (!refusal && !binding) refusal = 'NOT_REFERRED';
    if (binding) {
      const l1 = binding.distributorId;
      if (!(await distributors.isDistributor(l1, rule.mode))) refusal = 'NOT_A_DISTRIBUTOR';
      else {
        levels.push({ level: 1, distributorId: l1, amount: commissionOf(data.lines, data.total, rule, 1) });
        // Level 2: whoever invited the level-1 distributor (the core's inviter binding), never the buyer themself.
        const inviter = (await invites.loaders().bindingByInvitee.load(l1))?.inviterId;
        if (inviter && inviter !== buyerId && (await distributors.isDistributor(inviter, rule.mode))) {
          levels.push({ level: 2, distributorId: inviter, amount: commissionOf(data.lines, data.total, rule, 2) });
        }
      }
    }
    const earning = levels.filter((l) => l.amount > 0);
    if (!refusal && !earning.length) refusal = 'ZERO_COMMISSION';
    const doc: OrderDecisionDoc = {
      _id: data.orderId,
      buyerId,
      orderTotal: data.total,
      levels: refusal ? [] : earning,
      at: now(),
      ...(refusal ? { refusal } : {}),
    };
    try {
      await models.OrderDecision.create(doc);
      return doc;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const winner = await models.OrderDecision.findById(data.orderId).lean<OrderDecisionDoc>();
      if (!winner) throw err;
      return winner;
    }
  }

  /** The order's decision, which a completion or refund needs first: retried (thrown) until the paid event is in. */
  async function decisionOf(orderId: string): Promise<OrderDecisionDoc> {
    const d = await models.OrderDecision.findById(orderId).lean<OrderDecisionDoc>();
    if (!d) throw new Error(`order ${orderId}: no commission decision yet (its paid event comes first)`);
    return d;
  }

  return {
    async orderPaid(data: EventData<'orders.order.paid'>): Promise<OrderDecisionDoc> {
      const d = await decide(data);
      for (const level of d.levels) await book(d, level);
      if (d.refusal === 'SELF_REFERRAL')
        logger.warn({ orderId: d._id, buyerId: d.buyerId }, 'self-purchase through own link: no commission');
      return d;
    },

    /** The after-sales window closed: what is still pending settles. */
    async orderCompleted(data: EventData<'orders.order.completed'>): Promise<void> {
      const d = await decisionOf(data.orderId);
      for (const level of d.levels) {
        await book(d, level);
        const account = accountOf(d._id, level.level);
        await step(account, `${account}:settle`, (head) => {
          if (!head) throw new Error(`${account}: settling before booking`);
          const at = now();
          const amount = head.booked - head.reversed;
          const data: EventData<'referral.commission.settled'> = {
            commissionId: account,
            orderId: d._id,
            distributorId: head.distributorId,
            level: head.level,
            amount,
            settledAt: at.toISOString(),
          };
          return {
            ...carry(head),
            kind: 'SETTLE',
            amount,
            settled: true,
            at,
            outbox: outboxRecord('referral.commission.settled', data, randomUUID(), at),
          };
        });
      }
    },

    /** A refund reverses pro rata (cumulative, floor; see `reversedAfter`), once per refund and level. */
    async orderRefunded(data: EventData<'orders.order.refunded'>): Promise<void> {
      const d = await decisionOf(data.orderId);
      for (const level of d.levels) {
        await book(d, level);
        const account = accountOf(d._id, level.level);
        await step(account, `${account}:refund:${data.refundId}`, (head) => {
          if (!head) throw new Error(`${account}: reversing before booking`);
          const at = now();
          const refunded = head.refunded + data.amount;
          const amount = Math.max(0, reversedAfter(head.booked, refunded, head.orderTotal) - head.reversed);
          const event: EventData<'referral.commission.reversed'> = {
            commissionId: account,
            orderId: d._id,
            distributorId: head.distributorId,
            level: head.level,
            refundId: data.refundId,
            amount,
            afterSettlement: head.settled,
            reversedAt: at.toISOString(),
          };
          return {
            ...carry(head),
            kind: 'REVERSE',
            amount,
            refundId: data.refundId,
            refund: data.amount,
            fromSettled: head.settled ? amount : 0,
            reversed: head.reversed + amount,
            refunded,
            at,
            outbox: outboxRecord('referral.commission.reversed', event, randomUUID(), at),
          };
        });
      }
    },
  };
}

/** The fields every order-level entry repeats from its head. */
function carry(head: OrderCommissionEntryDoc) {
  return {
    orderId: head.orderId,
    level: head.level,
    distributorId: head.distributorId,
    buyerId: head.buyerId,
    orderTotal: head.orderTotal,
    booked: head.booked,
    reversed: head.reversed,
    refunded: head.refunded,
    settled: head.settled,
  };
}

export type CommissionService = ReturnType<typeof createCommissionService>;
