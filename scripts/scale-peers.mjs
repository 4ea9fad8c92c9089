#!/usr/bin/env node
// scale-peers.mjs: the traffic of the scale capture (scripts/make-scale-capture.sh): about a hundred
// thousand real-kernel TCP connections to two services on loopback, with the mix of a production
// server: request/response exchanges closed by the client or by the server, RST closes, health-check
// probes, about 2.5 % of connections never closed by the server (server-side CLOSE_WAIT) and a few
// never closed by the client after the server's FIN (client-side CLOSE_WAIT).
//
//   node scripts/scale-peers.mjs --meta META.json --conns CONNS.tsv [--connections N] [--seconds S]
//        [--seed N] [--concurrency N]
//
// Protocol with the driver (stdout lines), as scripts/fixture-peers.mjs:
//   READY   both servers listen; the script waits for SIGUSR2 (tcpdump is running) before it dials.
//   DONE    every connection has played out; META.json and CONNS.tsv are written. Every socket left
//           half-closed on purpose is still open; the driver takes `ss`, stops tcpdump, then sends
//           SIGTERM and the process exits.
// The process exits on its own after a hard time limit whatever happens.
//
// Servers: 127.0.0.1:20880 (service A) and 127.0.0.1:8080 (service B). Clients bind a source address
// per connection (127.0.1.x for A, 127.0.2.x for B): one address has only ~28k ephemeral ports and a
// client that closes first holds its port in TIME_WAIT for 60 s, so one address could not carry the
// run. Server and clients live in this one process; each connection's plan (drawn from a seeded PRNG
// by its index) is passed to the server side through a map keyed by the client's address:port, read
// only once the client has sent something (data or FIN), i.e. after its connect() completed.
//
// Wire format of a request: 12-byte header (request length incl. header u32, response length u32,
// after-response action u8: 0 keep open, 1 server closes (FIN), 2 server resets, 3 never answer),
// then filler up to the request length. The response is filler of the asked length.
//
// CONNS.tsv, one line per connect() attempted: index, kind, port, client address:port (or "-" when
// connect() failed before a port was bound), outcome. META.json: the counts (attempted, connected,
// per kind, deliberate RSTs, sockets left half-closed on purpose and on which side, failures).

import net from 'node:net';
import fs from 'node:fs';

const argv = process.argv.slice(2);
const opts = { connections: 113_905, seconds: 200, seed: 1, concurrency: 400, meta: null, conns: null };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const next = () => {
    if (i + 1 >= argv.length) fail(`${a} needs a value`);
    return argv[++i];
  };
  if (a === '--connections') opts.connections = positiveInt(a, next());
  else if (a === '--seconds') opts.seconds = positiveInt(a, next());
  else if (a === '--seed') opts.seed = positiveInt(a, next());
  else if (a === '--concurrency') opts.concurrency = positiveInt(a, next());
  else if (a === '--meta') opts.meta = next();
  else if (a === '--conns') opts.conns = next();
  else fail(`unknown argument ${a}`);
}
if (!opts.meta || !opts.conns) fail('usage: scale-peers.mjs --meta FILE --conns FILE [--connections N] [--seconds S] [--seed N] [--concurrency N]');

function positiveInt(name, text) {
  const n = Number(text);
  if (!Number.isInteger(n) || n <= 0) fail(`${name} wants a positive integer, got ${text}`);
  return n;
}
function fail(msg) {
  process.stderr.write(`scale-peers: ${msg}\n`);
  process.exit(2);
}

// Pacing aims at opts.seconds; a slow machine may stretch it, never past this.
const HARD_LIMIT_MS = Math.max(120_000, opts.seconds * 3 * 1000) + 60_000;
const hardTimer = setTimeout(() => {
  process.stderr.write('scale-peers: hard time limit reached, exiting\n');
  process.exit(3);
}, HARD_LIMIT_MS);
hardTimer.unref();
const STEP_TIMEOUT_MS = 15_000;

const SERVICE_A = 20880;
const SERVICE_B = 8080;
const SOURCES_A = 40;
const SOURCES_B = 8;
const HEADER = 12;
const RESPONSE_HEAD = 180;
const ACTION_KEEP = 0;
const ACTION_FIN = 1;
const ACTION_RST = 2;
const ACTION_SILENT = 3;

/**
 * Per mille of all connections. The stuck kinds (probe-leak, *-leak, client-stuck) add up to 26 per
 * mille; about 4 % of the server-side ones are ended later by a new SYN from the same client port (once
 * the client's orphan FIN_WAIT_2 has expired), which leaves about 2.5 % stuck, as in the issue's capture.
 */
const KINDS = [
  // service A
  { kind: 'probe', port: SERVICE_A, weight: 130 },
  { kind: 'probe-leak', port: SERVICE_A, weight: 5 }, // the server forgets the probe: server CLOSE_WAIT
  { kind: 'client-close', port: SERVICE_A, weight: 436 },
  { kind: 'server-close', port: SERVICE_A, weight: 150 },
  { kind: 'client-rst', port: SERVICE_A, weight: 40 }, // resetAndDestroy() after the last answer
  { kind: 'server-rst', port: SERVICE_A, weight: 25 }, // the server answers, then resetAndDestroy()
  { kind: 'answered-leak', port: SERVICE_A, weight: 11 }, // answered, client closes, server never does
  { kind: 'unanswered-leak', port: SERVICE_A, weight: 6 }, // never answered; client gives up and closes
  // service B
  { kind: 'client-close', port: SERVICE_B, weight: 90 },
  { kind: 'server-close', port: SERVICE_B, weight: 81 },
  { kind: 'client-stuck', port: SERVICE_B, weight: 4 }, // server closes, client never: client CLOSE_WAIT
  { kind: 'client-rst', port: SERVICE_B, weight: 6 },
  { kind: 'probe', port: SERVICE_B, weight: 16 },
];
const WEIGHT_TOTAL = KINDS.reduce((sum, k) => sum + k.weight, 0);
if (WEIGHT_TOTAL !== 1000) fail(`internal: kind weights add up to ${WEIGHT_TOTAL}, not 1000`);
const SERVER_LEAKS = new Set(['probe-leak', 'answered-leak', 'unanswered-leak']);

// ---------------------------------------------------------------------------------------------
// plans

/** mulberry32, seeded per connection so a plan depends only on (seed, index). */
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const logUniform = (r, lo, hi) => Math.round(Math.exp(Math.log(lo) + r() * (Math.log(hi) - Math.log(lo))));

function responseBytes(r) {
  const u = r();
  if (u < 0.62) return logUniform(r, 100, 1_500);
  if (u < 0.93) return logUniform(r, 1_500, 12_000);
  return logUniform(r, 12_000, 40_000);
}

function planFor(index) {
  const r = rng((opts.seed * 0x9e3779b1 + index * 0x85ebca6b) >>> 0);
  let pick = r() * WEIGHT_TOTAL;
  let chosen = KINDS[KINDS.length - 1];
  for (const k of KINDS) {
    if (pick < k.weight) { chosen = k; break; }
    pick -= k.weight;
  }
  const { kind, port } = chosen;
  const source = port === SERVICE_A ? `127.0.1.${1 + Math.floor(r() * SOURCES_A)}` : `127.0.2.${1 + Math.floor(r() * SOURCES_B)}`;
  const isProbe = kind === 'probe' || kind === 'probe-leak';
  const u = r();
  const exchanges = isProbe ? 0 : kind === 'unanswered-leak' ? 1 : u < 0.35 ? 1 : u < 0.65 ? 2 : 3 + Math.floor(r() * 3);
  const steps = [];
  for (let e = 0; e < exchanges; e++) {
    const t = r();
    // mostly a quick next request; sometimes a pause past the 40 ms delayed-ACK timer
    const thinkMs = t < 0.4 ? Math.floor(r() * 5) : t < 0.75 ? 5 + Math.floor(r() * 55) : 60 + Math.floor(r() * 240);
    steps.push({ request: Math.max(HEADER, logUniform(r, 80, 1_200)), response: responseBytes(r), thinkMs });
  }
  return {
    index,
    kind,
    port,
    source,
    steps,
    serverLeaks: SERVER_LEAKS.has(kind),
    // a client whose connection the server forgot keeps its fd half the time; otherwise it closes it after
    // a moment and the kernel keeps an orphan FIN_WAIT_2 for tcp_fin_timeout (60 s), then frees the port
    keepClientFd: r() < 0.5,
    probeHoldMs: 200 + Math.floor(r() * 800),
  };
}

// ---------------------------------------------------------------------------------------------
// servers

const plans = new Map(); // "clientAddress:clientPort" -> plan, until the server side closes
const kept = new Set(); // sockets left half-closed on purpose (either side); they must stay open
const count = {
  attempted: 0,
  connected: 0,
  connectErrors: {},
  accepted: { [SERVICE_A]: 0, [SERVICE_B]: 0 },
  byKind: {},
  outcome: {},
  clientResets: 0,
  serverResets: 0,
  serverLeaked: 0,
  clientStuck: 0,
  leakedClientFdsClosed: 0,
  failures: 0,
  serverPlanMissing: 0,
  serverErrors: {},
};
const bump = (obj, key) => { obj[key] = (obj[key] || 0) + 1; };
const failures = [];
function noteFailure(plan, what) {
  count.failures++;
  if (failures.length < 50) failures.push(`#${plan.index} ${plan.kind}: ${what}`);
}

function serveSocket(socket, port) {
  count.accepted[port]++;
  socket.setNoDelay(true);
  const key = `${socket.remoteAddress}:${socket.remotePort}`;
  let plan = null;
  const lookup = () => {
    if (plan === null) {
      plan = plans.get(key) || null;
      if (plan === null) count.serverPlanMissing++;
    }
    return plan;
  };
  let pending = null;
  let requestLeft = -1;
  let responseLength = 0;
  let action = ACTION_KEEP;
  socket.on('data', (chunk) => {
    pending = pending ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (requestLeft < 0) {
        if (pending.length < HEADER) return;
        requestLeft = pending.readUInt32BE(0);
        responseLength = pending.readUInt32BE(4);
        action = pending[8];
      }
      if (pending.length < requestLeft) return;
      pending = pending.length === requestLeft ? null : pending.subarray(requestLeft);
      requestLeft = -1;
      if (action === ACTION_SILENT) {
        if (!pending) return;
        continue;
      }
      if (action === ACTION_RST) {
        // once the answer is in the kernel; data still unsent then is dropped by the reset, as in real life
        socket.write(Buffer.alloc(responseLength, 0x61), () => { count.serverResets++; socket.resetAndDestroy(); });
        return;
      }
      // a header, then the body: two writes, as most servers do (two segments with Nagle off)
      const head = Math.min(responseLength, RESPONSE_HEAD);
      socket.write(Buffer.alloc(head, 0x61));
      if (responseLength > head) socket.write(Buffer.alloc(responseLength - head, 0x61));
      if (action === ACTION_FIN) socket.end();
      if (!pending) return;
    }
  });
  socket.on('end', () => {
    const p = lookup();
    if (p && p.serverLeaks) {
      count.serverLeaked++;
      kept.add(socket);
      return;
    }
    if (!socket.writableEnded) socket.end();
  });
  socket.on('close', () => { plans.delete(key); });
  socket.on('error', (e) => { bump(count.serverErrors, e.code || e.message); });
}

async function listen(port) {
  const server = net.createServer({ allowHalfOpen: true }, (s) => serveSocket(s, port));
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port, backlog: 4096 }, resolve);
  });
  return server;
}

// ---------------------------------------------------------------------------------------------
// clients

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves with the event's name, or 'timeout'. */
function once(socket, events, ms) {
  return new Promise((resolve) => {
    const handlers = [];
    const done = (name) => {
      clearTimeout(timer);
      for (const [ev, h] of handlers) socket.off(ev, h);
      resolve(name);
    };
    const timer = setTimeout(() => done('timeout'), ms);
    for (const ev of events) {
      const h = () => done(ev);
      handlers.push([ev, h]);
      socket.once(ev, h);
    }
  });
}

function closed(socket, ms) {
  if (socket.closed) return Promise.resolve('close');
  return once(socket, ['close'], ms);
}

function request(step, action) {
  const b = Buffer.alloc(step.request, 0x62);
  b.writeUInt32BE(step.request, 0);
  b.writeUInt32BE(step.response, 4);
  b[8] = action;
  return b;
}

const lines = [];

async function play(plan) {
  count.attempted++;
  bump(count.byKind, `${plan.kind}@${plan.port}`);
  const clientStuck = plan.kind === 'client-stuck';
  const socket = net.connect({ host: '127.0.0.1', port: plan.port, localAddress: plan.source, allowHalfOpen: clientStuck });
  socket.setNoDelay(true);
  let lastError = null;
  socket.on('error', (e) => { lastError = e; });
  let received = 0;
  let want = 0;
  let arrived = null;
  socket.on('data', (chunk) => {
    received += chunk.length;
    if (arrived && received >= want) { const a = arrived; arrived = null; a(); }
  });
  let clientEndpoint = '-'; // read once connected: a destroyed socket no longer knows its port
  const outcome = (what) => {
    bump(count.outcome, what);
    lines.push(`${plan.index}\t${plan.kind}\t${plan.port}\t${clientEndpoint}\t${what}`);
  };

  const how = await once(socket, ['connect', 'close'], STEP_TIMEOUT_MS);
  if (how !== 'connect') {
    bump(count.connectErrors, lastError?.code || how);
    outcome(`connect-failed:${lastError?.code || how}`);
    socket.destroy();
    return;
  }
  count.connected++;
  clientEndpoint = `${socket.localAddress}:${socket.localPort}`;
  plans.set(clientEndpoint, plan);

  const lastAction = {
    'server-close': ACTION_FIN,
    'client-stuck': ACTION_FIN,
    'server-rst': ACTION_RST,
    'unanswered-leak': ACTION_SILENT,
  }[plan.kind] ?? ACTION_KEEP;
  for (let e = 0; e < plan.steps.length; e++) {
    const step = plan.steps[e];
    const last = e === plan.steps.length - 1;
    const action = last ? lastAction : ACTION_KEEP;
    want = received + step.response;
    const answered = action === ACTION_SILENT ? null : new Promise((r) => { arrived = r; });
    socket.write(request(step, action));
    if (answered) {
      const t = await Promise.race([answered.then(() => 'ok'), sleep(STEP_TIMEOUT_MS).then(() => 'timeout'), closed(socket, STEP_TIMEOUT_MS + 1)]);
      if (t !== 'ok' && received < want && !(last && plan.kind === 'server-rst')) {
        noteFailure(plan, `exchange ${e}: ${t} after ${received}/${want} bytes${lastError ? ` (${lastError.code})` : ''}`);
        outcome('failed');
        socket.destroy();
        return;
      }
    } else {
      await sleep(300); // waiting for an answer that never comes, then giving up
    }
    if (!last && step.thinkMs) await sleep(step.thinkMs);
  }

  switch (plan.kind) {
    case 'probe':
    case 'client-close': {
      socket.end();
      if ((await closed(socket, STEP_TIMEOUT_MS)) !== 'close') { noteFailure(plan, 'server never closed'); outcome('failed'); socket.destroy(); return; }
      outcome('closed');
      return;
    }
    case 'server-close': {
      // the server's FIN arrives after the answer; without allowHalfOpen Node answers it with end()
      if ((await closed(socket, STEP_TIMEOUT_MS)) !== 'close') { noteFailure(plan, 'server FIN never came'); outcome('failed'); socket.destroy(); return; }
      outcome('closed');
      return;
    }
    case 'client-rst': {
      count.clientResets++;
      socket.resetAndDestroy();
      outcome('client-reset');
      return;
    }
    case 'server-rst': {
      if ((await closed(socket, STEP_TIMEOUT_MS)) !== 'close') { noteFailure(plan, 'server RST never came'); outcome('failed'); socket.destroy(); return; }
      // Node reports the RST as ECONNRESET only when it comes before the client has read everything
      outcome('server-reset');
      return;
    }
    case 'client-stuck': {
      if ((await once(socket, ['end', 'close'], STEP_TIMEOUT_MS)) !== 'end') { noteFailure(plan, 'server FIN never came'); outcome('failed'); socket.destroy(); return; }
      count.clientStuck++;
      kept.add(socket);
      outcome('client-stuck');
      return;
    }
    case 'probe-leak':
    case 'answered-leak':
    case 'unanswered-leak': {
      socket.end();
      await sleep(plan.kind === 'probe-leak' ? plan.probeHoldMs : 500);
      if (socket.closed) { noteFailure(plan, 'the server closed a connection it should have forgotten'); outcome('failed'); return; }
      if (plan.keepClientFd) kept.add(socket);
      else { count.leakedClientFdsClosed++; socket.destroy(); }
      outcome(plan.keepClientFd ? 'server-leaked' : 'server-leaked-client-fd-closed');
      return;
    }
    default:
      throw new Error(`unknown kind ${plan.kind}`);
  }
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const goSignal = new Promise((resolve) => process.once('SIGUSR2', resolve));
  process.on('SIGTERM', () => process.exit(0));
  process.on('SIGINT', () => process.exit(0));
  const servers = [await listen(SERVICE_A), await listen(SERVICE_B)];
  process.stdout.write('READY\n');
  await goSignal;

  const t0 = Date.now();
  const intervalMs = (opts.seconds * 1000) / opts.connections;
  const deadline = t0 + HARD_LIMIT_MS - 45_000;
  let next = 0;
  let inFlight = 0;
  let peakInFlight = 0;
  const running = new Set();
  while (next < opts.connections) {
    const now = Date.now();
    if (now > deadline) throw new Error(`only ${next} of ${opts.connections} connections started before the deadline`);
    const due = t0 + next * intervalMs;
    if (now < due) { await sleep(Math.min(5, due - now)); continue; }
    if (inFlight >= opts.concurrency) { await sleep(1); continue; }
    const plan = planFor(next++);
    inFlight++;
    peakInFlight = Math.max(peakInFlight, inFlight);
    const p = play(plan)
      .catch((e) => { noteFailure(plan, e?.stack || String(e)); })
      .finally(() => { inFlight--; running.delete(p); });
    running.add(p);
    if (next % 10_000 === 0) process.stderr.write(`[scale-peers] ${next} started, ${((Date.now() - t0) / 1000).toFixed(0)} s, ${inFlight} in flight\n`);
  }
  await Promise.all([...running]);
  const playedMs = Date.now() - t0;
  await sleep(1_000); // the last delayed ACKs and FIN/ACK exchanges reach the wire before ss is taken
  for (const s of servers) s.close(); // stop listening; accepted sockets stay as they are

  const meta = {
    generator: 'scripts/scale-peers.mjs',
    options: opts,
    servicePorts: [SERVICE_A, SERVICE_B],
    sources: { [SERVICE_A]: `127.0.1.1-${SOURCES_A}`, [SERVICE_B]: `127.0.2.1-${SOURCES_B}` },
    kindsPerMille: KINDS,
    playedMs,
    peakInFlight,
    ...count,
    failureSamples: failures,
    // what the peers left half-closed on purpose; the kernel (ss) has the last word: a client port freed
    // by an expired orphan FIN_WAIT_2 may be bound again, and that SYN ends the old CLOSE_WAIT socket
    intendedCloseWait: { server: count.serverLeaked, client: count.clientStuck },
  };
  fs.writeFileSync(opts.conns, `index\tkind\tport\tclient\toutcome\n${lines.join('\n')}\n`);
  fs.writeFileSync(opts.meta, `${JSON.stringify(meta, null, 2)}\n`);
  process.stderr.write(`[scale-peers] done in ${(playedMs / 1000).toFixed(1)} s: ${count.attempted} attempted, ${count.connected} connected, `
    + `${count.serverLeaked} server leaks, ${count.clientStuck} client-stuck, ${count.failures} failures\n`);
  process.stdout.write('DONE\n');
  // stay alive, every kept socket open, until the driver's SIGTERM (or the hard limit)
  setInterval(() => {}, 60_000);
}

main().catch((e) => {
  process.stderr.write(`scale-peers: ${e?.stack || e}\n`);
  process.stdout.write('FAILED\n');
  process.exit(1);
});
