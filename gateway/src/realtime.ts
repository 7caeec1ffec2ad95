import type { IncomingMessage, Server } from 'node:http';
import {
  getOperationAST,
  getVariableValues,
  GraphQLError,
  Kind,
  OperationTypeNode,
  parse,
  print,
  specifiedRules,
  validate,
  type DocumentNode,
  type ExecutionArgs,
  type ExecutionResult,
  type FieldNode,
  type FormattedExecutionResult,
  type GraphQLSchema,
  type OperationDefinitionNode,
  type ParseOptions,
  type ValidationRule,
} from 'graphql';
import { useServer } from 'graphql-ws/use/ws';
import { WebSocketServer, type WebSocket } from 'ws';
import type { ApolloServerPlugin } from '@apollo/server';
import type { Logger, Viewer } from '@flywheel/service-kit';
import type { GatewayContext } from './auth';
import { EVENT_VARIABLE, type FeedHub, type FeedQuery } from './feed-hub';

/**
 * The subscription root fields the gateway serves, each read event by event through a query root
 * field of the same subgraph (`<event field>(…same arguments, id: <event id>)`), so its selection —
 * fields of any subgraph — is planned like any query. `room` names the argument that picks the feed.
 */
const FEEDS: Record<string, { eventField: string; room: string; enter: string }> = {
  liveRoomFeed: {
    eventField: 'liveFeedEvent',
    room: 'roomId',
    // Subscribing enters the room: NOT_FOUND for an unknown room, and counted once as a viewer.
    enter: 'mutation FeedEnter($roomId: ID!) { enterLiveRoom(roomId: $roomId) { id } }',
  },
};

export interface RealtimeLimits {
  /** Subscriptions open at once on one WebSocket. */
  perConnection: number;
  /** WebSockets open at once per identity (member, staff or client address) on this replica. */
  perIdentity: number;
  /** Bytes waiting to be written to one socket before it is dropped (a client that does not read). */
  bufferedBytes: number;
  /** Largest message a client may send, bytes. */
  maxPayload: number;
  /** Feed frames for one socket are written together at most this often (ms); 0: each at once. */
  flushMs: number;
}

type ConnectionExtra = {
  viewer?: Viewer | null;
  identity?: string;
  subscriptions?: number;
};

const error = (code: string, message: string) => new GraphQLError(message, { extensions: { code } });

/**
 * Apollo Gateway executes queries and mutations only: a subscription sent over HTTP is refused
 * with a 400 that says where subscriptions are served, before anything is planned.
 */
export function httpSubscriptionsRefused(): ApolloServerPlugin<GatewayContext> {
  return {
    async requestDidStart() {
      return {
        async didResolveOperation({ operation }) {
          if (operation?.operation === OperationTypeNode.SUBSCRIPTION) {
            throw new GraphQLError('Subscriptions are served over WebSocket (graphql-ws) at this same path, not over HTTP', {
              extensions: { code: 'BAD_USER_INPUT', http: { status: 400 } },
            });
          }
        },
      };
    },
  };
}

/**
 * GraphQL subscriptions over WebSocket (graphql-ws, the protocol of Apollo Client and urql) on the
 * gateway's HTTP server, path /graphql. Authenticated once per connection from
 * `connectionParams.authorization`; each subscription is parsed, limited and validated like an
 * HTTP request against the API schema, then fed by the hub (NATS) — any replica serves any viewer.
 */
export function attachRealtime(deps: {
  server: Server;
  hub: FeedHub | null;
  logger: Logger;
  limits: RealtimeLimits;
  parseOptions: ParseOptions;
  validationRules: ValidationRule[];
  apiSchema: () => GraphQLSchema | null;
  /** Verifies `Bearer <token>`; null for none; throws UNAUTHENTICATED for a bad one. */
  authenticate(header: string | undefined): Viewer | null;
  /** The per-identity key of a connection, and whether its rate budget allows one more call (false: refused). */
  identity(req: IncomingMessage, viewer: Viewer | null): string;
  allow(identity: string): boolean;
  execute(query: string, variables: Record<string, unknown>, viewer: Viewer | null): Promise<FormattedExecutionResult>;
}) {
  const wss = new WebSocketServer({ server: deps.server, path: '/graphql', maxPayload: deps.limits.maxPayload });
  const frames = frameBatcher(deps.limits.flushMs);
  const openPerIdentity = new Map<string, number>();

  const server = useServer<Record<string, unknown>, ConnectionExtra>(
    {
      connectionInitWaitTimeout: 5_000,
      onConnect: (ctx) => {
        const raw = ctx.connectionParams?.authorization ?? ctx.connectionParams?.Authorization;
        let viewer: Viewer | null;
        try {
          viewer = deps.authenticate(typeof raw === 'string' ? raw : undefined);
        } catch {
          return false; // 4403 Forbidden: a token was sent and is not valid
        }
        const identity = deps.identity(ctx.extra.request, viewer);
        const open = openPerIdentity.get(identity) ?? 0;
        if (open >= deps.limits.perIdentity) {
          ctx.extra.socket.close(4429, 'Too many connections');
          return false;
        }
        openPerIdentity.set(identity, open + 1);
        Object.assign(ctx.extra, { viewer, identity, subscriptions: 0 });
        return true;
      },
      onClose: (ctx) => {
        const identity = ctx.extra.identity;
        if (!identity) return;
        const open = (openPerIdentity.get(identity) ?? 1) - 1;
        if (open > 0) openPerIdentity.set(identity, open);
        else openPerIdentity.delete(identity);
      },
      onSubscribe: async (ctx, id, payload) => {
        const extra = ctx.extra;
        if (!deps.allow(extra.identity ?? '')) return [error('RATE_LIMITED', 'Too many requests; slow down')];
        const schema = deps.apiSchema();
        if (!deps.hub || !schema) return [error('UNAVAILABLE', 'Subscriptions are unavailable right now; try again shortly')];
        let document: DocumentNode;
        try {
          document = parse(payload.query, deps.parseOptions);
        } catch (err) {
          return [err instanceof GraphQLError ? err : error('GRAPHQL_PARSE_FAILED', 'Invalid document')];
        }
        const invalid = validate(schema, document, [...specifiedRules, ...deps.validationRules]);
        if (invalid.length > 0) return invalid;
        const operation = getOperationAST(document, payload.operationName);
        if (!operation) return [error('BAD_USER_INPUT', 'Name the operation to run')];
        if (operation.operation !== 'subscription') {
          return [error('BAD_USER_INPUT', 'Only subscriptions are served over WebSocket; send queries and mutations over HTTP')];
        }
        const fields = operation.selectionSet.selections;
        const field = fields[0];
        if (fields.length !== 1 || field?.kind !== Kind.FIELD || !FEEDS[field.name.value]) {
          return [error('BAD_USER_INPUT', `Subscribe to one of: ${Object.keys(FEEDS).join(', ')}`)];
        }
        const feed = FEEDS[field.name.value]!;
        if (!extra.viewer)
          return [error('UNAUTHENTICATED', 'Sign in to subscribe: connectionParams { authorization: "Bearer <access token>" }')];
        if ((extra.subscriptions ?? 0) >= deps.limits.perConnection) {
          return [error('RATE_LIMITED', `At most ${deps.limits.perConnection} subscriptions on one connection`)];
        }
        const coerced = getVariableValues(schema, operation.variableDefinitions ?? [], payload.variables ?? {});
        if (coerced.errors) return coerced.errors;
        const variables = coerced.coerced;
        const roomId = argumentValue(field, feed.room, variables);
        if (typeof roomId !== 'string') return [error('BAD_USER_INPUT', `${feed.room} is required`)];
        if (operation.variableDefinitions?.some((v) => v.variable.name.value === EVENT_VARIABLE)) {
          return [error('BAD_USER_INPUT', `$${EVENT_VARIABLE} is reserved`)];
        }
        const entered = await deps.execute(feed.enter, { roomId }, extra.viewer);
        if (entered.errors?.length) {
          return entered.errors.map((e) => new GraphQLError(e.message, { extensions: e.extensions }));
        }
        extra.subscriptions = (extra.subscriptions ?? 0) + 1;
        const query = eventQuery(document, operation, field, feed.eventField);
        const feedQuery: FeedQuery = {
          key: `${query}\n${JSON.stringify(variables)}`,
          query,
          variables,
          responseKey: field.alias?.value ?? field.name.value,
        };
        const args: ExecutionArgs = { schema, document, variableValues: variables, contextValue: { roomId, feedQuery, extra, id } };
        return args;
      },
      subscribe: (args) => {
        const { roomId, feedQuery, extra, id } = args.contextValue as {
          roomId: string;
          feedQuery: FeedQuery;
          extra: ConnectionExtra;
          id: string;
        };
        const socket = (extra as unknown as { socket: WebSocket }).socket;
        // The hot path: the hub serialises each result once per group; here it only gets this
        // subscription's id around it and goes straight to the socket (the graphql-ws `next`
        // frame). graphql-ws still runs the protocol (init, subscribe, complete, ping) and ends
        // the subscription through the iterator, which itself never yields.
        const prefix = `{"id":${JSON.stringify(id)},"type":"next","payload":`;
        const open = idleIterator(() => {
          leave();
          extra.subscriptions = Math.max(0, (extra.subscriptions ?? 1) - 1);
        });
        const leave = deps.hub!.subscribe(roomId, {
          query: feedQuery,
          push: (json) => {
            if (socket.readyState !== socket.OPEN) return;
            if (socket.bufferedAmount > deps.limits.bufferedBytes) {
              // This client does not read: drop it rather than hold its backlog in memory.
              deps.logger.warn({ roomId }, 'feed subscriber too slow; closing');
              socket.close(4408, 'Too slow: events were not read');
              return;
            }
            frames.add(socket, prefix + json + '}');
          },
        });
        return open as unknown as AsyncGenerator<ExecutionResult>;
      },
    },
    wss,
  );

  return {
    /** Open WebSocket connections on this replica. */
    connections: () => wss.clients.size,
    async close(): Promise<void> {
      frames.flush();
      await server.dispose();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** The value of a field argument, from a literal or a variable. */
function argumentValue(field: FieldNode, name: string, variables: Record<string, unknown>): unknown {
  const arg = field.arguments?.find((a) => a.name.value === name);
  if (!arg) return undefined;
  if (arg.value.kind === Kind.VARIABLE) return variables[arg.value.name.value];
  if (arg.value.kind === Kind.STRING) return arg.value.value;
  return undefined;
}

/**
 * `subscription S($roomId: ID!) { feed: liveRoomFeed(roomId: $roomId) { …selection } }` becomes
 * `query S($roomId: ID!, $flywheelFeedEvent: ID!) { feed: liveFeedEvent(roomId: $roomId, id: $flywheelFeedEvent) { …selection } }`,
 * fragments kept: what the gateway runs for each event.
 */
export function eventQuery(document: DocumentNode, operation: OperationDefinitionNode, field: FieldNode, eventField: string): string {
  const variable = { kind: Kind.VARIABLE, name: { kind: Kind.NAME, value: EVENT_VARIABLE } } as const;
  const rewritten: OperationDefinitionNode = {
    ...operation,
    operation: OperationTypeNode.QUERY,
    variableDefinitions: [
      ...(operation.variableDefinitions ?? []),
      {
        kind: Kind.VARIABLE_DEFINITION,
        variable,
        type: { kind: Kind.NON_NULL_TYPE, type: { kind: Kind.NAMED_TYPE, name: { kind: Kind.NAME, value: 'ID' } } },
      },
    ],
    selectionSet: {
      kind: Kind.SELECTION_SET,
      selections: [
        {
          ...field,
          alias: { kind: Kind.NAME, value: field.alias?.value ?? field.name.value },
          name: { kind: Kind.NAME, value: eventField },
          arguments: [...(field.arguments ?? []), { kind: Kind.ARGUMENT, name: { kind: Kind.NAME, value: 'id' }, value: variable }],
        },
      ],
    },
  };
  const fragments = document.definitions.filter((d) => d.kind === Kind.FRAGMENT_DEFINITION);
  return print({ kind: Kind.DOCUMENT, definitions: [rewritten, ...fragments] });
}

/** An async iterator that yields nothing and ends when its consumer returns; `onEnd` runs once then. */
export function idleIterator(onEnd: () => void): AsyncIterableIterator<never> {
  let ended = false;
  let wake: ((r: IteratorResult<never>) => void) | null = null;
  const done = { value: undefined, done: true } as const;
  return {
    next: () => (ended ? Promise.resolve(done) : new Promise((resolve) => (wake = resolve))),
    return: () => {
      if (!ended) {
        ended = true;
        wake?.(done);
        onEnd();
      }
      return Promise.resolve(done);
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

/**
 * Writes feed frames in batches: the frames due to one socket within `flushMs` go out in one write
 * (the socket is corked around them), so a busy room costs a system call per viewer per interval
 * rather than per event — on a loaded gateway the write itself is most of a delivery's cost. Each
 * socket's frames keep their order; a frame waits at most `flushMs`.
 */
export function frameBatcher(flushMs: number) {
  const pending = new Map<WebSocket, string[]>();
  let timer: NodeJS.Timeout | null = null;
  const flush = () => {
    timer = null;
    for (const [socket, list] of pending) {
      if (socket.readyState !== socket.OPEN) continue;
      // ws keeps its net.Socket private; corking it merges the frames' writes into one.
      const raw = (socket as unknown as { _socket?: { cork(): void; uncork(): void } })._socket;
      raw?.cork();
      for (const frame of list) socket.send(frame);
      raw?.uncork();
    }
    pending.clear();
  };
  return {
    add(socket: WebSocket, frame: string): void {
      if (flushMs <= 0) {
        socket.send(frame);
        return;
      }
      const list = pending.get(socket);
      if (list) list.push(frame);
      else pending.set(socket, [frame]);
      timer ??= setTimeout(flush, flushMs);
    },
    flush(): void {
      if (timer) clearTimeout(timer);
      flush();
    },
  };
}
