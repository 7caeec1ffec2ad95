import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { Fetcher, FetcherResponse } from '@apollo/utils.fetcher';
import { AppError, INTERNAL_TOKEN_HEADER, signInternalToken, type Logger } from '@flywheel/service-kit';
import { GraphQLError } from 'graphql';
import type { GatewayContext } from './auth';

/**
 * Every request through `fetcher` ends within `timeoutMs`, connect to last byte of the body: a
 * subgraph that accepts and never answers cannot hold a gateway request (and its socket) forever.
 */
export function boundedFetcher(fetcher: Fetcher, timeoutMs: number): Fetcher {
  return (url, init) => fetcher(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

/** Why a subgraph gave no answer, when the cause is its availability rather than the request. */
function unavailability(error: Error, response: FetcherResponse | undefined): string | null {
  if (response && (response.status >= 500 || response.status === 429)) return `http ${response.status}`;
  if (error.name === 'AbortError' || error.name === 'TimeoutError') return 'timeout';
  if (error.name === 'FetchError') {
    const { type, code } = error as Error & { type?: string; code?: string };
    if (type === 'system') return code ?? 'unreachable'; // refused, reset, DNS: nothing answered
    if (type === 'request-timeout' || type === 'body-timeout') return 'timeout';
  }
  return null;
}

/**
 * One subgraph as the gateway calls it: a fresh internal token for that subgraph on every request
 * and nothing else from the client; a subgraph that is down, failing or too slow answers its part
 * of the plan with UNAVAILABLE, so fields other subgraphs resolved still reach the client (where
 * the schema lets the missing ones be null).
 */
export class SubgraphSource extends RemoteGraphQLDataSource<GatewayContext> {
  constructor(
    private readonly subgraph: string,
    url: string,
    private readonly secret: string,
    fetcher: Fetcher,
    private readonly logger: Logger,
  ) {
    super({ url, fetcher });
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>) {
    // Query plans run with the gateway's own context for health checks; treat as anonymous.
    const viewer = 'viewer' in context ? (context.viewer ?? null) : null;
    request.http?.headers.set(INTERNAL_TOKEN_HEADER, signInternalToken(this.secret, this.subgraph, viewer));
  }

  // The default error carries the subgraph's URL and body in its extensions, and 401/403 codes
  // that would tell the client it is unauthenticated when the gateway is misconfigured.
  override async errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
    await response.text().catch(() => undefined); // drained, so the keep-alive socket is reused
    return new GraphQLError(`${this.subgraph} answered HTTP ${response.status}`);
  }

  override didEncounterError(error: Error, _request: unknown, response?: FetcherResponse): void {
    const reason = unavailability(error, response);
    // Anything else is a fault of ours (a misconfigured secret, a response that is not GraphQL):
    // the error formatter logs it and the client gets INTERNAL_SERVER_ERROR.
    if (!reason) throw error;
    // No URL, headers (the internal token) or variables (phone numbers) in the log.
    this.logger.warn({ subgraph: this.subgraph, reason }, 'subgraph unavailable');
    const message =
      reason === 'timeout'
        ? `The ${this.subgraph} service did not answer in time; try again later`
        : `The ${this.subgraph} service is unavailable; try again later`;
    throw new AppError('UNAVAILABLE', message, { serviceName: this.subgraph });
  }
}
