import { AppError, appendToLedger, ledgerHead } from '@flywheel/service-kit';
import { orderMoved } from '../events';
import type { Move, OrderFacts, OrderStatus } from '../types';
import { factsOf } from './facts';
import type { Models, OrderDoc, OrderTransitionDoc } from './model';
import { refusal, statusOf } from './state';

/** The head as every builder sees it, on every append attempt. */
export interface LedgerView {
  head: OrderTransitionDoc | null;
  status: OrderStatus;
  facts: OrderFacts;
  /** The time the entry will carry. */
  at: Date;
}

/** Omit over each member of a union (the built-in Omit merges the union first). */
type DistributiveOmit<T, K extends PropertyKey> = T extends unknown ? Omit<T, K> : never;

/** What a builder proposes, one kind of entry; the ledger fills in seq, from, at and the facts' clocks. */
export type Draft = DistributiveOmit<OrderTransitionDoc, '_id' | 'accountId' | 'seq' | 'from' | 'to' | 'at' | 'reason' | 'facts'> & {
  /** The status afterwards; the head's when omitted (an entry that does not move the order). */
  to?: OrderStatus;
  reason?: string | null;
  /** The facts afterwards; the head's when omitted. */
  facts?: OrderFacts;
};

/**
 * The order's ledger: its state machine and its units (shipments, after-sale claims, refunds)
 * in one append-only sequence, so every decision about an order is made against one head.
 */
export function createOrderLedger(deps: {
  models: Models;
  now: () => Date;
  kick: () => void;
  /**
   * Runs once a move to PAID or CANCELLED found the order no longer waiting for payment (this move
   * or an earlier one: a retry after a crash gives back what the first attempt may not have).
   */
  leftUnpaid?: (order: OrderDoc) => Promise<void>;
}) {
  const { models, now } = deps;

  const head = (orderId: string) => ledgerHead(models.OrderTransition, orderId) as Promise<OrderTransitionDoc | null>;

  /** Keeps the listing projection in step with the head (a late writer is corrected by the next). */
  async function project(order: OrderDoc): Promise<{ head: OrderTransitionDoc | null; status: OrderStatus }> {
    const h = await head(order._id);
    const status = statusOf(h);
    await models.Order.updateOne({ _id: order._id }, { $set: { status, statusAt: factsOf(h, order).since } });
    return { head: h, status };
  }

  /**
   * Appends one entry built against the real head on every attempt (a lost race rebuilds it).
   * `build` returns null to write nothing and throws to refuse; a status change the state
   * machine forbids is CONFLICT.
   */
  async function append(order: OrderDoc, build: (view: LedgerView) => Draft | null) {
    const entry = await appendToLedger(models.OrderTransition, order._id, (h) => {
      const from = statusOf(h);
      const facts = factsOf(h, order);
      const at = now();
      const d = build({ head: h, status: from, facts, at });
      if (!d) return null;
      const { to = from, facts: after = facts, reason = null, ...rest } = d;
      if (to !== from) {
        const why = refusal(from, to, d.by);
        if (why) throw new AppError('CONFLICT', why);
      }
      return {
        ...rest,
        from,
        to,
        at,
        reason,
        facts: { ...after, since: to !== from ? at : after.since, deliveredAt: to === 'DELIVERED' ? at : after.deliveredAt },
      };
    });
    if (entry) deps.kick();
    return { entry, ...(await project(order)) };
  }

  /**
   * One move of the state machine, validated against the head on every attempt, so of two racing
   * moves from one state exactly one lands. `when` (optional) must still hold at the head.
   */
  async function move(
    order: OrderDoc,
    m: Move,
    when?: (view: LedgerView) => boolean,
  ): Promise<{ moved: boolean; status: OrderStatus; refused: string | null }> {
    const why: { refused: string | null } = { refused: null };
    const r = await append(order, (view) => {
      why.refused = refusal(view.status, m.to, m.by);
      if (why.refused || (when && !when(view))) return null;
      return {
        op: 'MOVE',
        to: m.to,
        by: m.by,
        actorId: m.actorId,
        reason: m.to === 'CANCELLED' ? m.reason : null,
        ...(m.to === 'PAID' ? { paymentId: m.paymentId } : {}),
        outbox: orderMoved(order, m, view.at),
      };
    });
    if ((m.to === 'PAID' || m.to === 'CANCELLED') && r.status !== 'PENDING_PAYMENT') await deps.leftUnpaid?.(order);
    return { moved: Boolean(r.entry), status: r.status, refused: why.refused };
  }

  return { head, project, append, move };
}
export type OrderLedger = ReturnType<typeof createOrderLedger>;
