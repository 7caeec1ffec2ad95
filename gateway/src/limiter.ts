import type { IncomingMessage } from 'node:http';
import { HeaderMap, type ApolloServerPlugin } from '@apollo/server';
import { AppError, type Logger } from '@flywheel/service-kit';
import { Kind, type DocumentNode, type FragmentDefinitionNode, type OperationDefinitionNode, type SelectionSetNode } from 'graphql';
import ipaddr from 'ipaddr.js';
import proxyAddr from 'proxy-addr';
import type { GatewayContext } from './auth';

/**
 * A token bucket per key: `perMinute` tokens, refilled continuously. Unlike a fixed window, a
 * burst at the end of one minute cannot be repeated at the start of the next. Per replica and in
 * memory: a first line against floods, not a billing-grade quota.
 */
export function createRateLimiter(perMinute: number, now: () => number = Date.now) {
  const perMs = perMinute / 60_000;
  const buckets = new Map<string, { tokens: number; at: number }>();
  let swept = now();
  const level = (key: string, t: number) => {
    const b = buckets.get(key);
    return b ? Math.min(perMinute, b.tokens + (t - b.at) * perMs) : perMinute;
  };
  return {
    /**
     * Takes `n` tokens from each key's bucket if every bucket has them, else takes nothing (a
     * refused request is not half-counted). Returns 0 when taken, else the seconds to wait.
     */
    take(demands: Iterable<readonly [key: string, n: number]>): number {
      const t = now();
      if (t - swept > 60_000) {
        // A full bucket is the same as none: forget them, so memory follows recent callers only.
        for (const key of buckets.keys()) if (level(key, t) >= perMinute) buckets.delete(key);
        swept = t;
      }
      const wanted = [...demands];
      let wait = 0;
      for (const [key, n] of wanted) {
        // More than a whole bucket never fits: the caller must ask for less, not wait.
        const missing = n > perMinute ? perMinute : n - level(key, t);
        if (missing > 0) wait = Math.max(wait, Math.max(1, Math.ceil(missing / perMs / 1000)));
      }
      if (wait) return wait;
      for (const [key, n] of wanted) buckets.set(key, { tokens: level(key, t) - n, at: t });
      return 0;
    },
  };
}

/**
 * The client's address: the socket's peer, or with `trustedHops` proxies in front (which each
 * append the address they saw to X-Forwarded-For), the address the outermost trusted proxy saw:
 * the `trustedHops`-th entry from the right. Entries further left are whatever the client sent.
 */
export function clientAddress(req: IncomingMessage, trustedHops: number): string {
  const peer = req.socket.remoteAddress ?? 'unknown';
  if (trustedHops === 0) return peer;
  // proxy-addr walks [socket, ...X-Forwarded-For from the right]; index i < hops is a trusted proxy.
  return proxyAddr(req, (_addr, i) => i < trustedHops) || peer;
}

/**
 * The key a caller is budgeted under: the member or staff account, else the client address. An
 * IPv6 client is handed a whole /64 and could rotate through it, so the /64 is the bucket.
 */
export function identityKey(viewerId: string | null, address: string): string {
  if (viewerId) return `id:${viewerId}`;
  if (!ipaddr.isValid(address)) return `ip:${address}`;
  const ip = ipaddr.process(address); // an IPv4-mapped IPv6 address is its IPv4 address
  if (ip.kind() === 'ipv4') return `ip:${ip.toString()}`;
  const parts = (ip as ipaddr.IPv6).parts.slice(0, 4).map((p) => p.toString(16));
  return `ip:${parts.join(':')}::/64`;
}

/**
 * The calls an operation makes to each of `fields` at its root, as execution runs them: one per
 * response key (an alias is one more call; fields merged under one key run once), through inline
 * fragments and each named fragment once. @skip/@include are not evaluated, so it never undercounts.
 */
export function rootCalls(document: DocumentNode, operation: OperationDefinitionNode, fields: ReadonlySet<string>): Map<string, number> {
  const fragments = new Map(
    document.definitions.filter((d): d is FragmentDefinitionNode => d.kind === Kind.FRAGMENT_DEFINITION).map((d) => [d.name.value, d]),
  );
  const keys = new Map<string, Set<string>>();
  const spread = new Set<string>();
  const walk = (set: SelectionSetNode) => {
    for (const sel of set.selections) {
      if (sel.kind === Kind.FIELD) {
        if (!fields.has(sel.name.value)) continue;
        const responseKeys = keys.get(sel.name.value) ?? new Set<string>();
        responseKeys.add(sel.alias?.value ?? sel.name.value);
        keys.set(sel.name.value, responseKeys);
      } else if (sel.kind === Kind.INLINE_FRAGMENT) walk(sel.selectionSet);
      else if (!spread.has(sel.name.value)) {
        spread.add(sel.name.value);
        const fragment = fragments.get(sel.name.value);
        if (fragment) walk(fragment.selectionSet);
      }
    }
  };
  walk(operation.selectionSet);
  return new Map([...keys].map(([field, k]) => [field, k.size]));
}

/**
 * Budgets the root fields that cost real money or guard accounts (an SMS per login code, a coupon
 * per claim) per call and per identity, however many calls share one HTTP request. Checked once
 * the operation is known and before it is planned: a refused request reaches no subgraph.
 */
export function sensitiveCallsPlugin(opts: {
  fields: readonly string[];
  perMinute: number;
  logger: Logger;
}): ApolloServerPlugin<GatewayContext> {
  const fields = new Set(opts.fields);
  const limiter = createRateLimiter(opts.perMinute);
  return {
    async serverWillStart() {
      return {
        schemaDidLoadOrUpdate({ apiSchema }) {
          const roots = [apiSchema.getQueryType(), apiSchema.getMutationType(), apiSchema.getSubscriptionType()];
          const unknown = [...fields].filter((f) => !roots.some((r) => r?.getFields()[f]));
          // A renamed mutation would silently lose its budget: say so at start.
          if (unknown.length) opts.logger.warn({ fields: unknown }, 'SENSITIVE_FIELDS names fields that are not on a root type');
        },
      };
    },
    async requestDidStart() {
      return {
        async didResolveOperation({ document, operation, contextValue }) {
          const calls = operation ? rootCalls(document, operation, fields) : new Map<string, number>();
          if (!calls.size) return;
          const wait = limiter.take([...calls].map(([field, n]) => [`${contextValue.identity}:${field}`, n] as const));
          if (!wait) return;
          throw new AppError('RATE_LIMITED', `Too many ${[...calls.keys()].join(', ')} calls; try again in ${wait} s`, {
            retryAfterSeconds: wait,
            http: { status: 429, headers: new HeaderMap([['retry-after', String(wait)]]) },
          });
        },
      };
    },
  };
}
