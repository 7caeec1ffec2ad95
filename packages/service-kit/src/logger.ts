import { trace } from '@opentelemetry/api';
import pino, { type Logger } from 'pino';

export type { Logger };

/** Structured JSON logs carrying the active trace id; secrets and PII are redacted at the source. */
export function createLogger(name: string, level = 'info'): Logger {
  return pino({
    name,
    level,
    base: { service: name },
    timestamp: pino.stdTimeFunctions.isoTime,
    messageKey: 'msg',
    redact: {
      paths: [
        ...['authorization', 'token', 'accessToken', 'refreshToken', 'password', 'phone', 'devCode', 'variables'].flatMap((k) => [
          k,
          `*.${k}`,
        ]),
        'req.headers.authorization',
        'req.headers["flywheel-internal-token"]',
      ],
      censor: '[redacted]',
    },
    mixin() {
      const span = trace.getActiveSpan();
      if (!span) return {};
      const { traceId, spanId } = span.spanContext();
      return { trace_id: traceId, span_id: spanId };
    },
  });
}
