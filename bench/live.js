#!/usr/bin/env node
// A live room's feed under load: VIEWERS WebSocket viewers subscribed to one room on the gateway
// (graphql-ws protocol, `liveRoomFeed`), COMMENTERS registered members posting RATE comments a
// second between them for DURATION_SECONDS, each comment's author nickname resolved from
// membership for every delivery (the feed reads each event through the supergraph). Prints one
// JSON line: comments posted, deliveries expected (comments × viewers) and received (ratio must
// be 1.0), fan-out latency p50/p99/max (comment accepted → the viewer has it; and from the post's
// start), the gateway's RSS before the viewers, with them idle and at the end, and the CPU the
// gateway spent per delivered event, and the CPU seconds of every process while comments flow.
// WS_FLUSH_MS=0 runs the gateway writing each frame at once, to compare with its batching (default 50).
//
// The viewers speak the protocol over plain `ws` sockets (connection_init, subscribe, next) to
// keep the bench's own cost per message small; they run in this process.
const { performance } = require('node:perf_hooks');
const { readFileSync } = require('node:fs');
const WebSocket = require('ws');
const { benchStack, gql, must, percentile, round, token, objectId } = require('./lib');

const VIEWERS = Number(process.env.VIEWERS ?? 1000);
const RATE = Number(process.env.RATE ?? 50); // comments per second
const SECONDS = Number(process.env.DURATION_SECONDS ?? 20);
// A member comments at most once per 3-second slot: enough commenters for RATE with room to spare.
const COMMENTERS = Number(process.env.COMMENTERS ?? Math.max(20, Math.ceil(RATE * 4)));
const SETTLE_MS = Number(process.env.SETTLE_MS ?? 10_000);

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function procStat(pid) {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1].split(' ');
  const ticks = Number(stat[11]) + Number(stat[12]); // utime + stime
  return { rssMb: round(rssKb / 1024), cpuSeconds: ticks / 100 };
}

/** One viewer: a socket speaking graphql-ws; calls `onComment(id, at)` for each comment event. */
function viewer(wsUrl, accessToken, roomId, onComment) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(wsUrl, 'graphql-transport-ws', { perMessageDeflate: false, skipUTF8Validation: true });
    let subscribed = false;
    ws.on('open', () => ws.send(JSON.stringify({ type: 'connection_init', payload: { authorization: `Bearer ${accessToken}` } })));
    ws.on('message', (raw) => {
      const at = performance.now();
      // The bench's own CPU competes with the gateway's on this machine: a comment event is
      // recognised and its id read without parsing the frame (the gateway sends compact JSON).
      const text = raw.toString();
      const c = text.indexOf('"__typename":"LiveComment","id":"');
      if (c >= 0) {
        const from = c + 33;
        onComment(text.slice(from, text.indexOf('"', from)), at);
        return;
      }
      const msg = JSON.parse(text);
      if (msg.type === 'connection_ack') {
        ws.send(
          JSON.stringify({
            id: '1',
            type: 'subscribe',
            payload: {
              query:
                'subscription($r: ID!) { liveRoomFeed(roomId: $r) { __typename ... on LiveComment { id body author { nickname } } ... on LiveViewers { count } } }',
              variables: { r: roomId },
            },
          }),
        );
      } else if (msg.type === 'next') {
        if (!subscribed) {
          subscribed = true;
          resolve(ws);
        }
      } else if (msg.type === 'error') reject(new Error(JSON.stringify(msg.payload)));
      else if (msg.type === 'ping') ws.send(JSON.stringify({ type: 'pong' }));
    });
    ws.on('error', reject);
    // The first event (the viewer count) confirms the subscription; a quiet room resolves after a moment.
    setTimeout(() => {
      if (!subscribed && ws.readyState === WebSocket.OPEN) {
        subscribed = true;
        resolve(ws);
      }
    }, 5_000);
  });
}

async function main() {
  // Development login codes register the commenters by phone (the bench cannot receive an SMS).
  const stack = await benchStack({
    NODE_ENV: 'development',
    DEV_LOGIN_CODES: 'true',
    WS_MAX_CONNECTIONS_PER_IDENTITY: '10',
    // The gateway's write batching (0: one write per frame, the way to compare).
    ...(process.env.WS_FLUSH_MS ? { WS_FLUSH_MS: process.env.WS_FLUSH_MS } : {}),
  });
  const sockets = [];
  try {
    const url = stack.gatewayUrl;
    const wsUrl = url.replace(/^http/, 'ws');
    const gatewayPid = stack.processes.find((p) => p.name === 'gateway').proc.pid;
    const staff = { authorization: `Bearer ${token(stack.authSecret, objectId(), ['STAFF'])}` };
    const room = must(
      await gql(
        url,
        'mutation($i: ScheduleLiveRoomInput!) { scheduleLiveRoom(input: $i) { id } }',
        { i: { title: '压测直播间', hostName: '主播', scheduledAt: new Date(Date.now() + 3600_000).toISOString() } },
        staff,
      ),
      'schedule',
    ).scheduleLiveRoom.id;
    must(await gql(url, 'mutation($id: ID!) { startLiveRoom(id: $id) { status } }', { id: room }, staff), 'start');

    const commenters = [];
    for (let i = 0; i < COMMENTERS; i++) {
      const phone = `136${String(10_000_000 + i).slice(-8)}`;
      const code = must(
        await gql(url, 'mutation($p: String!) { requestLoginCode(input: { phone: $p }) { devCode } }', { p: phone }),
        'code',
      ).requestLoginCode.devCode;
      const login = must(
        await gql(url, 'mutation($p: String!, $c: String!) { login(input: { phone: $p, code: $c }) { accessToken } }', {
          p: phone,
          c: code,
        }),
        'login',
      ).login;
      commenters.push({ authorization: `Bearer ${login.accessToken}` });
    }

    const before = procStat(gatewayPid);
    // Each comment id → when it was accepted and when its post began; deliveries counted per id.
    const comments = new Map();
    const latencies = [];
    const fromStart = [];
    let received = 0;
    const onComment = (id, at) => {
      const c = comments.get(id);
      received += 1;
      if (!c) return; // delivered before the post's answer: counted when it comes (below)
      latencies.push(Math.max(0, at - c.acceptedAt));
      fromStart.push(at - c.startedAt);
    };
    const early = [];
    const onAny = (id, at) => (comments.has(id) ? onComment(id, at) : (early.push([id, at]), (received += 1)));
    for (let i = 0; i < VIEWERS; i += 50) {
      const batch = [];
      for (let j = i; j < Math.min(VIEWERS, i + 50); j++)
        batch.push(viewer(wsUrl, token(stack.authSecret, objectId(), ['CUSTOMER']), room, onAny));
      sockets.push(...(await Promise.all(batch)));
    }
    await sleep(3_000);
    const idle = procStat(gatewayPid);
    // CPU seconds of every process while the comments flow: where the machine's two cores go.
    const cpuOf = () => ({
      ...Object.fromEntries(stack.processes.map((p) => [p.name, procStat(p.proc.pid).cpuSeconds])),
      bench: process.cpuUsage().user / 1e6 + process.cpuUsage().system / 1e6,
    });
    const cpuBefore = cpuOf();

    const total = Math.round(RATE * SECONDS);
    let posted = 0;
    let refused = 0;
    const started = performance.now();
    const posts = [];
    for (let n = 0; n < total; n++) {
      const due = started + (n * 1000) / RATE;
      const wait = due - performance.now();
      if (wait > 0) await sleep(wait);
      const startedAt = performance.now();
      const author = commenters[n % COMMENTERS];
      posts.push(
        gql(
          url,
          'mutation($r: ID!, $b: String!) { postLiveComment(roomId: $r, body: $b) { id } }',
          { r: room, b: `第${n}条：好物推荐` },
          author,
        ).then((res) => {
          if (res.errors) {
            refused += 1;
            return;
          }
          posted += 1;
          comments.set(res.data.postLiveComment.id, { startedAt, acceptedAt: performance.now() });
        }),
      );
    }
    await Promise.all(posts);
    const offeredSeconds = (performance.now() - started) / 1000;
    // Deliveries that beat their post's answer: latency 0 from acceptance.
    for (const [id, at] of early.splice(0)) {
      const c = comments.get(id);
      if (c) {
        latencies.push(0);
        fromStart.push(at - c.startedAt);
      }
    }
    const expected = posted * VIEWERS;
    for (const deadline = Date.now() + SETTLE_MS; received < expected && Date.now() < deadline;) await sleep(100);
    const end = procStat(gatewayPid);
    const cpuAfter = cpuOf();
    const cpuSeconds = Object.fromEntries(Object.keys(cpuAfter).map((k) => [k, round(cpuAfter[k] - cpuBefore[k])]));
    latencies.sort((a, b) => a - b);
    fromStart.sort((a, b) => a - b);
    console.log(
      JSON.stringify({
        bench: 'live',
        viewers: VIEWERS,
        commenters: COMMENTERS,
        wsFlushMs: Number(process.env.WS_FLUSH_MS ?? 50),
        commentsOffered: total,
        commentsPerSecond: round(posted / offeredSeconds),
        commentsPosted: posted,
        commentsRefused: refused,
        deliveriesExpected: expected,
        deliveriesReceived: received,
        delivered: expected ? round((received / expected) * 1000) / 1000 : null,
        fanoutMs: { p50: round(percentile(latencies, 50)), p99: round(percentile(latencies, 99)), max: round(latencies.at(-1) ?? null) },
        postToViewerMs: { p50: round(percentile(fromStart, 50)), p99: round(percentile(fromStart, 99)) },
        gatewayRssMb: { beforeViewers: before.rssMb, viewersIdle: idle.rssMb, end: end.rssMb },
        gatewayRssRatioVsBefore: round((end.rssMb / before.rssMb) * 100) / 100,
        cpuSecondsWhileCommenting: cpuSeconds,
        gatewayCpuMsPerThousandDeliveries: received ? round(((end.cpuSeconds - idle.cpuSeconds) * 1000 * 1000) / received) : null,
      }),
    );
  } finally {
    for (const ws of sockets) ws.terminate();
    await stack.stop();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
