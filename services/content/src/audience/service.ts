import type { EventData } from '@flywheel/events';
import { appendToLedger, ledgerHead, replaceById } from '@flywheel/service-kit';
import type { AudienceEntry, AudienceFields, AudienceModels, MemberAudienceDoc, Segment, Tier } from './model';

// What content knows of each member's tier and RFM segment, learnt from membership's events
// (docs/concurrency.md). Each event is appended to the member's ledger only when it is newer (by
// its changedAt) than what the head holds for its dimension, and that is decided against the real
// head: a redelivered or older event appends nothing, and a tier change and a segment change
// racing each other both land (each entry merges the head it was built on). The head is copied to
// a read model by member id, which the banner read takes in one `_id` look-up.

/** A member as banners are targeted at: a member membership never reported is REGULAR, in no segment. */
export interface MemberAudience {
  tier: Tier;
  segment: Segment | null;
}

/** Copies the head this many times at most when other writers keep overtaking the copy. */
const SYNC_ATTEMPTS = 5;

/**
 * Whether a value reported at `next.at` replaces the one known since `current.at`: a later time
 * wins; at the same time the greater value, so every delivery order ends in the same state.
 */
export function supersedes(current: { value: string | null; at: Date | null }, next: { value: string; at: Date }): boolean {
  if (current.value === null || current.at === null) return true;
  const d = next.at.getTime() - new Date(current.at).getTime();
  return d > 0 || (d === 0 && next.value > current.value);
}

/** The head's fields with one dimension replaced when the event supersedes it; null when it does not. */
export function applyChange(
  head: AudienceFields | null,
  change: { tier: Tier; at: Date } | { segment: Segment; at: Date },
): AudienceFields | null {
  const known: AudienceFields = {
    tier: head?.tier ?? null,
    tierAt: head?.tierAt ?? null,
    segment: head?.segment ?? null,
    segmentAt: head?.segmentAt ?? null,
  };
  if ('tier' in change) {
    if (!supersedes({ value: known.tier, at: known.tierAt }, { value: change.tier, at: change.at })) return null;
    return { ...known, tier: change.tier, tierAt: change.at };
  }
  if (!supersedes({ value: known.segment, at: known.segmentAt }, { value: change.segment, at: change.at })) return null;
  return { ...known, segment: change.segment, segmentAt: change.at };
}

export function createAudienceService(deps: { models: AudienceModels; now: () => Date }) {
  const { models, now } = deps;
  const account = (memberId: string) => `audience:${memberId}`;

  /**
   * Copies the ledger head to the read model unless the copy is already as new. Replacing is not
   * atomic on FerretDB, so an older copy may land over a newer one: every writer re-reads after
   * its write, and the last one to write sees its copy current (or writes the head again).
   */
  async function sync(memberId: string): Promise<void> {
    for (let attempt = 0; attempt < SYNC_ATTEMPTS; attempt++) {
      const [head, copy] = await Promise.all([
        ledgerHead(models.AudienceEntry, account(memberId)),
        models.MemberAudience.findById(memberId).lean<MemberAudienceDoc>(),
      ]);
      if (!head || (copy && copy.seq >= head.seq)) return;
      await replaceById(models.MemberAudience, {
        _id: memberId,
        tier: head.tier ?? null,
        tierAt: head.tierAt ?? null,
        segment: head.segment ?? null,
        segmentAt: head.segmentAt ?? null,
        seq: head.seq,
      } satisfies MemberAudienceDoc);
    }
    // The bus retries the event: the append is then a no-op and the copy is tried again.
    throw new Error(`audience of ${memberId}: the read model kept being overtaken`);
  }

  async function learn(memberId: string, change: Parameters<typeof applyChange>[1]): Promise<void> {
    await appendToLedger(models.AudienceEntry, account(memberId), (head) => {
      const next = applyChange(head, change);
      return next && ({ ...next, at: now() } satisfies Omit<AudienceEntry, '_id' | 'accountId' | 'seq'>);
    });
    // Also after a no-op (a repeat after a crash between the append and the copy): the copy is idempotent.
    await sync(memberId);
  }

  return {
    tierChanged: (d: EventData<'membership.tier.changed'>) => learn(d.memberId, { tier: d.to, at: new Date(d.changedAt) }),
    segmentChanged: (d: EventData<'membership.segment.changed'>) => learn(d.memberId, { segment: d.to, at: new Date(d.changedAt) }),

    /** The member's tier and segment as content learnt them (one `_id` read). */
    async audienceOf(memberId: string): Promise<MemberAudience> {
      const doc = await models.MemberAudience.findById(memberId).lean<MemberAudienceDoc>();
      return { tier: doc?.tier ?? 'REGULAR', segment: doc?.segment ?? null };
    },
  };
}
export type AudienceService = ReturnType<typeof createAudienceService>;
