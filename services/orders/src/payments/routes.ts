import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { listen, sendJson, type Logger, type Route } from '@flywheel/service-kit';
import type { CallbackAnswer } from './service';
import type { TestPaymentProvider } from './test-provider';

/** Provider notifications are small; anything larger is not one. */
const MAX_CALLBACK_BYTES = 64 * 1024;

/** The exact bytes received: signatures are computed over them, never over re-serialised JSON. */
async function rawBody(req: IncomingMessage): Promise<string | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    // Past the limit the rest is drained unread (so the client gets its 413), up to a point.
    if (size > MAX_CALLBACK_BYTES * 16) {
      req.destroy();
      return null;
    }
    if (size <= MAX_CALLBACK_BYTES) chunks.push(chunk as Buffer);
  }
  return size > MAX_CALLBACK_BYTES ? null : Buffer.concat(chunks).toString('utf8');
}

const pathOf = (req: IncomingMessage) => new URL(req.url ?? '/', 'http://local').pathname;

/**
 * `POST /payments/<provider>/callback`: the provider's signed notification. Not GraphQL and not
 * behind the gateway's internal token — the provider's signature is the authentication (the
 * handler verifies it before anything else). 401 forged, 400 malformed, 404 unknown intent, 500
 * on a failure worth redelivering, 200 once the payment is recorded and decided.
 */
export function paymentCallbackRoute(opts: {
  provider: string;
  handle: (rawBody: string, headers: IncomingMessage['headers']) => Promise<CallbackAnswer>;
  logger: Pick<Logger, 'error'>;
}): Route {
  const path = `/payments/${opts.provider}/callback`;
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (pathOf(req) !== path) return false;
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'method not allowed' });
      return true;
    }
    try {
      const body = await rawBody(req);
      if (body === null) {
        sendJson(res, 413, { error: 'body too large' });
        return true;
      }
      const answer = await opts.handle(body, req.headers);
      sendJson(res, answer.status, answer.body);
    } catch (err) {
      opts.logger.error({ err }, 'payment callback failed; the provider will redeliver');
      sendJson(res, 500, { error: 'internal error' });
    }
    return true;
  };
}

/**
 * `POST /payments/test/simulate` `{ "intentId": "…", "times": 1 }`: development only (never
 * mounted in production) — makes the test provider charge the intent and deliver its callback,
 * as a member paying in the provider's app would.
 */
export function testPaymentSimulateRoute(provider: TestPaymentProvider, logger: Pick<Logger, 'error'>): Route {
  return async (req: IncomingMessage, res: ServerResponse) => {
    if (pathOf(req) !== '/payments/test/simulate') return false;
    if (req.method !== 'POST') {
      sendJson(res, 405, { error: 'method not allowed' });
      return true;
    }
    try {
      const { intentId, times } = JSON.parse((await rawBody(req)) ?? '{}') as { intentId?: unknown; times?: unknown };
      if (typeof intentId !== 'string') {
        sendJson(res, 400, { error: 'intentId is required' });
        return true;
      }
      const deliveries = await provider.pay(intentId, { times: typeof times === 'number' ? Math.min(Math.max(1, times), 5) : 1 });
      sendJson(res, 200, { deliveries });
    } catch (err) {
      logger.error({ err }, 'simulated payment failed');
      sendJson(res, 500, { error: 'simulated payment failed' });
    }
    return true;
  };
}

/**
 * The provider's own way in (PAYMENT_CALLBACK_PORT): a listener that serves the callback route
 * and nothing else — no GraphQL, no health or development routes. A NetworkPolicy is L4: a peer
 * it admits to a port reaches everything served there, so whatever the policy opens to the
 * ingress controller for the provider is this listener, never the GraphQL port.
 */
export async function startCallbackListener(opts: {
  routes: Route[];
  host: string;
  port: number;
  logger: Pick<Logger, 'error'>;
}): Promise<{ port: number; stop(): Promise<void> }> {
  const server = createServer((req, res) => {
    void (async () => {
      for (const route of opts.routes) if (await route(req, res)) return;
      sendJson(res, 404, { error: 'not found' });
    })().catch((err: unknown) => {
      opts.logger.error({ err }, 'payment callback listener failed');
      if (!res.headersSent) sendJson(res, 500, { error: 'internal error' });
      else res.end();
    });
  });
  // A slow sender cannot hold a socket open: notifications are small and providers retry.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  server.keepAliveTimeout = 65_000; // longer than typical proxy idle timeouts
  const port = await listen(server, opts.port, opts.host);
  return {
    port,
    stop: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      }),
  };
}
