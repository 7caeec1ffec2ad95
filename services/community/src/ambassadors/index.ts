import { ledgerHead } from '@flywheel/service-kit';
import type { ModuleDeps } from '../main';
import type { CommunityModule } from '../modules';
import type { PostService } from '../posts/service';
import { trialHandlers } from './events';
import { createAmbassadorModels, type AmbassadorEntry } from './model';
import { ambassadorResolvers } from './resolvers';
import { createAmbassadorService, createTrialService, type AmbassadorService } from './service';

/**
 * Ambassadors (体验官): applications, approvals and revokes as a per-member ledger, the post badge,
 * the showcase owed, and trial products (a staff-sent coupon, followed to its paid order and showcase).
 */
export function createAmbassadorsModule(deps: ModuleDeps & { posts: PostService }): CommunityModule & { ambassadors: AmbassadorService } {
  const models = createAmbassadorModels(deps.db);
  const ambassadors = createAmbassadorService({ models, posts: deps.posts, now: deps.now });
  const trials = createTrialService({
    models,
    bus: deps.bus,
    headOf: (memberId) => ledgerHead(models.Entry, memberId) as Promise<AmbassadorEntry | null>,
    now: deps.now,
  });
  return { name: 'ambassadors', ambassadors, resolvers: ambassadorResolvers(ambassadors, trials), on: trialHandlers(trials) };
}
