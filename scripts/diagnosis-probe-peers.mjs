#!/usr/bin/env node
// diagnosis-probe-peers.mjs: the scenario behind fixtures/diagnosis-probe.pcap, played on loopback by
// scripts/make-diagnosis-probe.sh inside a private network namespace.
//
//   node scripts/diagnosis-probe-peers.mjs --meta META.json [--seconds 30] [--probe-ms 250]
//        [--leak-from 10] [--leak-to 20]
//
// Server 127.0.0.1:20880 (allowHalfOpen: Node never answers the peer's FIN by itself).
//   - 127.0.0.2: a health-check probe on a fixed schedule (connect, FIN at once, no payload);
//   - 127.0.0.3: request/response clients every 500 ms ("REQ n", answered, the client closes first);
//   - 127.0.0.5: a few request/response clients inside the leak window only.
// Inside the leak window [leak-from, leak-to) seconds after the capture starts, the server forgets
// every socket it accepts: probes and requests from .3 are never read (the requests become
// "unanswered requests": bytes ACKed by the kernel, never read), and the sockets of .5 are answered
// and then never closed. Each of them sits in CLOSE_WAIT after the client's FIN until the end.
//
// Protocol with the driver (stdout): READY (server listening), then wait for SIGUSR2 (tcpdump is
// running), play, write META.json, print DONE and stay alive (keeping the leaked sockets) until
// SIGTERM. META.json carries the bookkeeping the truth file is built from: every connection with
// its client-side times (connect, FIN) and what the server did with it. Bounded: exits by itself
// after HARD_LIMIT_MS.

import net from 'node:net';
import fs from 'node:fs';
import { performance } from 'node:perf_hooks';

const HARD_LIMIT_MS = 180_000;
setTimeout(() => {
  process.stderr.write('diagnosis-probe-peers: hard time limit reached\n');
  process.exit(3);
}, HARD_LIMIT_MS).unref();

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const metaPath = option('meta');
if (!metaPath) {
  process.stderr.write('usage: diagnosis-probe-peers.mjs --meta FILE [--seconds S] [--probe-ms MS] [--leak-from S] [--leak-to S]\n');
  process.exit(2);
}
const SECONDS = Number(option('seconds', '30'));
const PROBE_MS = Number(option('probe-ms', '250'));
const LEAK_FROM = Number(option('leak-from', '10'));
const LEAK_TO = Number(option('leak-to', '20'));
const REQUEST_MS = 500;
const ANSWERED_KEPT_EVERY_MS = 2000;

/** Wall-clock seconds with sub-millisecond precision: the clock tcpdump stamps packets with. */
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
const keep = new Set();
const log = (...a) => process.stderr.write(`[diagnosis-probe] ${a.join(' ')}\n`);

let start = 0;
const inLeakWindow = () => {
  const t = now() - start;
  return t >= LEAK_FROM && t < LEAK_TO;
};

// ---- server ---------------------------------------------------------------------------------------
/** Accepted sockets by client address:port, in accept order: what the server did with each. */
const accepted = new Map();
const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (sock) => {
  keep.add(sock);
  sock.on('error', () => {});
  const leak = inLeakWindow();
  const mode = !leak ? 'normal' : sock.remoteAddress === '127.0.0.5' ? 'answer-then-keep' : 'forget';
  const key = `${sock.remoteAddress}:${sock.remotePort}`;
  if (!accepted.has(key)) accepted.set(key, []);
  accepted.get(key).push({ mode, acceptTime: now() });
  if (mode === 'forget') return; // never read, never written, never closed
  let buffer = '';
  sock.on('data', (d) => {
    buffer += d.toString('latin1');
    let i;
    while ((i = buffer.indexOf('\n')) >= 0) {
      const line = buffer.slice(0, i);
      buffer = buffer.slice(i + 1);
      if (line.startsWith('REQ ')) sock.write(`RESP ${line.slice(4)}\n`);
    }
  });
  sock.on('end', () => {
    if (mode === 'normal') sock.end();
  });
  sock.on('close', () => keep.delete(sock));
  sock.resume();
});

// ---- clients --------------------------------------------------------------------------------------
const clients = [];

function dial(localAddress) {
  return new Promise((resolve, reject) => {
    const record = { localAddress, localPort: 0, connectTime: now(), finTime: null, bytesSent: 0, answered: false };
    const sock = net.connect({ host: '127.0.0.1', port: 20880, localAddress, allowHalfOpen: true });
    keep.add(sock);
    sock.on('error', (e) => reject(e));
    sock.once('connect', () => {
      record.localPort = sock.localPort;
      clients.push(record);
      resolve({ sock, record });
    });
  });
}

/** Ends our side (FIN), waits up to holdMs for the server's FIN, then closes the descriptor. */
async function finish(sock, record, holdMs) {
  record.finTime = now();
  sock.end();
  sock.resume();
  const closed = await new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), holdMs);
    sock.once('end', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  sock.destroy(); // a socket that already sent its FIN leaves an orphan FIN_WAIT_2, no RST
  keep.delete(sock);
  return closed;
}

async function probe() {
  const { sock, record } = await dial('127.0.0.2');
  await finish(sock, record, 250);
}

async function request(localAddress, id) {
  const { sock, record } = await dial(localAddress);
  const line = `REQ ${id} some-request-body\n`;
  record.bytesSent = Buffer.byteLength(line);
  sock.write(line);
  record.answered = await new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), 400);
    sock.once('data', () => {
      clearTimeout(t);
      resolve(true);
    });
  });
  await finish(sock, record, 250);
}

/** Runs `task` every `everyMs` on an absolute schedule (no drift), from `fromS` to `toS` seconds. */
async function every(everyMs, fromS, toS, task, tasks) {
  for (let i = 0; ; i++) {
    const at = fromS * 1000 + i * everyMs;
    if (at >= toS * 1000) return;
    await sleep(start * 1000 + at - now() * 1000);
    tasks.push(task(i));
  }
}

async function main() {
  await new Promise((resolve) => server.listen({ host: '127.0.0.1', port: 20880, backlog: 511 }, resolve));
  const go = new Promise((resolve) => process.once('SIGUSR2', resolve));
  process.on('SIGTERM', () => process.exit(0));
  process.stdout.write('READY\n');
  await go;
  start = now() + 0.05;
  const tasks = [];
  await Promise.all([
    every(PROBE_MS, 0, SECONDS, () => probe(), tasks),
    every(REQUEST_MS, 0.125, SECONDS, (i) => request('127.0.0.3', `n${i}`), tasks),
    every(ANSWERED_KEPT_EVERY_MS, LEAK_FROM + 0.3, LEAK_TO, (i) => request('127.0.0.5', `k${i}`), tasks),
  ]);
  const results = await Promise.allSettled(tasks);
  const failed = results.filter((r) => r.status === 'rejected');
  if (failed.length) throw new Error(`${failed.length} client tasks failed: ${failed[0].reason}`);
  await sleep(300); // the last ACKs reach the wire

  // A client port can come back later (from another address, or after its old socket is gone):
  // the n-th connect from an address:port is the n-th accept from it.
  const taken = new Map();
  const connections = [...clients].sort((x, y) => x.connectTime - y.connectTime).map((c) => {
    const key = `${c.localAddress}:${c.localPort}`;
    const index = taken.get(key) ?? 0;
    taken.set(key, index + 1);
    return { ...c, server: accepted.get(key)?.[index]?.mode ?? 'unknown' };
  });
  const unknown = connections.filter((c) => c.server === 'unknown');
  if (unknown.length) throw new Error(`${unknown.length} client connections were not seen accepted`);
  const meta = {
    scenario: 'diagnosis-probe',
    description:
      `Server 127.0.0.1:20880 for ${SECONDS} s: a health-check probe from 127.0.0.2 every ${PROBE_MS} ms (connect, then FIN, no payload), ` +
      `request/response clients from 127.0.0.3 every ${REQUEST_MS} ms, and inside a leak window (${LEAK_FROM} s to ${LEAK_TO} s after the start) ` +
      `the server forgets every socket it accepts: probes and requests from .3 are never read (unanswered requests), ` +
      `and requests from 127.0.0.5 (one every ${ANSWERED_KEPT_EVERY_MS / 1000} s, only in the window) are answered and then never closed. ` +
      'Every forgotten socket sits in CLOSE_WAIT after the client FIN until the capture ends.',
    servicePorts: [20880],
    connections: connections.length,
    expectCloseWait: connections.filter((c) => c.server !== 'normal').length,
    notes: 'Built to check the diagnosis (onset, leak window, stuck per minute, probe interval, probe vs unanswered request split) against known truth: see the "diagnosis" object.',
    plan: { seconds: SECONDS, probeMs: PROBE_MS, requestMs: REQUEST_MS, leakFrom: LEAK_FROM, leakTo: LEAK_TO },
    start,
    leakStart: start + LEAK_FROM,
    leakEnd: start + LEAK_TO,
    clients: connections,
  };
  fs.writeFileSync(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
  log(`done: ${connections.length} connections, ${meta.expectCloseWait} forgotten`);
  process.stdout.write('DONE\n');
}

main().catch((error) => {
  process.stderr.write(`diagnosis-probe-peers: ${error?.stack ?? error}\n`);
  process.stdout.write('FAILED\n');
  process.exit(1);
});
