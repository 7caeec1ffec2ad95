import { holdsOf } from '../order/facts';
import { afterSaleOf, type AfterSaleRequestEntryDoc, type OrderTransitionDoc } from '../order/model';
import type { AfterSaleKind, AfterSaleStatus } from '../types';

/** An after-sale as the member and staff see it, read from the order's ledger. */
export interface AfterSaleView {
  id: string;
  orderId: string;
  memberId: string;
  kind: AfterSaleKind;
  status: AfterSaleStatus;
  lines: { skuId: string; quantity: number; amount: number }[];
  amount: number;
  reason: string;
  /** Staff's note on the latest decision that had one. */
  note: string | null;
  createdAt: Date;
  refundedAt: Date | null;
}

/** The after-sale as of the ledger entries given (oldest first); null when it was never requested. */
export function afterSaleView(entries: readonly OrderTransitionDoc[], afterSaleId: string): AfterSaleView | null {
  const req = entries.find((e): e is AfterSaleRequestEntryDoc => e.op === 'AFTER_SALE_REQUEST' && e.afterSaleId === afterSaleId);
  if (!req) return null;
  const head = entries.at(-1)!;
  const steps = entries.filter((e) => afterSaleOf(e) === afterSaleId);
  return {
    id: afterSaleId,
    orderId: req.accountId,
    memberId: req.request.memberId,
    kind: req.request.kind,
    status: holdsOf(head.facts!, afterSaleId)[0]?.status ?? 'REQUESTED',
    lines: req.request.lines.map(({ skuId, quantity, amount }) => ({ skuId, quantity, amount })),
    amount: req.request.amount,
    reason: req.request.reason,
    note: steps.flatMap((e) => ('note' in e && e.note ? [e.note] : [])).at(-1) ?? null,
    createdAt: req.at,
    refundedAt: steps.find((e) => e.op === 'REFUND')?.at ?? null,
  };
}

/** The order's after-sales, oldest first, as of its ledger entries. */
export const afterSalesOf = (entries: readonly OrderTransitionDoc[]): AfterSaleView[] =>
  entries.flatMap((e) => (e.op === 'AFTER_SALE_REQUEST' ? [afterSaleView(entries, e.afterSaleId)!] : []));

/** Integer fen refunded through after-sales so far. */
export const refundedOf = (entries: readonly OrderTransitionDoc[]): number =>
  entries.reduce((s, e) => s + (e.op === 'REFUND' ? e.refund.amount : 0), 0);
