import { DateTime, Long } from '@flywheel/service-kit';
import type { Resolvers } from '../__generated__/resolvers';
import type { ReportService } from './reports';
import type { DistributorService } from './service';
import type { WithdrawalService } from './withdrawals';

export interface DistributorStatusShape {
  memberId: string;
  status: 'APPLIED' | 'APPROVED' | 'REVOKED' | null;
  active: boolean;
  since: Date | null;
  reason: string | null;
}
export interface CommissionsShape {
  memberId: string;
  pending: number;
  settled: number;
  withdrawn: number;
}
export interface TotalsShape {
  memberId: string;
  booked: number;
  settled: number;
  reversed: number;
  orders: number;
}
export interface OrderLevelShape {
  level: number;
  memberId: string;
  booked: number;
  reversed: number;
  settled: boolean;
}
export interface OrderCommissionsShape {
  orderId: string;
  buyerId: string;
  refusal: 'SELF_REFERRAL' | 'NOT_REFERRED' | 'NOT_A_DISTRIBUTOR' | 'ZERO_COMMISSION' | null;
  levels: OrderLevelShape[];
}

export function distributionResolvers(s: {
  distributors: DistributorService;
  withdrawals: WithdrawalService;
  reports: ReportService;
}): Resolvers {
  const { distributors, withdrawals, reports } = s;
  return {
    DateTime,
    Long,
    Query: {
      distributionSettings: (_, __, { viewer }) => distributors.readSettings(viewer),
      distributionReport: (_, args, { viewer }) => reports.report(viewer, args),
      orderCommissions: (_, { orderId }, { viewer }) => reports.orderCommissions(viewer, orderId),
      withdrawal: (_, { id }, { viewer }) => withdrawals.read(viewer, id),
    },
    Mutation: {
      setDistributionSettings: (_, { input }, { viewer }) => distributors.setSettings(viewer, input),
      applyForDistributor: (_, __, { viewer }) => distributors.apply(viewer),
      approveDistributor: (_, { memberId }, { viewer }) => distributors.approve(viewer, memberId),
      revokeDistributor: (_, { memberId, reason }, { viewer }) => distributors.revoke(viewer, memberId, reason),
      bindDistributor: (_, { code }, { viewer }) => distributors.bindDistributor(viewer, code),
      requestWithdrawal: (_, { input }, { viewer }) => withdrawals.request(viewer, input),
      approveWithdrawal: (_, { id }, { viewer }) => withdrawals.approve(viewer, id),
      rejectWithdrawal: (_, { id, reason }, { viewer }) => withdrawals.reject(viewer, id, reason),
    },
    DistributorStatus: {
      member: (d) => ({ id: d.memberId }),
    },
    DistributorBinding: {
      outcome: (b) => b.status,
      distributor: (b) => ({ id: b.binding.distributorId }),
      boundAt: (b) => b.binding.boundAt,
      expiresAt: (b) => b.binding.expiresAt,
    },
    Commissions: {
      entries: (c, { first, after }) => reports.entries(c.memberId, first, after),
    },
    Withdrawal: {
      member: (w) => ({ id: w.memberId }),
    },
    DistributorCommissionTotals: {
      member: (t) => ({ id: t.memberId }),
    },
    OrderCommissionLevel: {
      member: (l) => ({ id: l.memberId }),
    },
    OrderCommissions: {
      buyer: (o) => ({ id: o.buyerId }),
    },
    Member: {
      distributor: (m, _, { viewer }) => distributors.statusOf(viewer, m.id),
      commissions: (m, _, { viewer }) => reports.balances(viewer, m.id),
      distributorTeam: (m, _, { viewer }) => reports.team(viewer, m.id),
    },
  };
}
