import type { EventEnvelope, EventSubject } from '@flywheel/events';
import type { Bus } from '@flywheel/service-kit';
import type { MembershipModule } from './modules';

/**
 * One durable consumer per subject (`membership_<subject>`), whatever the number of modules that
 * react to it: the handler runs each module's handler in turn, and a failure redelivers the event
 * to all of them. Every module handler is idempotent on the event id by its own claims, so a
 * redelivery re-runs only what had not happened yet.
 *
 * Membership reacts to the order lifecycle (points, growth, coupons, RFM) and to its own
 * registrations (new-member segment, welcome benefits). It publishes `membership.member.registered`
 * through the outbox on the Member entry, and tier/segment changes on their history entries.
 */
const CONSUMER_CONCURRENCY = 8;

export async function registerConsumers({ bus, modules }: { bus: Bus; modules: MembershipModule[] }): Promise<void> {
  const subjects = new Set<EventSubject>();
  for (const m of modules) for (const s of Object.keys(m.on ?? {}) as EventSubject[]) subjects.add(s);
  for (const subject of [...subjects].sort()) {
    const handlers = modules
      .map((m) => m.on?.[subject] as ((env: EventEnvelope) => Promise<void>) | undefined)
      .filter((h): h is (env: EventEnvelope) => Promise<void> => Boolean(h));
    // Handlers are safe against themselves as against other replicas (claims, ledgers, per-account
    // queues), so a replica works on several events at once: the wait is the database, not the CPU.
    await bus.consume(
      subject,
      async (env) => {
        for (const h of handlers) await h(env as EventEnvelope);
      },
      { concurrency: CONSUMER_CONCURRENCY },
    );
  }
}
