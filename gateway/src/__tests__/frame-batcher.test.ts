// The gateway's feed frame batching over a real WebSocket pair: frames due to one socket within
// the interval arrive together and in order; with 0 each goes at once.
import { once } from 'node:events';
import type { AddressInfo } from 'node:net';
import WebSocket, { WebSocketServer } from 'ws';
import { frameBatcher } from '../realtime';

let wss: WebSocketServer;
beforeAll(async () => {
  wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await once(wss, 'listening');
});
afterAll(() => new Promise<void>((resolve) => wss.close(() => resolve())));

async function pair(): Promise<{ server: WebSocket; received: { text: string; at: number }[]; client: WebSocket }> {
  const connected = once(wss, 'connection');
  const client = new WebSocket(`ws://127.0.0.1:${(wss.address() as AddressInfo).port}`);
  const received: { text: string; at: number }[] = [];
  client.on('message', (m) => received.push({ text: m.toString(), at: Date.now() }));
  const [server] = (await connected) as [WebSocket];
  await once(client, 'open');
  return { server, received, client };
}

test('frames within the interval go out together, in order, after at most the interval', async () => {
  const { server, received, client } = await pair();
  const batcher = frameBatcher(80);
  const sent = Date.now();
  for (const n of [1, 2, 3]) batcher.add(server, `frame ${n}`);
  await new Promise((r) => setTimeout(r, 30));
  expect(received).toEqual([]); // still held
  for (let i = 0; i < 50 && received.length < 3; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received.map((r) => r.text)).toEqual(['frame 1', 'frame 2', 'frame 3']);
  expect(received[0]!.at - sent).toBeGreaterThanOrEqual(70);
  client.close();
});

test('0 writes each frame at once, and flush() sends what is held', async () => {
  const { server, received, client } = await pair();
  frameBatcher(0).add(server, 'now');
  const held = frameBatcher(10_000);
  held.add(server, 'held');
  for (let i = 0; i < 50 && received.length < 1; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received.map((r) => r.text)).toEqual(['now']);
  held.flush();
  for (let i = 0; i < 50 && received.length < 2; i++) await new Promise((r) => setTimeout(r, 10));
  expect(received.map((r) => r.text)).toEqual(['now', 'held']);
  client.close();
});
