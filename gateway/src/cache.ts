import type { ApolloServerPlugin } from '@apollo/server';
import responseCachePlugin from '@apollo/server-plugin-response-cache';
import { InMemoryLRUCache } from '@apollo/utils.keyvaluecache';
import type { GatewayContext } from './auth';

/**
 * What a response may be reused for, and the cache that reuses it. Each subgraph says in its
 * cache-control header how long its part may be shared (the @cacheControl hints of its schema;
 * anything answered for a viewer is private there, a mutation's answer never reusable); the
 * gateway's data sources keep the shortest and most private of a plan's answers. Here that
 * policy is capped at `maxAgeSeconds`, for the header clients get and for this cache alike.
 *
 * With `enabled`, the answer to an anonymous query (no Authorization header: nobody's view but the
 * public's) whose policy is public is kept in memory, keyed by query text, operation name and
 * variables, until the policy's max-age runs out; an identical anonymous query meanwhile gets it
 * without a subgraph being asked. A request with a viewer neither reads nor fills the cache,
 * whatever the hints say. Expiry is the only invalidation: a short max-age bounds how stale a
 * shelf can look, and nothing that charges money reads through here (checkout prices come from
 * catalog's authority).
 */
export function responseCachePlugins(opts: {
  enabled: boolean;
  maxAgeSeconds: number;
  maxBytes: number;
}): ApolloServerPlugin<GatewayContext>[] {
  const cap: ApolloServerPlugin<GatewayContext> = {
    async requestDidStart() {
      return {
        async executionDidStart({ overallCachePolicy }) {
          return {
            // After the plan's fetches have restricted the policy, before the cache and the
            // header read it. Left alone when nothing set a max-age (then nothing is cacheable).
            async executionDidEnd() {
              if (overallCachePolicy.maxAge !== undefined) overallCachePolicy.restrict({ maxAge: opts.maxAgeSeconds });
            },
          };
        },
      };
    },
  };
  if (!opts.enabled) return [cap];
  const anonymous = async ({ contextValue }: { contextValue: GatewayContext }) => contextValue.viewer === null;
  const cache = responseCachePlugin<GatewayContext>({
    // The library's LRU sizes entries by the length of their JSON.
    cache: new InMemoryLRUCache({ maxSize: opts.maxBytes }),
    shouldReadFromCache: anonymous,
    shouldWriteToCache: anonymous,
    // No per-session entries: a private answer is not kept at all.
    sessionId: async () => null,
  });
  return [cap, cache];
}
