import type { ModuleDeps } from '../main';
import type { CommunityModule } from '../modules';
import type { PostService } from '../posts/service';
import { createAmbassadorModels } from './model';
import { ambassadorResolvers } from './resolvers';
import { createAmbassadorService, type AmbassadorService } from './service';

/** Ambassadors (体验官): applications, approvals and revokes as a per-member ledger, the post badge, the showcase owed. */
export function createAmbassadorsModule(deps: ModuleDeps & { posts: PostService }): CommunityModule & { ambassadors: AmbassadorService } {
  const models = createAmbassadorModels(deps.db);
  const ambassadors = createAmbassadorService({ models, posts: deps.posts, now: deps.now });
  return { name: 'ambassadors', ambassadors, resolvers: ambassadorResolvers(ambassadors) };
}
