import type { Connection } from 'mongoose';
import {
  badInput,
  decodeSeqCursor,
  ledgerHead,
  pageSize,
  requireRole,
  requireSelfOrStaff,
  seqPage,
  wholeNumber,
  type Viewer,
} from '@flywheel/service-kit';
import type { InviteBindingDoc } from '../model';
import type { CommissionEntryDoc, DistributionModels, OrderCommissionEntryDoc, OrderDecisionDoc } from './model';

const MAX_PAGE = 100;
const ORDER_ID = /^[0-9a-f]{24,64}$/;

export interface ReportDeps {
  models: DistributionModels;
  db: Connection;
}

/** What a distributor's commission ledger and team look like, and staff's report over a period. */
export function createReportService({ models, db }: ReportDeps) {
  // The core's inviter bindings (read only): a distributor's recruits are the members they invited.
  const invitees = () => db.model<InviteBindingDoc>('InviteBinding');

  /** Net sales per level: order totals booked minus what was refunded on them. */
  async function salesByLevel(distributorIds: string[]): Promise<Record<1 | 2, number>> {
    if (!distributorIds.length) return { 1: 0, 2: 0 };
    // Two plain groups (FerretDB v1 has no $cond): booked order totals, and refunds on them.
    const sumBy = (kind: 'BOOK' | 'REVERSE', field: string) =>
      models.OrderCommission.aggregate<{ _id: 1 | 2; total: number }>([
        { $match: { distributorId: { $in: distributorIds }, kind } },
        { $group: { _id: '$level', total: { $sum: field } } },
      ]);
    const [booked, refunded] = await Promise.all([sumBy('BOOK', '$orderTotal'), sumBy('REVERSE', '$refund')]);
    const out: Record<1 | 2, number> = { 1: 0, 2: 0 };
    for (const r of booked) out[r._id] += r.total;
    for (const r of refunded) out[r._id] -= r.total;
    return out;
  }

  return {
    async balances(viewer: Viewer | null, memberId: string) {
      requireSelfOrStaff(viewer, memberId);
      const head = await ledgerHead(models.CommissionEntry, memberId);
      return { memberId, pending: head?.pending ?? 0, settled: head?.settled ?? 0, withdrawn: head?.withdrawn ?? 0 };
    },

    /** Newest first, by the ledger's seq. */
    async entries(memberId: string, first: number | null | undefined, after: string | null | undefined) {
      const n = pageSize(first, MAX_PAGE);
      const before = decodeSeqCursor(after);
      const rows = await models.CommissionEntry.find({ accountId: memberId, ...(before ? { seq: { $lt: before } } : {}) })
        .sort({ seq: -1 })
        .limit(n + 1)
        .lean<CommissionEntryDoc[]>();
      return seqPage(rows, n, (e) => e);
    },

    /**
     * Level 1: the buyers ever bound to the distributor; level 2: the buyers bound to the members
     * they invited. Sales: order totals they earned commission on at that level, net of refunds.
     */
    async team(viewer: Viewer | null, memberId: string) {
      requireSelfOrStaff(viewer, memberId);
      const recruits = (await invitees().find({ inviterId: memberId }, { _id: 1 }).lean<{ _id: string }[]>()).map((r) => r._id);
      const [level1, level2, sales] = await Promise.all([
        models.BuyerBinding.distinct('accountId', { distributorId: memberId }),
        recruits.length ? models.BuyerBinding.distinct('accountId', { distributorId: { $in: recruits } }) : Promise.resolve([]),
        salesByLevel([memberId]),
      ]);
      return { level1Count: level1.length, level2Count: level2.length, level1Sales: sales[1], level2Sales: sales[2] };
    },

    /** Staff: commissions booked, settled and reversed in [from, to), per distributor, the top `top` by booked. */
    async report(viewer: Viewer | null, args: { from: Date; to: Date; top?: number | null }) {
      requireRole(viewer, 'STAFF');
      if (!(args.from < args.to)) throw badInput('from must be before to', 'from');
      const top = wholeNumber(args.top ?? 20, 'top', 1, MAX_PAGE);
      const rows = await models.OrderCommission.aggregate<{ _id: { d: string; kind: string }; amount: number }>([
        { $match: { at: { $gte: args.from, $lt: args.to } } },
        { $group: { _id: { d: '$distributorId', kind: '$kind' }, amount: { $sum: '$amount' } } },
      ]);
      // Counted in a group of their own: FerretDB v1 answered 0 for a second accumulator under a compound _id.
      const counts = await models.OrderCommission.aggregate<{ _id: string; orders: number }>([
        { $match: { at: { $gte: args.from, $lt: args.to }, kind: 'BOOK' } },
        { $group: { _id: '$distributorId', orders: { $sum: 1 } } },
      ]);
      const orders = new Map(counts.map((c) => [c._id, c.orders]));
      const by = new Map<string, { memberId: string; booked: number; settled: number; reversed: number; orders: number }>();
      for (const r of rows) {
        const t = by.get(r._id.d) ?? { memberId: r._id.d, booked: 0, settled: 0, reversed: 0, orders: 0 };
        if (r._id.kind === 'BOOK') {
          t.booked += r.amount;
          t.orders = orders.get(r._id.d) ?? 0;
        } else if (r._id.kind === 'SETTLE') t.settled += r.amount;
        else t.reversed += r.amount;
        by.set(r._id.d, t);
      }
      const all = [...by.values()];
      const sum = (k: 'booked' | 'settled' | 'reversed') => all.reduce((s, t) => s + t[k], 0);
      return {
        from: args.from,
        to: args.to,
        booked: sum('booked'),
        settled: sum('settled'),
        reversed: sum('reversed'),
        distributors: all.length,
        top: all.sort((a, b) => b.booked - a.booked || a.memberId.localeCompare(b.memberId)).slice(0, top),
      };
    },

    /** Staff: what an order earned, or why it earned nothing (null until its paid event is in). */
    async orderCommissions(viewer: Viewer | null, rawOrderId: string) {
      requireRole(viewer, 'STAFF');
      const orderId = (rawOrderId ?? '').trim().toLowerCase();
      // Orders' ids are hex digests (32 digits), ObjectIds before them.
      if (!ORDER_ID.test(orderId)) throw badInput('Not an order id', 'orderId');
      const d = await models.OrderDecision.findById(orderId).lean<OrderDecisionDoc>();
      if (!d) return null;
      const entries = await models.OrderCommission.find({ orderId }).sort({ level: 1, seq: 1 }).lean<OrderCommissionEntryDoc[]>();
      const levels = d.levels.map((l) => {
        const head = entries.filter((e) => e.level === l.level).at(-1);
        return {
          level: l.level,
          memberId: l.distributorId,
          booked: head?.booked ?? 0,
          reversed: head?.reversed ?? 0,
          settled: head?.settled ?? false,
        };
      });
      return { orderId, buyerId: d.buyerId, refusal: d.refusal ?? null, levels };
    },
  };
}

export type ReportService = ReturnType<typeof createReportService>;
