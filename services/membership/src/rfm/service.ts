import type { Model } from 'mongoose';
import type { EventEnvelope } from '@flywheel/events';
import {
  createKeyQueue,
  appendOnce,
  appendToLedger,
  decodeSeqCursor,
  encodeSeqCursor,
  findByIds,
  insertDoc,
  replaceById,
  isDuplicateKey,
  isObjectId,
  knownLedgerHead,
  ledgerHead,
  outboxRecord,
  pageSize,
  paginate,
  type Connection as Page,
  type OpLedgerEntry,
  type PageArgs,
} from '@flywheel/service-kit';
import type { MemberDoc } from '../model';
import type { ModuleDeps } from '../modules';
import { parseProgram } from '../program';
import { createRfmModels, type RfmEntryDoc, type RfmOrderEntryDoc, type RfmProfileDoc, type RfmSegmentEntryDoc } from './model';
import {
  DEFAULT_RFM_SETTINGS,
  recencyDays,
  RFM_SETTINGS_KEY,
  rfmSettingsSchema,
  SEGMENTS,
  segmentOf,
  type RfmSettings,
  type Segment,
} from './segments';

/** What `Member.rfm` shows: the member's metrics (ledger head) and current placement (history head). */
export interface RfmProfileView {
  memberId: string;
  segment: Segment;
  recencyDays: number | null;
  frequency: number;
  monetary: number;
  firstPaidAt: Date | null;
  lastPaidAt: Date | null;
  /** When the current segment was entered (null when the member was never placed yet). */
  segmentSince: Date | null;
  /** The history entry `segment` was read from (0: none yet): the history shown with it starts there. */
  segmentSeq: number;
}

export interface Metrics {
  frequency: number;
  monetary: number;
  firstPaidAt: Date | null;
  lastPaidAt: Date | null;
}

const MAX_PAGE = 100;

export function metricsOf(head: RfmEntryDoc | null): Metrics {
  if (!head) return { frequency: 0, monetary: 0, firstPaidAt: null, lastPaidAt: null };
  return {
    frequency: Math.max(0, head.orders - head.fullyRefunded),
    monetary: Math.max(0, head.paidFen - head.refundedFen),
    firstPaidAt: head.firstPaidAt ?? null,
    lastPaidAt: head.lastPaidAt ?? null,
  };
}

const minDate = (a: Date | null, b: Date) => (a && a.getTime() <= b.getTime() ? a : b);
const maxDate = (a: Date | null, b: Date) => (a && a.getTime() >= b.getTime() ? a : b);

/**
 * The hot path's appends: raw, first on the head this replica saw last (unread; a stale one
 * costs a duplicate and a read).
 */
const onKnownHead = <E extends OpLedgerEntry>(model: Model<E>, accountId: string) => ({
  raw: true,
  knownHead: knownLedgerHead(model, accountId),
});

/** The entry holding `op` in a short ledger (one order's), found newest first by `_id`. */
async function findOp<E extends OpLedgerEntry>(model: Model<E>, accountId: string, op: string): Promise<E | null> {
  const head = await ledgerHead(model, accountId);
  for (let seq = head?.seq ?? 0; seq >= 1; seq--) {
    const e = (await model.findById(`${accountId}:${seq}`).lean()) as E | null;
    if (e?.op === op) return e;
  }
  return null;
}

export function createRfmService(deps: ModuleDeps) {
  const models = createRfmModels(deps.db);
  const { RfmOrderEntry, RfmEntry, RfmSegmentEntry, RfmProfile } = models;
  const now = deps.now;
  // Serialises one member's events in this replica (fewer seq collisions); correctness comes from the claims.
  const queue = createKeyQueue().run;
  // Core models are created before the modules, on the same connection.
  const memberModel = () => deps.db.models.Member as Model<MemberDoc>;

  const settings = () => deps.settings.get<RfmSettings>(RFM_SETTINGS_KEY, DEFAULT_RFM_SETTINGS);

  async function updateSettings(input: Partial<Record<keyof RfmSettings, number | null | undefined>>, by: string | null) {
    const current = await settings();
    const patch = Object.fromEntries(Object.entries(input).filter(([, v]) => v !== undefined && v !== null));
    const next = parseProgram(rfmSettingsSchema, { ...current, ...patch });
    return deps.settings.set(RFM_SETTINGS_KEY, next, by);
  }

  async function registeredAtOf(memberId: string): Promise<Date | null> {
    if (!isObjectId(memberId)) return null;
    const m = await memberModel().findById(memberId, { registeredAt: 1 }).lean<Pick<MemberDoc, 'registeredAt'>>();
    return m?.registeredAt ?? null;
  }

  /** Moves the member's metrics by one order entry, once (op = the order entry's id): the new head, or null when already applied. */
  async function applyToMember(o: RfmOrderEntryDoc): Promise<RfmEntryDoc | null> {
    return appendOnce(
      RfmEntry,
      o.memberId,
      o._id,
      (head) => {
        const t = {
          orders: head?.orders ?? 0,
          fullyRefunded: head?.fullyRefunded ?? 0,
          paidFen: head?.paidFen ?? 0,
          refundedFen: head?.refundedFen ?? 0,
          firstPaidAt: head?.firstPaidAt ?? null,
          lastPaidAt: head?.lastPaidAt ?? null,
        };
        const common = { kind: o.kind, orderId: o.accountId, at: o.at };
        if (o.kind === 'PAID') {
          return {
            ...common,
            ...t,
            amount: o.paid,
            orders: t.orders + 1,
            paidFen: t.paidFen + o.paid,
            firstPaidAt: minDate(t.firstPaidAt, o.at),
            lastPaidAt: maxDate(t.lastPaidAt, o.at),
          };
        }
        return {
          ...common,
          ...t,
          amount: -o.refunded,
          refundedFen: t.refundedFen + o.refunded,
          fullyRefunded: t.fullyRefunded + (o.fullyRefunded ? 1 : 0),
        };
      },
      onKnownHead(RfmEntry, o.memberId),
    );
  }

  /** The order's PAID entry (seq 1), written once whichever delivery of the paid event gets there first. */
  async function recordPaidOrder(env: EventEnvelope<'orders.order.paid'>): Promise<RfmOrderEntryDoc> {
    const { orderId, memberId, total, paidAt } = env.data;
    const entry: RfmOrderEntryDoc = {
      _id: `${orderId}:1`,
      accountId: orderId,
      seq: 1,
      op: `paid:${orderId}`,
      kind: 'PAID',
      memberId,
      paid: total,
      refunded: 0,
      refundedTotal: 0,
      fullyRefunded: false,
      at: new Date(paidAt),
      eventId: env.id,
    };
    try {
      await insertDoc(RfmOrderEntry, entry, { raw: true });
      return entry;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const there = await RfmOrderEntry.findById(entry._id).lean<RfmOrderEntryDoc>();
      if (!there) throw err;
      return there;
    }
  }

  /** Steady state, one replica: three commands (order entry insert, metrics insert, segment head read). */
  async function onPaid(env: EventEnvelope<'orders.order.paid'>): Promise<void> {
    await queue(env.data.memberId, async () => {
      const paid = await recordPaidOrder(env);
      const metrics = await applyToMember(paid);
      await evaluate(paid.memberId, now(), metrics ? { metricsHead: metrics } : {});
    });
  }

  async function onRefunded(env: EventEnvelope<'orders.order.refunded'>): Promise<void> {
    const { orderId, refundId, amount, refundedAt } = env.data;
    await queue(env.data.memberId, async () => {
      const paid = await RfmOrderEntry.findById(`${orderId}:1`).lean<RfmOrderEntryDoc>();
      // Throwing makes the bus redeliver later, once the paid event has been recorded.
      if (!paid) throw new Error(`refund ${refundId} of order ${orderId} arrived before its payment was recorded`);
      // A paid handler interrupted between its two writes is completed here (a no-op otherwise).
      await applyToMember(paid);
      const op = `refund:${orderId}:${refundId}`;
      const refund =
        (await appendOnce(
          RfmOrderEntry,
          orderId,
          op,
          (head) => {
            const before = head?.refundedTotal ?? 0;
            const after = Math.min(paid.paid, before + Math.max(0, amount));
            return {
              kind: 'REFUND' as const,
              memberId: paid.memberId,
              paid: paid.paid,
              refunded: after - before,
              refundedTotal: after,
              fullyRefunded: before < paid.paid && after >= paid.paid,
              at: new Date(refundedAt),
              eventId: env.id,
            };
          },
          onKnownHead(RfmOrderEntry, orderId),
        )) ?? (await findOp(RfmOrderEntry, orderId, op));
      if (!refund) throw new Error(`refund ${refundId} of order ${orderId}: entry not found after a duplicate`);
      const metrics = await applyToMember(refund);
      await evaluate(paid.memberId, now(), metrics ? { metricsHead: metrics } : {});
    });
  }

  async function onRegistered(env: EventEnvelope<'membership.member.registered'>): Promise<void> {
    const { memberId, registeredAt } = env.data;
    await queue(memberId, () => evaluate(memberId, now(), { registeredAt: new Date(registeredAt) }));
  }

  /**
   * Places the member as of `at`: computes the segment from the metrics head and appends a history
   * entry (carrying `membership.segment.changed`) only when it differs from the current one. The
   * decision is made against the real history head inside the append, so concurrent evaluators
   * (two replicas, a sweep and an event) emit a change once; a decision on metrics older than the
   * head's (or on the same metrics at an earlier instant) is dropped. An evaluator that appended
   * reads the metrics again and, if they moved while it decided, decides again on the newer ones;
   * one that changed nothing cannot have misled anyone, and whoever moved the metrics evaluates
   * after doing so. `metricsHead`: the metrics entry the caller just wrote (the head then).
   */
  async function evaluate(
    memberId: string,
    at: Date,
    opts: { registeredAt?: Date | null; metricsHead?: RfmEntryDoc; refreshProfile?: boolean } = {},
  ): Promise<{ changed: number }> {
    const s = await settings();
    let changed = 0;
    let metricsHead = opts.metricsHead ?? (await ledgerHead(RfmEntry, memberId));
    // The registration date only places a member who never paid (NEW, or DORMANT after a long
    // while); a member with a paid order keeps one, so their events skip the read.
    const registeredAt =
      opts.registeredAt !== undefined ? opts.registeredAt : metricsHead?.lastPaidAt ? null : await registeredAtOf(memberId);
    for (let round = 1; ; round++) {
      const basis = metricsHead?.seq ?? 0;
      const m = metricsOf(metricsHead);
      const segment = segmentOf({ ...m, registeredAt }, s, at);
      const recency = recencyDays(m.lastPaidAt, at);
      const seen: { head: RfmSegmentEntryDoc | null } = { head: null };
      const appended = await appendToLedger(RfmSegmentEntry, memberId, (head) => {
        seen.head = head;
        if (head && (head.basis > basis || (head.basis === basis && head.at.getTime() > at.getTime()))) return null;
        if (head?.to === segment) return null;
        const seq = (head?.seq ?? 0) + 1;
        const from = head?.to ?? null;
        const facts = { recencyDays: recency, frequency: m.frequency, monetary: m.monetary };
        const data = { memberId, from, to: segment, ...facts, changedAt: at.toISOString() };
        return {
          from,
          to: segment,
          basis,
          ...facts,
          at,
          outbox: outboxRecord('membership.segment.changed', data, `rfm-segment:${memberId}:${seq}`, at),
        };
      });
      if (appended) {
        changed++;
        deps.kick();
        const latest = await ledgerHead(RfmEntry, memberId);
        if ((latest?.seq ?? 0) !== basis && round < 5) {
          metricsHead = latest;
          continue;
        }
      }
      // The read model follows placements: whoever appends the history head writes it, and the
      // sweep rewrites every one from the ledgers (what repairs one a crash left behind), so an
      // event that changed no placement leaves it alone.
      const current = appended ?? seen.head;
      if (current && (changed > 0 || opts.refreshProfile)) await writeProfile(memberId, m, basis, current, at);
      return { changed };
    }
  }

  /** Refreshes the read model unless it already reflects this (or a newer) decision. */
  async function writeProfile(memberId: string, m: Metrics, basis: number, seg: RfmSegmentEntryDoc, at: Date): Promise<void> {
    const existing = await RfmProfile.findById(memberId).lean<RfmProfileDoc>();
    if (existing && (existing.basis > basis || existing.segmentSeq > seg.seq)) return;
    if (existing && existing.basis === basis && existing.segmentSeq === seg.seq && existing.segment === seg.to) return;
    const doc: RfmProfileDoc = {
      _id: memberId,
      segment: seg.to,
      frequency: m.frequency,
      monetary: m.monetary,
      firstPaidAt: m.firstPaidAt,
      lastPaidAt: m.lastPaidAt,
      basis,
      segmentSeq: seg.seq,
      evaluatedAt: at,
    };
    await replaceById(RfmProfile, doc);
  }

  /**
   * Re-evaluates every member as of `at` (recency decays with time: IMPORTANT_VALUE becomes
   * IMPORTANT_RETAIN, anyone long inactive DORMANT). Members come from the core collection (so
   * members from before this module are placed too) and from the read model (members known only
   * from order events). A second pass at the same `at` changes nothing.
   */
  async function sweep(at: Date): Promise<{ evaluated: number; changed: number }> {
    let evaluated = 0;
    let changed = 0;
    const seen = new Set<string>();
    const members = memberModel().find({}, { registeredAt: 1 }).lean<Pick<MemberDoc, '_id' | 'registeredAt'>[]>().cursor();
    for await (const doc of members) {
      const m = doc as unknown as Pick<MemberDoc, '_id' | 'registeredAt'>;
      const id = m._id.toHexString();
      seen.add(id);
      changed += (await queue(id, () => evaluate(id, at, { registeredAt: m.registeredAt ?? null, refreshProfile: true }))).changed;
      evaluated++;
    }
    for await (const doc of RfmProfile.find({}, { _id: 1 }).lean().cursor()) {
      const id = String((doc as { _id: string })._id);
      if (seen.has(id)) continue;
      changed += (await queue(id, () => evaluate(id, at, { refreshProfile: true }))).changed;
      evaluated++;
    }
    return { evaluated, changed };
  }

  // ---- staff reads -----------------------------------------------------------------------------

  async function segmentSizes(): Promise<{ segment: Segment; count: number }[]> {
    const rows = (await RfmProfile.aggregate([{ $group: { _id: '$segment', count: { $sum: 1 } } }])) as {
      _id: string;
      count: number;
    }[];
    const counts = new Map(rows.map((r) => [r._id, r.count]));
    return SEGMENTS.map((segment) => ({ segment, count: counts.get(segment) ?? 0 }));
  }

  /** Members currently in a segment (read model), newest member first, as core Member documents. */
  async function segmentMembers(segment: Segment, args: PageArgs): Promise<Page<MemberDoc>> {
    const page = await paginate(RfmProfile, { segment }, args);
    const ids = page.edges.map((e) => e.node._id).filter((id) => isObjectId(id));
    const docs = new Map((await findByIds<MemberDoc>(memberModel(), ids)).map((d) => [d._id.toHexString(), d]));
    return {
      edges: page.edges.flatMap((e) => {
        const node = docs.get(e.node._id);
        return node ? [{ node, cursor: e.cursor }] : [];
      }),
      pageInfo: page.pageInfo,
    };
  }

  /** A member's metrics and placement from the ledgers (`_id` reads only). */
  async function profileOf(memberId: string, registeredAt: Date | null, at: Date = now()): Promise<RfmProfileView> {
    const [metricsHead, segHead] = await Promise.all([ledgerHead(RfmEntry, memberId), ledgerHead(RfmSegmentEntry, memberId)]);
    const m = metricsOf(metricsHead);
    // Never placed yet (before the first sweep): what the rules say now.
    const segment = segHead?.to ?? segmentOf({ ...m, registeredAt }, await settings(), at);
    return {
      memberId,
      segment,
      recencyDays: recencyDays(m.lastPaidAt, at),
      ...m,
      segmentSince: segHead?.at ?? null,
      segmentSeq: segHead?.seq ?? 0,
    };
  }

  /**
   * Segment changes of a member, newest first, paged by seq over `_id` reads. `fromSeq`: the head
   * the caller already read (a profile's `segmentSeq`), so a profile and its history agree even
   * while a change is being appended.
   */
  async function history(memberId: string, args: PageArgs, fromSeq?: number): Promise<Page<RfmSegmentEntryDoc>> {
    const first = pageSize(args.first, MAX_PAGE);
    const after = decodeSeqCursor(args.after);
    const top = after !== null ? after - 1 : (fromSeq ?? (await ledgerHead(RfmSegmentEntry, memberId))?.seq ?? 0);
    const seqs: number[] = [];
    for (let seq = top; seq >= 1 && seqs.length < first; seq--) seqs.push(seq);
    const docs = await findByIds<RfmSegmentEntryDoc>(
      RfmSegmentEntry,
      seqs.map((s) => `${memberId}:${s}`),
    );
    docs.sort((a, b) => b.seq - a.seq);
    const edges = docs.map((node) => ({ node, cursor: encodeSeqCursor(node.seq) }));
    const last = seqs.at(-1);
    return { edges, pageInfo: { hasNextPage: last !== undefined && last > 1, endCursor: edges.at(-1)?.cursor ?? null } };
  }

  return {
    models,
    settings,
    updateSettings,
    onPaid,
    onRefunded,
    onRegistered,
    evaluate,
    sweep,
    segmentSizes,
    segmentMembers,
    profileOf,
    history,
  };
}
export type RfmService = ReturnType<typeof createRfmService>;
