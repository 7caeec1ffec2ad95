// Test plumbing for gateway tests that put a small HTTP server between the gateway and a
// subgraph (to count, hold or break what the gateway sends): one in-process stack per file and
// the servers the file starts, all stopped after it.
import type { IncomingMessage, IncomingHttpHeaders, Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { startInProcessStack, type InProcessStack } from './in-process-stack';

/** Registers beforeAll/afterAll for a file: the stack, and `listen()` for servers of its own. */
export function useStackWithServers(): { stack: () => InProcessStack; listen(server: Server): Promise<string> } {
  let stack: InProcessStack | undefined;
  const servers: Server[] = [];
  beforeAll(async () => {
    stack = await startInProcessStack();
  }, 60_000);
  afterAll(async () => {
    for (const s of servers) {
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    }
    await stack?.stop();
  });
  return {
    stack: () => stack!,
    async listen(server) {
      servers.push(server);
      await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
      return `http://127.0.0.1:${(server.address() as AddressInfo).port}/graphql`;
    },
  };
}

export async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

/** The request's headers a pass-through forwards (the internal token included; hop-by-hop ones not). */
export function forwardable(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(headers)) {
    if (typeof v === 'string' && !['host', 'content-length', 'connection'].includes(k)) out[k] = v;
  }
  return out;
}
