import type { EventEnvelope, EventSubject } from '@flywheel/events';
import { createKeyQueue, type Bus } from '@flywheel/service-kit';
import type { MembershipModule } from './modules';

/**
 * One durable consumer per subject (`membership_<subject>`), whatever the number of modules that
 * react to it: the handler runs every module's handler, and a failure redelivers the event to all
 * of them. Every module handler is idempotent on the event id by its own claims, so a
 * redelivery re-runs only what had not happened yet.
 *
 * Membership reacts to the order lifecycle (points, growth, coupons, RFM) and to its own
 * registrations (new-member segment, welcome benefits). It publishes `membership.member.registered`
 * through the outbox on the Member entry, and tier/segment changes on their history entries.
 */
/**
 * Events one replica works on at once, per subject. The wait is the database, not the CPU, and
 * concurrent events' inserts into one collection share a write (the kit's group commit), so more
 * in flight means fewer, larger writes when a burst comes (measured: 8 → 32 halved the backlog
 * a burst of new members' first orders builds at 100 paid events/s).
 */
const CONSUMER_CONCURRENCY = 32;

/**
 * Subjects whose module handlers touch disjoint state run them side by side (a paid order: the
 * earn ledgers, RFM's ledgers, the coupon's consumption), so the event waits for its slowest
 * module's round trips rather than for their sum. The others keep module order: a refund's
 * claw-back and its points give-back both move the points ledger, and which goes first decides
 * what a short balance can still take back.
 */
const SIDE_BY_SIDE: ReadonlySet<EventSubject> = new Set(['orders.order.paid']);

/** The member an event is about (every event membership consumes names one). */
const memberOf = (env: EventEnvelope) => (env.data as { memberId?: unknown }).memberId;

export async function registerConsumers({ bus, modules }: { bus: Bus; modules: MembershipModule[] }): Promise<void> {
  // One member's events, whatever their subject, are handled one at a time in the order they
  // arrive in this replica: its ledger heads are then the ones this replica wrote last, so the
  // appends of a hot member go to seq + 1 without reading the head first (a replica elsewhere
  // that appended meanwhile only costs a duplicate and a read). Correctness never rests on it:
  // every handler is safe against other replicas by its claims and ledgers.
  const perMember = createKeyQueue();
  const subjects = new Set<EventSubject>();
  for (const m of modules) for (const s of Object.keys(m.on ?? {}) as EventSubject[]) subjects.add(s);
  for (const subject of [...subjects].sort()) {
    const handlers = modules
      .map((m) => m.on?.[subject] as ((env: EventEnvelope) => Promise<void>) | undefined)
      .filter((h): h is (env: EventEnvelope) => Promise<void> => Boolean(h));
    // Handlers are safe against themselves as against other replicas (claims, ledgers, per-account
    // queues), so a replica works on several events at once. Side by side, every handler settles
    // before the event is acknowledged or redelivered.
    const handle = SIDE_BY_SIDE.has(subject)
      ? async (env: EventEnvelope) => {
          const failed = (await Promise.allSettled(handlers.map((h) => h(env)))).find((r) => r.status === 'rejected');
          if (failed) throw failed.reason;
        }
      : async (env: EventEnvelope) => {
          for (const h of handlers) await h(env);
        };
    await bus.consume(
      subject,
      (env) => {
        const memberId = memberOf(env as EventEnvelope);
        return typeof memberId === 'string' ? perMember.run(memberId, () => handle(env as EventEnvelope)) : handle(env as EventEnvelope);
      },
      // Every module handler is a no-op on a repeated event by its own claims, so only a
      // redelivery pays for the processed-record look-up.
      { concurrency: CONSUMER_CONCURRENCY, processedLookup: 'redelivered' },
    );
  }
}
