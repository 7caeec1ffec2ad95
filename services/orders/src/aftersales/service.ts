import {
  AppError,
  badInput,
  claimOnce,
  findByIds,
  isSelfOrStaff,
  notFound,
  paginate,
  requireRole,
  requireViewer,
  sha256,
  text,
  type Logger,
  type PageArgs,
  type Viewer,
} from '@flywheel/service-kit';
import { orderRefunded } from '../events';
import {
  AFTER_SALE_KINDS,
  AFTER_SALE_STATUSES,
  allRefunded,
  factsOf,
  fulfilled,
  holdsOf,
  planHold,
  requireInOrder,
  withStatus,
  type AfterSaleKind,
  type AfterSaleStatus,
  type HeldUnits,
} from '../order/facts';
import type { Draft, OrderLedger } from '../order/ledger';
import { mergeLines } from '../order/lines';
import {
  paymentOf,
  type AfterSaleRequestEntryDoc,
  type AfterSaleStepEntryDoc,
  type Models,
  type OrderDoc,
  type OrderTransitionDoc,
} from '../order/model';
import { PAID_STATUSES } from '../order/state';
import type { PaymentDoc, PaymentModels } from '../payments/model';
import type { PaymentProvider } from '../payments/provider';
import type { OrderFacts, StockLine } from '../types';
import type { AfterSaleDoc, AfterSaleModels } from './model';
import { afterSaleView, type AfterSaleView } from './view';

export interface RequestAfterSaleInput {
  orderId: string;
  kind: AfterSaleKind;
  lines: StockLine[];
  reason: string;
  idempotencyKey: string;
}

export interface AfterSaleDeps {
  models: Models;
  afterSaleModels: AfterSaleModels;
  paymentModels: PaymentModels;
  provider: PaymentProvider;
  ledger: OrderLedger;
  /** When the after-sales window of an order delivered at `deliveredAt` closes. */
  windowClosesAt: (deliveredAt: Date) => Date;
  now: () => Date;
  logger?: Pick<Logger, 'warn' | 'error'>;
}

type Decision = 'APPROVE' | 'REJECT' | 'RECEIVE';

/** A refund the sweeper retries when the provider did not confirm it this long after the decision. */
const REFUND_RETRY_MS = 30_000;
/** A request whose projection was not written this long after its ledger entry is finished by the sweeper. */
const PROJECTION_GRACE_MS = 30_000;
const RECOVERY_LOOKBACK_MS = 86_400_000;

const keyReused = () => new AppError('CONFLICT', 'This idempotency key was already used for a different after-sale request');

/** Money can go back: refund-only once approved, a return once the goods are back. */
const refundDue = (h: HeldUnits) => (h.kind === 'REFUND_ONLY' && h.status === 'APPROVED') || h.status === 'RETURN_RECEIVED';

/**
 * The ledger entry of a staff decision against the head's facts: null when that decision was
 * already made (a replay), a throw when the after-sale's state refuses it.
 */
function decisionDraft(facts: OrderFacts, afterSaleId: string, decision: Decision, staffId: string, note: string | null): Draft | null {
  const holds = holdsOf(facts, afterSaleId);
  if (!holds.length) throw notFound('After-sale');
  const { status, kind } = holds[0]!;
  const to = (next: AfterSaleStatus, op: AfterSaleStepEntryDoc['op']): Draft => ({
    op,
    by: 'STAFF',
    actorId: staffId,
    afterSaleId,
    note,
    facts: { ...facts, holds: withStatus(facts, afterSaleId, next) },
  });
  switch (decision) {
    case 'APPROVE':
      if (status === 'REQUESTED') return to('APPROVED', 'AFTER_SALE_APPROVE');
      if (status === 'REJECTED') throw new AppError('CONFLICT', 'This after-sale was rejected');
      return null;
    case 'REJECT':
      if (status === 'REQUESTED') return to('REJECTED', 'AFTER_SALE_REJECT');
      if (status === 'REJECTED') return null;
      throw new AppError('CONFLICT', `This after-sale was already approved (${status})`);
    case 'RECEIVE':
      if (kind !== 'RETURN_AND_REFUND') throw badInput('A refund-only after-sale has no goods to receive', 'afterSaleId');
      if (status === 'APPROVED') return to('RETURN_RECEIVED', 'RETURN_RECEIVE');
      if (status === 'REQUESTED') throw new AppError('CONFLICT', 'Approve the return before receiving the goods');
      if (status === 'REJECTED') throw new AppError('CONFLICT', 'This after-sale was rejected');
      return null;
  }
}

/** The after-sale's id: one per (member, order, idempotency key). */
export const afterSaleIdFor = (memberId: string, orderId: string, key: string) =>
  sha256(`afterSale\0${memberId}\0${orderId}\0${key}`).slice(0, 32);

/**
 * After-sales (售后). Every step is an entry of the order's ledger, built against its head:
 * - the request claims units per line (never more than remains refundable across all requests)
 *   with the amount fixed from what was paid — two requests for the last unit: one lands;
 * - approve / reject / return-received are claimed once each (the head's hold status decides);
 * - the refund: the provider returns the money (idempotent per refund id), then one entry records
 *   it with `orders.order.refunded` in the same insert, moving the order to REFUNDED when it
 *   returns the last paid unit.
 * The AfterSale document is a projection for staff lists; nothing decides from it.
 */
export function createAfterSales(deps: AfterSaleDeps) {
  const { models, ledger, now } = deps;
  const { AfterSale } = deps.afterSaleModels;

  const entriesOf = (orderId: string) => models.OrderTransition.find({ accountId: orderId }).sort({ seq: 1 }).lean<OrderTransitionDoc[]>();
  const requestEntry = (orderId: string, afterSaleId: string) =>
    models.OrderTransition.findOne({ accountId: orderId, op: 'AFTER_SALE_REQUEST', afterSaleId }).lean<AfterSaleRequestEntryDoc>();

  /** Keeps the projection's status in step with the ledger (a late writer is corrected by the next). */
  async function project(order: OrderDoc, afterSaleId: string): Promise<void> {
    const status = holdsOf(factsOf(await ledger.head(order._id), order), afterSaleId)[0]?.status;
    if (status) await AfterSale.updateOne({ _id: afterSaleId }, { $set: { status, statusAt: now() } });
  }

  /** Writes the projection of a request that is in the ledger (by the request, a replay or the sweeper). */
  async function materialize(order: OrderDoc, req: AfterSaleRequestEntryDoc): Promise<void> {
    await claimOnce(AfterSale, {
      _id: req.afterSaleId,
      orderId: order._id,
      memberId: req.request.memberId,
      kind: req.request.kind,
      amount: req.request.amount,
      createdAt: req.at,
      status: 'REQUESTED',
      statusAt: req.at,
    });
    await project(order, req.afterSaleId);
  }

  async function current(order: OrderDoc, afterSaleId: string): Promise<AfterSaleView> {
    return afterSaleView(await entriesOf(order._id), afterSaleId)!;
  }

  /** The provider's transaction that paid the order: refunds go back through it. */
  async function paidTxn(orderId: string): Promise<string> {
    const paid = await models.OrderTransition.findOne({
      accountId: orderId,
      from: 'PENDING_PAYMENT',
      to: 'PAID',
    }).lean<OrderTransitionDoc>();
    const paymentId = paid ? paymentOf(paid) : null;
    const payment = paymentId ? await deps.paymentModels.Payment.findById(paymentId).lean<PaymentDoc>() : null;
    if (!payment) throw new Error(`order ${orderId}: no payment to refund through`);
    return payment.providerTxnId;
  }

  /**
   * Returns the money of an after-sale that is due (approved refund-only, or goods received),
   * then records it. Safe to run again and concurrently: the provider refunds once per refund id
   * and the ledger records the refund once.
   */
  async function refund(order: OrderDoc, afterSaleId: string): Promise<boolean> {
    const holds = holdsOf(factsOf(await ledger.head(order._id), order), afterSaleId);
    if (!holds.length || !refundDue(holds[0]!)) return false;
    const amount = holds.reduce((s, h) => s + h.amount, 0);
    const refundId = `aftersale:${afterSaleId}`;
    const providerRefundId =
      amount > 0 ? (await deps.provider.refund({ providerTxnId: await paidTxn(order._id), amount, refundId })).providerRefundId : null;
    const r = await ledger.append(order, ({ status, facts, at }): Draft | null => {
      const held = holdsOf(facts, afterSaleId);
      if (!held.length || !refundDue(held[0]!)) return null;
      const after = { ...facts, holds: withStatus(facts, afterSaleId, 'REFUNDED') };
      // Goods that came back, and refund-only units that never left, go back on sale.
      const restock = held
        .map((h) => ({ skuId: h.skuId, quantity: h.kind === 'RETURN_AND_REFUND' ? h.quantity : h.unshipped }))
        .filter((l) => l.quantity > 0);
      return {
        op: 'REFUND',
        to: allRefunded(order, after) ? 'REFUNDED' : status === 'PARTIALLY_SHIPPED' && fulfilled(order, after) ? 'SHIPPED' : status,
        by: 'SYSTEM',
        actorId: null,
        afterSaleId,
        refund: { refundId, providerRefundId, amount, restock },
        facts: after,
        outbox: orderRefunded(order, { refundId, amount, restock }, at),
      };
    });
    await project(order, afterSaleId);
    return Boolean(r.entry);
  }

  /** Tries the refund now; when the provider fails, the sweeper retries it. */
  async function refundSoon(order: OrderDoc, afterSaleId: string): Promise<void> {
    try {
      await refund(order, afterSaleId);
    } catch (err) {
      deps.logger?.warn({ err, afterSaleId, orderId: order._id }, 'after-sale refund failed; the sweeper retries');
    }
  }

  /** Staff's decisions, each claimed once against the head; repeating the decision made answers the after-sale. */
  async function decide(viewer: Viewer | null, afterSaleId: string, decision: Decision, note: string | null): Promise<AfterSaleView> {
    const staff = requireRole(viewer, 'STAFF');
    const doc = await AfterSale.findById(afterSaleId).lean<AfterSaleDoc>();
    const order = doc && (await models.Order.findById(doc.orderId).lean<OrderDoc>());
    if (!doc || !order) throw notFound('After-sale');
    const r = await ledger.append(order, ({ facts }) => decisionDraft(facts, afterSaleId, decision, staff.id, note));
    // Projected first: the refund sweeper finds decided after-sales by their projection.
    await project(order, afterSaleId);
    // Only the decision that landed moves money now; a replay of an unfinished one is the sweeper's.
    if (r.entry && (decision === 'RECEIVE' || (decision === 'APPROVE' && doc.kind === 'REFUND_ONLY'))) {
      await refundSoon(order, afterSaleId);
    }
    return current(order, afterSaleId);
  }

  return {
    /** The member asks for money (and maybe to send goods) back; a replay answers the first request. */
    async request(viewer: Viewer | null, input: RequestAfterSaleInput): Promise<AfterSaleView> {
      const memberId = requireRole(viewer, 'CUSTOMER').id;
      const key = text(input.idempotencyKey, 'idempotencyKey', 128);
      if (!AFTER_SALE_KINDS.includes(input.kind)) throw badInput(`Unknown after-sale kind ${input.kind}`, 'kind');
      const lines = mergeLines(input.lines ?? []);
      const reason = text(input.reason, 'reason', 500);
      const order = await models.Order.findById(input.orderId).lean<OrderDoc>();
      if (!order || order.memberId !== memberId) throw notFound('Order');
      const afterSaleId = afterSaleIdFor(memberId, order._id, key);
      const requestHash = sha256(JSON.stringify({ kind: input.kind, lines, reason }));

      const replayed = async (req: AfterSaleRequestEntryDoc) => {
        if (req.request.requestHash !== requestHash) throw keyReused();
        await materialize(order, req);
        return current(order, afterSaleId);
      };
      const earlier = await requestEntry(order._id, afterSaleId);
      if (earlier) return replayed(earlier);

      requireInOrder(order, lines);
      const r = await ledger.append(order, ({ status, facts, at }): Draft | null => {
        // A racing replay of this request landed first.
        if (holdsOf(facts, afterSaleId).length) return null;
        if (!PAID_STATUSES.includes(status)) {
          throw new AppError(
            'CONFLICT',
            status === 'REFUNDED' ? 'Everything paid for this order has been refunded' : `An order that is ${status} has nothing to refund`,
          );
        }
        if (status === 'COMPLETED' && !facts.deliveredAt) throw new AppError('CONFLICT', 'The after-sales window of this order has closed');
        if (facts.deliveredAt && at > deps.windowClosesAt(facts.deliveredAt)) {
          throw new AppError(
            'CONFLICT',
            `The after-sales window of this order closed at ${deps.windowClosesAt(facts.deliveredAt).toISOString()}`,
          );
        }
        const holds = planHold(order, facts, afterSaleId, input.kind, lines);
        return {
          op: 'AFTER_SALE_REQUEST',
          by: 'MEMBER',
          actorId: memberId,
          afterSaleId,
          request: {
            memberId,
            kind: input.kind,
            reason,
            requestHash,
            lines: holds.map(({ skuId, quantity, unshipped, amount }) => ({ skuId, quantity, unshipped, amount })),
            amount: holds.reduce((s, h) => s + h.amount, 0),
          },
          facts: { ...facts, holds: [...facts.holds, ...holds] },
        };
      });
      // Ours, or (a racing replay's) found by its id: either way the request is in the ledger now.
      const written = r.entry?.op === 'AFTER_SALE_REQUEST' ? r.entry : await requestEntry(order._id, afterSaleId);
      if (!written) throw new Error(`after-sale ${afterSaleId}: request neither written nor found`);
      return replayed(written);
    },

    /**
     * The system returns everything paid for an order (a group buy that failed): one REFUND_ONLY
     * after-sale of every line, approved in the same ledger entry, then the refund. `cause` names it
     * (the after-sale's id derives from it), so a redelivery lands on the same after-sale and the
     * provider refunds once; an order never paid, or already refunded, is left alone (false).
     */
    async refundWhole(order: OrderDoc, cause: string, reason: string): Promise<boolean> {
      const afterSaleId = afterSaleIdFor(order.memberId, order._id, `system:${cause}`);
      const lines = mergeLines(order.lines.map(({ skuId, quantity }) => ({ skuId, quantity })));
      await ledger.append(order, ({ status, facts }): Draft | null => {
        if (holdsOf(facts, afterSaleId).length || !PAID_STATUSES.includes(status)) return null;
        const holds = planHold(order, facts, afterSaleId, 'REFUND_ONLY', lines).map((h) => ({ ...h, status: 'APPROVED' as const }));
        return {
          op: 'AFTER_SALE_REQUEST',
          by: 'SYSTEM',
          actorId: null,
          afterSaleId,
          request: {
            memberId: order.memberId,
            kind: 'REFUND_ONLY',
            reason,
            requestHash: sha256(JSON.stringify({ cause })),
            lines: holds.map(({ skuId, quantity, unshipped, amount }) => ({ skuId, quantity, unshipped, amount })),
            amount: holds.reduce((sum, h) => sum + h.amount, 0),
          },
          facts: { ...facts, holds: [...facts.holds, ...holds] },
        };
      });
      const req = await requestEntry(order._id, afterSaleId);
      if (!req) return false;
      await materialize(order, req);
      return refund(order, afterSaleId);
    },

    approve: (viewer: Viewer | null, input: { afterSaleId: string; note?: string | null }) =>
      decide(viewer, input.afterSaleId, 'APPROVE', input.note == null ? null : text(input.note, 'note', 500)),
    reject: (viewer: Viewer | null, input: { afterSaleId: string; note: string }) =>
      decide(viewer, input.afterSaleId, 'REJECT', text(input.note, 'note', 500)),
    receiveReturn: (viewer: Viewer | null, input: { afterSaleId: string }) => decide(viewer, input.afterSaleId, 'RECEIVE', null),

    /** The member's own or, for staff, any; another member's is NOT_FOUND. */
    async find(viewer: Viewer | null, afterSaleId: string): Promise<AfterSaleDoc> {
      requireViewer(viewer);
      const doc = await AfterSale.findById(afterSaleId).lean<AfterSaleDoc>();
      if (!doc || !isSelfOrStaff(viewer, doc.memberId)) throw notFound('After-sale');
      return doc;
    },

    /** Staff only, newest first; `status` filters on the projection. */
    list(viewer: Viewer | null, args: PageArgs & { status?: AfterSaleStatus | null }) {
      requireRole(viewer, 'STAFF');
      if (args.status && !AFTER_SALE_STATUSES.includes(args.status)) throw badInput(`Unknown status ${args.status}`, 'status');
      return paginate(AfterSale, args.status ? { status: args.status } : {}, args, { by: 'createdAt' });
    },

    /**
     * The after-sales sweeper: finishes requests whose projection was never written (a crash
     * right after the ledger entry) and retries refunds the provider has not confirmed.
     */
    async sweep(at: Date = now()): Promise<{ recovered: number; refunded: number }> {
      const tally = { recovered: 0, refunded: 0 };
      const requests = await models.OrderTransition.find({
        op: 'AFTER_SALE_REQUEST',
        at: { $gte: new Date(at.getTime() - RECOVERY_LOOKBACK_MS), $lte: new Date(at.getTime() - PROJECTION_GRACE_MS) },
      })
        .sort({ at: 1 })
        .limit(500)
        .lean<AfterSaleRequestEntryDoc[]>();
      const known = new Set(
        (
          await findByIds<{ _id: string }>(
            AfterSale,
            requests.map((r) => r.afterSaleId),
            { _id: 1 },
          )
        ).map((d) => d._id),
      );
      for (const req of requests.filter((r) => !known.has(r.afterSaleId))) {
        const order = await models.Order.findById(req.accountId).lean<OrderDoc>();
        if (!order) continue;
        try {
          await materialize(order, req);
          tally.recovered++;
        } catch (err) {
          deps.logger?.warn({ err, afterSaleId: req.afterSaleId }, 'after-sale projection failed; will retry');
        }
      }
      const due = await AfterSale.find({
        $or: [{ status: 'APPROVED', kind: 'REFUND_ONLY' }, { status: 'RETURN_RECEIVED' }],
        statusAt: { $lte: new Date(at.getTime() - REFUND_RETRY_MS) },
      })
        .sort({ statusAt: 1 })
        .limit(100)
        .lean<AfterSaleDoc[]>();
      for (const doc of due) {
        const order = await models.Order.findById(doc.orderId).lean<OrderDoc>();
        if (!order) continue;
        try {
          if (await refund(order, doc._id)) tally.refunded++;
        } catch (err) {
          deps.logger?.warn({ err, afterSaleId: doc._id }, 'after-sale refund retry failed; will retry');
        }
      }
      return tally;
    },
  };
}
export type AfterSales = ReturnType<typeof createAfterSales>;
