import { GraphQLError, type GraphQLFormattedError } from 'graphql';
import { unwrapResolverError } from '@apollo/server/errors';
import type { Logger } from './logger';

/** The fixed set of error codes clients can rely on (docs/architecture.md, "How a request flows"). */
export const ErrorCode = {
  UNAUTHENTICATED: 'UNAUTHENTICATED',
  FORBIDDEN: 'FORBIDDEN',
  BAD_USER_INPUT: 'BAD_USER_INPUT',
  NOT_FOUND: 'NOT_FOUND',
  CONFLICT: 'CONFLICT',
  OUT_OF_STOCK: 'OUT_OF_STOCK',
  RATE_LIMITED: 'RATE_LIMITED',
  UNAVAILABLE: 'UNAVAILABLE',
  INTERNAL_SERVER_ERROR: 'INTERNAL_SERVER_ERROR',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

/** Codes Apollo Server itself produces for malformed requests; passed through as they are. */
const APOLLO_CODES = new Set([
  'GRAPHQL_PARSE_FAILED',
  'GRAPHQL_VALIDATION_FAILED',
  'BAD_REQUEST',
  'PERSISTED_QUERY_NOT_FOUND',
  'PERSISTED_QUERY_NOT_SUPPORTED',
  'OPERATION_RESOLUTION_FAILURE',
]);
const KNOWN = new Set<string>([...Object.values(ErrorCode), ...APOLLO_CODES]);

/**
 * A refusal the client should see, with its code. Anything else thrown is an internal error.
 * No HTTP status is set: a subgraph answers 200 with errors, so the gateway keeps the code.
 */
export class AppError extends GraphQLError {
  constructor(code: ErrorCode, message: string, extensions: Record<string, unknown> = {}) {
    // A refusal is an answer, not a fault: no stack is captured. In a flash-sale rush hundreds of
    // OUT_OF_STOCK answers a second each paid for a source-mapped stack nobody reads (about a
    // tenth of orders' CPU, bench/flash-sale.js).
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      super(message, { extensions: { ...extensions, code } });
    } finally {
      Error.stackTraceLimit = limit;
    }
  }
}

export const unauthenticated = (msg = 'Sign in required') => new AppError('UNAUTHENTICATED', msg);
export const forbidden = (msg = 'Not allowed') => new AppError('FORBIDDEN', msg);
export const badInput = (msg: string, field?: string) => new AppError('BAD_USER_INPUT', msg, field ? { field } : {});
export const notFound = (what: string) => new AppError('NOT_FOUND', `${what} not found`);

/**
 * Uniform error formatter: known codes keep their message (never a stack trace); everything
 * else is logged with its detail and reaches the client as INTERNAL_SERVER_ERROR.
 */
export function createErrorFormatter(logger: Logger) {
  return (formatted: GraphQLFormattedError, error: unknown): GraphQLFormattedError => {
    const code = formatted.extensions?.code;
    // Apollo gives every code-less error INTERNAL_SERVER_ERROR with its original message: that
    // message (a driver error, a connection string) must never reach a client.
    if (typeof code === 'string' && code !== ErrorCode.INTERNAL_SERVER_ERROR && KNOWN.has(code)) {
      const { stacktrace: _stack, exception: _exc, ...extensions } = formatted.extensions ?? {};
      return { message: formatted.message, locations: formatted.locations, path: formatted.path, extensions };
    }
    const original = unwrapResolverError(error);
    logger.error({ err: original, path: formatted.path }, 'unhandled error');
    return {
      message: 'Internal server error',
      path: formatted.path,
      extensions: { code: ErrorCode.INTERNAL_SERVER_ERROR },
    };
  };
}
