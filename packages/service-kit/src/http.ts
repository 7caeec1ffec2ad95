import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { HeaderMap, type ApolloServer, type BaseContext } from '@apollo/server';

const MAX_BODY = 1024 * 1024;

export type Route = (req: IncomingMessage, res: ServerResponse) => Promise<boolean> | boolean;

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) throw Object.assign(new Error('request body too large'), { status: 413 });
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(body));
}

/**
 * A plain node:http server: health routes and extra routes first, then POST/GET /graphql handed
 * to Apollo Server's integration API. No web framework: nothing else is needed.
 */
export function createHttpServer<C extends BaseContext>(opts: {
  /** Read per request, so the server can exist before Apollo (its drain plugin needs the server). */
  apollo: () => ApolloServer<C>;
  context: (req: IncomingMessage) => Promise<C>;
  ready: () => boolean | Promise<boolean>;
  routes?: Route[];
  path?: string;
}): Server {
  const path = opts.path ?? '/graphql';
  const server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://local');
      if (url.pathname === '/healthz') return sendJson(res, 200, { status: 'ok' });
      if (url.pathname === '/readyz') {
        const ok = await Promise.resolve(opts.ready()).catch(() => false);
        return sendJson(res, ok ? 200 : 503, { status: ok ? 'ready' : 'not ready' });
      }
      for (const route of opts.routes ?? []) if (await route(req, res)) return;
      if (url.pathname !== path) return sendJson(res, 404, { error: 'not found' });

      const headers = new HeaderMap();
      for (const [k, v] of Object.entries(req.headers)) {
        if (v !== undefined) headers.set(k, Array.isArray(v) ? v.join(', ') : v);
      }
      let body: unknown;
      if (req.method === 'POST') {
        const raw = await readBody(req);
        if (raw && (headers.get('content-type') ?? '').includes('json')) {
          try {
            body = JSON.parse(raw);
          } catch {
            return sendJson(res, 400, { errors: [{ message: 'Request body is not valid JSON', extensions: { code: 'BAD_REQUEST' } }] });
          }
        } else body = raw;
      }
      const result = await opts.apollo().executeHTTPGraphQLRequest({
        httpGraphQLRequest: { method: req.method ?? 'GET', headers, search: url.search, body },
        context: () => opts.context(req),
      });
      for (const [k, v] of result.headers) res.setHeader(k, v);
      res.statusCode = result.status ?? 200;
      if (result.body.kind === 'complete') return void res.end(result.body.string);
      for await (const chunk of result.body.asyncIterator) res.write(chunk);
      res.end();
    })().catch((err: { status?: number }) => {
      if (!res.headersSent)
        sendJson(res, err.status ?? 500, { errors: [{ message: err.status ? String((err as Error).message) : 'Internal server error' }] });
      else res.end();
    });
  });
  server.keepAliveTimeout = 65_000; // longer than typical proxy idle timeouts
  server.headersTimeout = 66_000;
  return server;
}

export function listen(server: Server, port: number, host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const addr = server.address();
      resolve(typeof addr === 'object' && addr ? addr.port : port);
    });
  });
}
