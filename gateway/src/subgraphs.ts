import { AsyncLocalStorage } from 'node:async_hooks';
import { RemoteGraphQLDataSource, type GraphQLDataSourceProcessOptions } from '@apollo/gateway';
import type { Fetcher, FetcherRequestInit, FetcherResponse } from '@apollo/utils.fetcher';
import { AppError, INTERNAL_TOKEN_HEADER, signInternalToken, type Logger } from '@flywheel/service-kit';
import { getOperationAST, GraphQLError, OperationTypeNode } from 'graphql';
import { request, type Dispatcher } from 'undici';
import type { GatewayContext } from './auth';

/**
 * A subgraph's answer read to the last byte. The gateway parses every subgraph body whole anyway;
 * read inside the fetcher, the timeout covers the body too, and a clone costs nothing, so requests
 * that share one fetch each parse their own copy (the query plan merges into what it parsed).
 */
class BufferedResponse implements FetcherResponse {
  bodyUsed = false;
  readonly redirected = false;
  constructor(
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    private readonly body: string,
  ) {}
  get ok() {
    return this.status >= 200 && this.status < 300;
  }
  async text() {
    this.bodyUsed = true;
    return this.body;
  }
  async json() {
    return JSON.parse(await this.text()) as unknown;
  }
  async arrayBuffer() {
    const bytes = Buffer.from(await this.text());
    return bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  }
  clone() {
    return new BufferedResponse(this.url, this.status, this.statusText, this.headers, this.body);
  }
}

/**
 * Subgraph requests over one undici dispatcher (keep-alive pool, bounded connections per origin).
 * undici's `request` rather than its `fetch`, or make-fetch-happen (Apollo's default, ~29 % of the
 * gateway's CPU): no WHATWG streams, no cache layer, for a POST whose whole body is wanted.
 */
export function keepAliveFetcher(dispatcher: Dispatcher): Fetcher {
  return async (url: string, init: FetcherRequestInit = {}) => {
    const res = await request(url, {
      dispatcher,
      method: (init.method ?? 'GET') as Dispatcher.HttpMethod,
      headers: init.headers,
      body: init.body,
      signal: init.signal as AbortSignal | undefined,
    });
    const body = await res.body.text();
    const headers = new Headers();
    for (const [name, value] of Object.entries(res.headers)) {
      for (const v of Array.isArray(value) ? value : value === undefined ? [] : [value]) headers.append(name, v);
    }
    return new BufferedResponse(url, res.statusCode, res.statusText, headers, body);
  };
}

/**
 * Every request through `fetcher` ends within `timeoutMs`, connect to last byte of the body: a
 * subgraph that accepts and never answers cannot hold a gateway request (and its socket) forever.
 */
export function boundedFetcher(fetcher: Fetcher, timeoutMs: number): Fetcher {
  return (url, init) => fetcher(url, { ...init, signal: AbortSignal.timeout(timeoutMs) });
}

// undici's codes for a subgraph that took too long (an abort: the only signal is the timeout's),
// and the system and socket errors of one that nothing answered for (refused, reset, closed
// mid-answer, no such host).
const TIMEOUT_CODES = new Set([
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_HEADERS_TIMEOUT',
  'UND_ERR_BODY_TIMEOUT',
  'UND_ERR_ABORTED',
  'ETIMEDOUT',
]);
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** Why a subgraph gave no answer, when the cause is its availability rather than the request. */
function unavailability(error: Error, response: FetcherResponse | undefined): string | null {
  if (response && (response.status >= 500 || response.status === 429)) return `http ${response.status}`;
  // The fetch API wraps the cause ("fetch failed"); undici's own request does not. Both are read.
  // Not `instanceof Error`: undici's errors and the timeout's DOMException may come from another
  // realm (a VM context, as under jest) than this module's Error.
  let e: Partial<Record<'name' | 'code' | 'cause', unknown>> | undefined = error;
  for (let depth = 0; e && typeof e === 'object' && depth < 3; e = e.cause as typeof e, depth++) {
    // The only signal on a subgraph request is the timeout's (boundedFetcher).
    if (e.name === 'AbortError' || e.name === 'TimeoutError') return 'timeout';
    if (typeof e.code !== 'string') continue;
    if (TIMEOUT_CODES.has(e.code)) return 'timeout';
    if (UNREACHABLE_CODES.has(e.code)) return e.code;
  }
  return null;
}

// Set for the duration of one subgraph request that may share a fetch: whom it is for. The
// fetcher Apollo's data source calls sees only URL and body; this carries the rest down to it.
const shareable = new AsyncLocalStorage<string>();

/**
 * Whom a subgraph request is for when an identical request in flight may answer it too; null
 * when it must be sent on its own. Only reads: the subgraph operation is a query (a mutation
 * sent twice must run twice) and so is the client's (the entity fetches after a mutation must
 * see its writes, not a read that was already under way). The internal token names the viewer,
 * so the viewer's id, roles and scopes are part of what makes two requests the same.
 */
function sharedAs(options: GraphQLDataSourceProcessOptions<GatewayContext>): string | null {
  // Health checks and schema loads have no client request behind them.
  if (!('incomingRequestContext' in options)) return null;
  if (options.incomingRequestContext.operation?.operation !== OperationTypeNode.QUERY) return null;
  // The subgraph document is there because main.ts sets exposeDocumentNodeInFetchNode.
  if (!options.document) return null;
  if (getOperationAST(options.document, options.request.operationName)?.operation !== OperationTypeNode.QUERY) return null;
  const viewer = options.context.viewer ?? null;
  return JSON.stringify(viewer ? [viewer.id, viewer.roles, viewer.scopes] : null);
}

/**
 * One subgraph as the gateway calls it: a fresh internal token for that subgraph on every request
 * and nothing else from the client; a subgraph that is down, failing or too slow answers its part
 * of the plan with UNAVAILABLE, so fields other subgraphs resolved still reach the client (where
 * the schema lets the missing ones be null). With `dedup`, a query identical to one still in
 * flight (same query text, variables and viewer) waits for that one's answer instead of being
 * sent again: a page many visitors load at once costs the subgraph one request, not one each.
 * Nothing is kept once the answer is in (caching is another matter).
 */
export class SubgraphSource extends RemoteGraphQLDataSource<GatewayContext> {
  private readonly inFlight = new Map<string, Promise<FetcherResponse>>();

  constructor(
    private readonly subgraph: string,
    url: string,
    private readonly secret: string,
    send: Fetcher,
    private readonly logger: Logger,
    private readonly dedup: boolean,
  ) {
    super({ url });
    this.fetcher = (fetchUrl, init) => this.sendOrShare(send, fetchUrl, init);
  }

  override process(options: GraphQLDataSourceProcessOptions<GatewayContext>): ReturnType<RemoteGraphQLDataSource['process']> {
    const viewer = this.dedup ? sharedAs(options) : null;
    return viewer === null ? super.process(options) : shareable.run(viewer, () => super.process(options));
  }

  private sendOrShare(send: Fetcher, url: string, init: FetcherRequestInit = {}): Promise<FetcherResponse> {
    const viewer = shareable.getStore();
    if (viewer === undefined) return send(url, init);
    // The body is the query text, operation name and variables; the other headers than the token
    // (which differs by the second it was signed) could ask for a different answer (ftv1 traces).
    const { [INTERNAL_TOKEN_HEADER]: _token, ...headers } = init.headers ?? {};
    const key = `${viewer}\n${JSON.stringify(headers)}\n${String(init.body)}`;
    let pending = this.inFlight.get(key);
    if (pending) {
      this.logger.debug({ subgraph: this.subgraph }, 'subgraph request shared with an identical one in flight');
    } else {
      pending = send(url, init).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, pending);
    }
    // Each its own copy: the body is parsed, and merged into, once per request.
    return pending.then((response) => response.clone());
  }

  override willSendRequest({ request, context }: GraphQLDataSourceProcessOptions<GatewayContext>) {
    // Query plans run with the gateway's own context for health checks; treat as anonymous.
    const viewer = 'viewer' in context ? (context.viewer ?? null) : null;
    request.http?.headers.set(INTERNAL_TOKEN_HEADER, signInternalToken(this.secret, this.subgraph, viewer));
  }

  // The default error carries the subgraph's URL and body in its extensions, and 401/403 codes
  // that would tell the client it is unauthenticated when the gateway is misconfigured.
  override async errorFromResponse(response: FetcherResponse): Promise<GraphQLError> {
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
