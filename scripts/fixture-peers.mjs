#!/usr/bin/env node
// fixture-peers.mjs: plays one fixture scenario (servers and clients, plain `net`) on loopback.
//
// Driven by scripts/make-fixtures.sh inside a private network namespace:
//
//   node scripts/fixture-peers.mjs SCENARIO --meta META.json [--ctl CTLFILE] [--quick]
//
// Protocol with the driver (stdout lines):
//   READY   servers listen and any pre-capture state is set up. The script then waits for SIGUSR2
//           (the capture is running) before it plays the captured part.
//   DONE    the scenario has finished and META.json is written. Every socket the scenario wants
//           to leave behind (e.g. leaked CLOSE_WAIT sockets) is still open; the driver now takes
//           `ss` and stops tcpdump, then sends SIGTERM and the process exits.
// The process exits on its own after HARD_LIMIT_MS whatever happens.
//
// META.json: { scenario, description, servicePorts, connections, notes, expect: {...} }
// `connections` is counted here: every connect() made while the capture runs, plus every
// connection opened before the capture that is made to send at least one packet during it.
//
// No dependencies; all traffic goes to 127.0.0.0/8 or ::1.

import net from 'node:net';
import fs from 'node:fs';

const HARD_LIMIT_MS = 150_000;
const hardTimer = setTimeout(() => {
  process.stderr.write('fixture-peers: hard time limit reached, exiting\n');
  process.exit(3);
}, HARD_LIMIT_MS);

// ---------------------------------------------------------------------------------------------
// arguments

const argv = process.argv.slice(2);
const opts = { quick: false, meta: null, ctl: null };
const positional = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--quick') opts.quick = true;
  else if (a === '--meta') opts.meta = argv[++i];
  else if (a === '--ctl') opts.ctl = argv[++i];
  else if (a.startsWith('--')) fail(`unknown option ${a}`);
  else positional.push(a);
}
const scenarioName = positional[0];
if (!scenarioName || !opts.meta) fail('usage: fixture-peers.mjs SCENARIO --meta FILE [--ctl FILE] [--quick]');

function fail(msg) {
  process.stderr.write(`fixture-peers: ${msg}\n`);
  process.exit(2);
}

// ---------------------------------------------------------------------------------------------
// plumbing

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const keep = new Set(); // every socket we must not let the GC or anybody else close
let capturing = false;
let connections = 0;
const log = (...a) => process.stderr.write(`[peers ${scenarioName}] ${a.join(' ')}\n`);

const goSignal = new Promise((resolve) => process.once('SIGUSR2', resolve));
process.on('SIGTERM', () => process.exit(0));
process.on('SIGINT', () => process.exit(0));

/** Open a client connection; resolves once connected. Counted if the capture is running. */
function dial({ host, port, localAddress, localPort, allowHalfOpen = false, count = true }) {
  return new Promise((resolve, reject) => {
    const o = { host, port, allowHalfOpen };
    if (localAddress) o.localAddress = localAddress;
    if (localPort) o.localPort = localPort;
    const s = net.connect(o);
    s.counted = false;
    if (capturing && count) { connections++; s.counted = true; }
    keep.add(s);
    s.on('error', (e) => { s.lastError = e; });
    s.once('connect', () => resolve(s));
    s.once('close', () => { keep.delete(s); if (!s.connecting) return; reject(s.lastError || new Error('closed before connect')); });
    s.once('error', (e) => { if (s.connecting || !s.remotePort) reject(e); });
  });
}

/** A connection that existed before the capture starts and is made to send packets in it. */
function countPre(s) {
  if (!s.counted) { connections++; s.counted = true; }
}

/** Resolve true when the socket closes, false after ms. */
function closedWithin(s, ms) {
  if (s.destroyed && s.closed) return Promise.resolve(true);
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(false), ms);
    s.once('close', () => { clearTimeout(t); resolve(true); });
  });
}

/** Resolve with the first line received, or null after ms. */
function readLine(s, ms) {
  return new Promise((resolve) => {
    let buf = '';
    const onData = (d) => {
      buf += d.toString('latin1');
      const i = buf.indexOf('\n');
      if (i >= 0) { done(buf.slice(0, i)); }
    };
    const done = (v) => { clearTimeout(t); s.off('data', onData); s.off('close', onClose); resolve(v); };
    const onClose = () => done(null);
    const t = setTimeout(() => done(null), ms);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/** Read until `n` bytes have arrived (or ms). */
function readBytes(s, n, ms) {
  return new Promise((resolve) => {
    let got = 0;
    const onData = (d) => { got += d.length; if (got >= n) done(true); };
    const done = (v) => { clearTimeout(t); s.off('data', onData); s.off('close', onClose); resolve(v); };
    const onClose = () => done(got >= n);
    const t = setTimeout(() => done(false), ms);
    s.on('data', onData);
    s.once('close', onClose);
  });
}

/**
 * Health-check probe: connect, immediately end() (FIN), wait for the server's FIN, and give up
 * (close the fd: the kernel keeps an orphan FIN_WAIT_2) after holdMs.
 */
async function probe(target, { holdMs = 250 } = {}) {
  const s = await dial(target);
  s.end();
  s.resume();
  if (!(await closedWithin(s, holdMs))) s.destroy();
  return s;
}

/**
 * Request/response client: send "REQ id", wait for the answer line, then close first (end()),
 * wait for the server's FIN. If no answer comes within timeoutMs, give up: end() anyway,
 * and close the fd after holdMs.
 */
async function request(target, { id, timeoutMs = 400, holdMs = 250, body = '' } = {}) {
  const s = await dial(target);
  s.write(`REQ ${id}${body ? ' ' + body : ''}\n`);
  const line = await readLine(s, timeoutMs);
  s.end();
  s.resume();
  if (!(await closedWithin(s, holdMs))) s.destroy();
  return line;
}

/** Ask for n bytes ("BULK n"), read them, close first. */
async function bulk(target, n) {
  const s = await dial(target);
  s.write(`BULK ${n}\n`);
  await readBytes(s, n, 2000);
  s.end();
  s.resume();
  if (!(await closedWithin(s, 500))) s.destroy();
}

// ---------------------------------------------------------------------------------------------
// servers

/**
 * A TCP server with allowHalfOpen (Node never auto-closes when the peer's FIN arrives) and
 * pauseOnConnect (nothing is read from a socket until its behaviour resumes it).
 * decide(socket, acceptIndex) returns the behaviour for each accepted socket:
 *   'normal'       answer "REQ x" lines with "RESP x", "BULK n" with n bytes; on the peer's FIN
 *                  call end() (both sides close properly)
 *   'leak'         forget it: never read, never write, never close. The reference is kept,
 *                  so the kernel keeps the socket; after the peer's FIN it sits in CLOSE_WAIT.
 *   'close-first'  answer a request line, then end() immediately (server sends FIN first)
 *   {slowCloseMs}  like normal, but end() only slowCloseMs after the peer's FIN
 *   'answer-after-fin'  read the request, answer it only once the peer's FIN has come (a client that
 *                  sends its request and shuts down its side), then forget it: never close
 *   'stream-after-fin'  the same, but answer with a stream: 1 KiB every 100 ms until the process
 *                  exits (at most STREAM_LIMIT_MS), never closing: a half-close in use
 *   'flood-after-fin'  the same, but answer with 4 MiB at once: a peer that stops reading closes its
 *                  receive window, and the rest waits in the send queue
 */
function serve({ host, port, decide, name = `${host}:${port}` }) {
  const srv = net.createServer({ allowHalfOpen: true, pauseOnConnect: true });
  const state = { srv, name, accepted: 0, leaked: [], byPeer: new Map(), all: [] };
  srv.on('connection', (sock) => {
    const idx = state.accepted++;
    keep.add(sock);
    state.all.push(sock);
    sock.on('error', () => {});
    sock.on('close', () => keep.delete(sock));
    state.byPeer.set(`${sock.remoteAddress}|${sock.remotePort}`, sock);
    const mode = decide(sock, idx);
    sock.mode = mode;
    if (mode === 'leak') { state.leaked.push(sock); return; }
    behave(sock, mode);
  });
  srv.on('error', (e) => fail(`server ${name}: ${e.message}`));
  return new Promise((resolve) => srv.listen({ host, port, backlog: 511 }, () => resolve(state)));
}

const STREAM_LIMIT_MS = 60_000;

function behave(sock, mode) {
  const slowCloseMs = typeof mode === 'object' && mode ? mode.slowCloseMs : 0;
  const closeFirst = mode === 'close-first';
  const afterFin = mode === 'answer-after-fin' || mode === 'stream-after-fin' || mode === 'flood-after-fin';
  let buf = '';
  sock.on('data', (d) => {
    if (afterFin) return;
    buf += d.toString('latin1');
    let i;
    while ((i = buf.indexOf('\n')) >= 0) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      const m = /^BULK (\d+)/.exec(line);
      if (m) sock.write(Buffer.alloc(Number(m[1]), 0x61));
      else if (line.startsWith('REQ ')) sock.write(`RESP ${line.slice(4).split(' ')[0]}\n`);
      if (closeFirst && !sock.writableEnded) sock.end();
    }
  });
  sock.on('end', () => {
    if (sock.writableEnded) return;
    if (mode === 'answer-after-fin') return void sock.write(`RESP after-fin\n${'x'.repeat(4000)}\n`);
    if (mode === 'stream-after-fin') return void streamUntilExit(sock);
    if (mode === 'flood-after-fin') return void sock.write(Buffer.alloc(4 * 1024 * 1024, 0x66));
    if (slowCloseMs) setTimeout(() => { if (!sock.writableEnded) sock.end(); }, slowCloseMs);
    else sock.end();
  });
  sock.resume();
}

/** Writes 1 KiB every 100 ms, never closing, until the socket closes or STREAM_LIMIT_MS passes. */
function streamUntilExit(sock) {
  const chunk = Buffer.alloc(1024, 0x73);
  const timer = setInterval(() => { if (!sock.destroyed) sock.write(chunk); }, 100);
  const stop = () => clearInterval(timer);
  setTimeout(stop, STREAM_LIMIT_MS).unref();
  sock.once('close', stop);
}

const ip = (family, n) => (family === 'ipv6' ? '::1' : `127.0.0.${n}`);

// ---------------------------------------------------------------------------------------------
// scenarios. Each is { description, servicePorts, setup(): before the capture, run(ctx): during it }

const scenarios = {};

function incidentLike({ family = 'ipv4', ticks, tickMs = 50, unanswered = 2 }) {
  let leakMode = false;
  let srv;
  const H = (n) => ip(family, n);
  const target = (n) => ({ host: H(1), port: 20880, localAddress: H(n) });
  const plan = { ticks, tickMs, leakFrom: Math.floor(ticks * 0.4), leakTo: Math.floor(ticks * 0.6) };
  return {
    plan,
    async setup() {
      srv = await serve({ host: H(1), port: 20880, decide: () => (leakMode ? 'leak' : 'normal') });
    },
    async run() {
      const tasks = [];
      const unansweredAt = unanswered === 2 ? [plan.leakFrom + 1, plan.leakTo - 2] : unanswered === 1 ? [plan.leakFrom + 1] : [];
      for (let t = 0; t < ticks; t++) {
        leakMode = t >= plan.leakFrom && t < plan.leakTo;
        tasks.push(probe(target(2)));
        if (t % 2 === 0) tasks.push(request(target(3), { id: `n${t}` }));
        for (const u of unansweredAt) {
          if (u === t) tasks.push(request(target(4), { id: `u${t}`, body: 'payload-the-server-never-reads', timeoutMs: 300 }));
        }
        await sleep(tickMs);
      }
      leakMode = false;
      const res = await Promise.allSettled(tasks);
      const bad = res.filter((r) => r.status === 'rejected');
      if (bad.length) throw new Error(`${bad.length} client tasks failed: ${bad[0].reason}`);
      return { leakedByServer: srv.leaked.length, accepted: srv.accepted, expectCloseWait: srv.leaked.length };
    },
  };
}

scenarios.incident = (q) => {
  const s = incidentLike({ ticks: q ? 30 : 80 });
  return {
    description: 'Server 127.0.0.1:20880 serves request/response clients (127.0.0.3) and a health-check probe loop (127.0.0.2, connect+close every 50 ms). '
      + `During a leak window (ticks ${s.plan.leakFrom}..${s.plan.leakTo - 1} of ${s.plan.ticks}) every accepted socket is forgotten (never read, never closed), `
      + 'including two requests from 127.0.0.4 whose bytes are never read or answered. Forgotten sockets sit in CLOSE_WAIT after the client FIN.',
    servicePorts: [20880],
    setup: s.setup,
    run: s.run,
    notes: 'Normal clients close first (client TIME_WAIT); probes that hit the leak window leave an orphan FIN_WAIT_2 on the client and CLOSE_WAIT on the server. '
      + 'Leaked requests show a non-zero Recv-Q in the ss file.',
  };
};

scenarios.ipv6 = (q) => {
  const s = incidentLike({ family: 'ipv6', ticks: q ? 30 : 60 });
  return {
    description: 'The incident pattern on [::1]:20880: probes, request/response clients and two unanswered requests, all from ::1 (the only IPv6 loopback address), '
      + `with a leak window (ticks ${s.plan.leakFrom}..${s.plan.leakTo - 1} of ${s.plan.ticks}) in which every accepted socket is forgotten.`,
    servicePorts: [20880],
    setup: s.setup,
    run: s.run,
    notes: 'Clients differ only by ephemeral port. Endpoints are written [::1]:port.',
  };
};

scenarios.any = (q) => {
  const s = incidentLike({ ticks: q ? 20 : 40 });
  return {
    description: 'Incident-like traffic on 127.0.0.1:20880 captured with `tcpdump -i any -y LINUX_SLL2` (Linux cooked capture v2, link type 276).',
    servicePorts: [20880],
    setup: s.setup,
    run: s.run,
    notes: `Leak window ticks ${s.plan.leakFrom}..${s.plan.leakTo - 1} of ${s.plan.ticks}. On "any", libpcap drops the outgoing copy of loopback packets, so each packet appears once.`,
  };
};

scenarios.variants = (q) => {
  const s = incidentLike({ ticks: 20, unanswered: 1 });
  return {
    description: 'Small incident-like capture (127.0.0.1:20880, probes from 127.0.0.2, requests from 127.0.0.3, one unanswered request from 127.0.0.4, '
      + `leak window ticks ${s.plan.leakFrom}..${s.plan.leakTo - 1} of ${s.plan.ticks}), captured once with nanosecond timestamps and written in several container formats.`,
    servicePorts: [20880],
    setup: s.setup,
    run: s.run,
    notes: '',
  };
};

scenarios['two-services'] = (q) => {
  let leakMode = false;
  let a; let b;
  const ticks = q ? 20 : 40;
  const leakFrom = Math.floor(ticks * 0.4); const leakTo = Math.floor(ticks * 0.6);
  return {
    description: 'Two services on 127.0.0.1: port 20880 (leaks every accepted socket during a leak window) and port 8080 (always closes properly). '
      + 'Probes from 127.0.0.2 hit both every 50 ms; request/response clients from 127.0.0.3 (20880), 127.0.0.4 (8080) and 127.0.0.5 (20880).',
    servicePorts: [8080, 20880],
    notes: `Leak window ticks ${leakFrom}..${leakTo - 1} of ${ticks}; only port 20880 has CLOSE_WAIT sockets.`,
    async setup() {
      a = await serve({ host: '127.0.0.1', port: 20880, decide: () => (leakMode ? 'leak' : 'normal') });
      b = await serve({ host: '127.0.0.1', port: 8080, decide: () => 'normal' });
    },
    async run() {
      const tasks = [];
      const A = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
      const B = (n) => ({ host: '127.0.0.1', port: 8080, localAddress: `127.0.0.${n}` });
      for (let t = 0; t < ticks; t++) {
        leakMode = t >= leakFrom && t < leakTo;
        tasks.push(probe(A(2)), probe(B(2)));
        if (t % 2 === 0) tasks.push(request(A(3), { id: `a${t}` }), request(B(4), { id: `b${t}` }));
        if (t % 4 === 1) tasks.push(request(A(5), { id: `c${t}` }));
        await sleep(50);
      }
      leakMode = false;
      await allOk(tasks);
      return { leaked20880: a.leaked.length, leaked8080: b.leaked.length, expectCloseWait: a.leaked.length + b.leaked.length };
    },
  };
};

scenarios['client-stuck'] = () => {
  const stuckClients = [];
  return {
    description: 'Server 127.0.0.1:20880 answers one request and closes first (end() right after the response). Clients from 127.0.0.3 close when they see the FIN; '
      + 'clients from 127.0.0.4 use allowHalfOpen and never close, so the CLIENT side sits in CLOSE_WAIT (the server side in FIN_WAIT_2). Probes from 127.0.0.2 close first as usual.',
    servicePorts: [20880],
    notes: 'stuckSide is "client" for every entry: the stuck endpoint is the ephemeral client port, the peer is the service port.',
    async setup() {
      await serve({ host: '127.0.0.1', port: 20880, decide: () => 'close-first' });
    },
    async run() {
      const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
      const tasks = [];
      for (let i = 0; i < 10; i++) {
        tasks.push((async () => {
          const s = await dial(T(3));
          s.write(`REQ good${i}\n`);
          s.resume();
          if (!(await closedWithin(s, 1000))) s.destroy();
        })());
        if (i % 2 === 0) {
          tasks.push((async () => {
            const s = await dial({ ...T(4), allowHalfOpen: true });
            stuckClients.push(s);
            s.write(`REQ stuck${i}\n`);
            s.resume(); // reads the response and the FIN, but never calls end()
          })());
        }
        if (i % 3 === 0) tasks.push(probe(T(2)));
        await sleep(40);
      }
      await allOk(tasks);
      await sleep(200);
      return { stuckClients: stuckClients.length, expectCloseWait: stuckClients.length };
    },
  };
};

scenarios['slow-close'] = () => ({
  description: 'Server 127.0.0.1:20880 closes 1.0-2.0 s after the peer\'s FIN (it sits in CLOSE_WAIT meanwhile), all inside the capture: '
    + 'request/response clients from 127.0.0.3 and probes from 127.0.0.2. Nothing is stuck at the end.',
  servicePorts: [20880],
  notes: 'The capture keeps running >= 0.3 s after the last server FIN, so every connection is fully closed in it.',
  async setup() {
    await serve({ host: '127.0.0.1', port: 20880, decide: (s, i) => ({ slowCloseMs: 1000 + (i % 5) * 250 }) });
  },
  async run() {
    const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
    const tasks = [];
    for (let i = 0; i < 12; i++) {
      tasks.push(request(T(3), { id: `s${i}`, holdMs: 3000 }));
      if (i % 2 === 0) tasks.push(probe(T(2), { holdMs: 3000 }));
      await sleep(50);
    }
    await allOk(tasks);
    return { expectCloseWait: 0 };
  },
});

scenarios['client-slow-close'] = () => ({
  description: 'Server 127.0.0.1:20880 answers one request and closes first; clients from 127.0.0.3 (allowHalfOpen) close 1.0-2.0 s after '
    + 'the server\'s FIN (each client socket sits in CLOSE_WAIT meanwhile), all inside the capture. Probes from 127.0.0.2 close first '
    + 'as usual. Nothing is stuck at the end.',
  servicePorts: [20880],
  notes: 'The capture keeps running >= 0.3 s after the last client FIN, so every connection is fully closed in it.',
  async setup() {
    await serve({ host: '127.0.0.1', port: 20880, decide: () => 'close-first' });
  },
  async run() {
    const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
    const tasks = [];
    for (let i = 0; i < 12; i++) {
      const closeAfterMs = 1000 + (i % 5) * 250;
      tasks.push((async () => {
        const s = await dial({ ...T(3), allowHalfOpen: true });
        s.write(`REQ slow${i}\n`);
        s.resume();
        const serverFin = await Promise.race([new Promise((resolve) => s.once('end', () => resolve(true))), sleep(3000).then(() => false)]);
        if (!serverFin) fail(`client slow${i}: no FIN from the server within 3 s`);
        await sleep(closeAfterMs);
        s.end();
        if (!(await closedWithin(s, 1000))) s.destroy();
      })());
      if (i % 2 === 0) tasks.push(probe(T(2), { holdMs: 3000 }));
      await sleep(50);
    }
    await allOk(tasks);
    await sleep(300);
    return { expectCloseWait: 0 };
  },
});

scenarios['mid-stream'] = () => {
  let srv;
  const pre = {};
  const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
  const serverSock = (c) => srv.byPeer.get(`${c.localAddress}|${c.localPort}`);
  return {
    description: 'Connections opened BEFORE tcpdump starts (no handshake in the capture), then traffic and closes during the capture, plus a few new connections. '
      + 'Pre-capture: A1-A3 (127.0.0.3) idle, established; B1, B2 (127.0.0.4) already half-closed by the client and forgotten by the server (CLOSE_WAIT before the capture); '
      + 'C1 (127.0.0.5) half-closed by the client, server still holding it; D1 (127.0.0.6) established, forgotten by the server. '
      + 'During capture: A1-A3 do a request/response and close properly; the server writes late data on B1 (stays CLOSE_WAIT, no FIN of the client in the capture); '
      + 'B2 stays silent (no packet at all); the server finally closes C1 (only the server FIN is seen); D1 sends a request then FIN (CLOSE_WAIT, FIN visible, no SYN); '
      + 'new: 5 probes (127.0.0.2), 5 request/response clients (127.0.0.3), 1 probe from 127.0.0.7 that the server forgets (fully visible CLOSE_WAIT).',
    servicePorts: [20880],
    notes: 'B2 is in CLOSE_WAIT per ss but has no packet in the capture, so it is not counted in "connections" and cannot be seen by an analyzer. '
      + 'B1 is in CLOSE_WAIT but the client FIN that put it there predates the capture (only server data + client ACKs are visible). '
      + 'See closeWaitNotObservable. C1 is the opposite trap: only the server FIN and the client ACK are in the capture, so it looks like a client '
      + 'stuck in CLOSE_WAIT, but the client had sent its FIN before the capture (it ends in TIME_WAIT): see closeWaitLookalikes.',
    async setup() {
      srv = await serve({
        host: '127.0.0.1', port: 20880,
        decide: (s) => (['127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'].includes(s.remoteAddress) ? 'leak' : 'normal'),
      });
      pre.A = [await dial(T(3)), await dial(T(3)), await dial(T(3))];
      pre.B1 = await dial(T(4)); pre.B1.end(); pre.B1.resume();
      pre.B2 = await dial(T(4)); pre.B2.end(); pre.B2.resume();
      pre.C1 = await dial(T(5)); pre.C1.end(); pre.C1.resume();
      pre.D1 = await dial(T(6));
      await sleep(400); // let every pre-capture ACK go out before READY
    },
    async run() {
      const tasks = [];
      // A1..A3: request/response, client closes, server closes
      for (const [i, s] of pre.A.entries()) {
        countPre(s);
        tasks.push((async () => {
          s.write(`REQ pre${i}\n`);
          await readLine(s, 1000);
          s.end(); s.resume();
          if (!(await closedWithin(s, 1000))) s.destroy();
        })());
        await sleep(60);
      }
      // B1: the server writes on its CLOSE_WAIT socket
      countPre(pre.B1);
      serverSock(pre.B1).write('LATE DATA FROM A CLOSE_WAIT SOCKET\n');
      await sleep(60);
      // C1: the server finally closes
      countPre(pre.C1);
      serverSock(pre.C1).end();
      await sleep(60);
      // D1: request, then FIN; the server forgot it
      countPre(pre.D1);
      pre.D1.write('REQ d1 never-answered\n');
      pre.D1.end();
      pre.D1.resume();
      await sleep(60);
      for (let i = 0; i < 5; i++) {
        tasks.push(probe(T(2)));
        tasks.push(request(T(3), { id: `new${i}` }));
        await sleep(50);
      }
      tasks.push(probe(T(7)));
      await allOk(tasks);
      await sleep(200);
      return { expectCloseWait: 4 }; // B1, B2, D1 and the new probe from 127.0.0.7
    },
  };
};

scenarios['port-reuse'] = () => {
  const seenFrom6 = { n: 0 };
  const T = (n, localPort) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}`, localPort });
  return {
    description: 'Reuse of one 4-tuple. (A) 127.0.0.5:40001 -> 127.0.0.1:20880: request/response, the client closes first (client TIME_WAIT); '
      + '~1.2 s later the client connects again from the same port: tcp_tw_reuse (=1 in the netns) lets connect() recycle the TIME_WAIT, a normal new handshake follows. '
      + '(B) 127.0.0.6:40002 -> 127.0.0.1:20880: the server forgets the first connection (CLOSE_WAIT), the client closes (orphan FIN_WAIT_2, tcp_fin_timeout=1 in the netns). '
      + '~2.5 s later the client connects again from the same port: the SYN hits the CLOSE_WAIT socket, which answers with a challenge ACK; the client answers that with a RST '
      + '(killing the CLOSE_WAIT socket), retransmits the same SYN about 10 ms later (not after the 1 s RTO) and a new connection is established '
      + '(served normally and closed properly). '
      + '(C) one probe from 127.0.0.7 that the server forgets, which stays in CLOSE_WAIT.',
    servicePorts: [20880],
    notes: 'Tuple 127.0.0.5:40001 carries 2 connections and tuple 127.0.0.6:40002 carries 2 connections (the old CLOSE_WAIT one, ended by the RST, and the new one). '
      + 'Only 127.0.0.1:20880>127.0.0.7:* is in CLOSE_WAIT at the end.',
    sysctls: ['net.ipv4.tcp_fin_timeout=1', 'net.ipv4.tcp_tw_reuse=1'],
    async setup() {
      await serve({
        host: '127.0.0.1', port: 20880,
        decide: (s) => {
          if (s.remoteAddress === '127.0.0.6') return seenFrom6.n++ === 0 ? 'leak' : 'normal';
          if (s.remoteAddress === '127.0.0.7') return 'leak';
          return 'normal';
        },
      });
    },
    async run() {
      // (A)
      const line1 = await request(T(5, 40001), { id: 'reuse-1', holdMs: 1000 });
      if (!line1) throw new Error('port-reuse A: first request got no answer');
      await sleep(1200);
      const line2 = await request(T(5, 40001), { id: 'reuse-2', holdMs: 1000 });
      if (!line2) throw new Error('port-reuse A: second request got no answer');
      // (B)
      const old = await dial(T(6, 40002));
      old.end(); old.resume();
      await sleep(200);
      old.destroy(); // orphan FIN_WAIT_2 in the kernel, gone after tcp_fin_timeout (1 s)
      await sleep(2500);
      const t0 = Date.now();
      const s = await dial(T(6, 40002));
      const connectMs = Date.now() - t0;
      s.write('REQ after-rst\n');
      const line3 = await readLine(s, 1000);
      s.end(); s.resume();
      if (!(await closedWithin(s, 1000))) s.destroy();
      if (!line3) throw new Error('port-reuse B: request on the new connection got no answer');
      // (C)
      await probe(T(7));
      await sleep(200);
      return { secondConnectMs: connectMs, expectCloseWait: 1 };
    },
  };
};

scenarios['rst-after-close'] = () => {
  let srv;
  const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
  const forgotten = ['127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.8'];
  return {
    description: 'Peer FIN first, then later the stuck side ends it with a RST, so it is NOT stuck at the end. Server 127.0.0.1:20880 forgets every connection from '
      + '127.0.0.3, .4, .5 and .8. About 0.5 s after the client FINs the server reacts: 127.0.0.3 (3 probes) resetAndDestroy() -> RST (SO_LINGER 0); '
      + '127.0.0.8 (3 requests whose bytes were never read) destroy() -> the kernel sends RST because of unread data; 127.0.0.5 (2 probes) destroy() -> plain FIN (late close). '
      + '127.0.0.4: 2 probes and 2 unanswered requests that stay in CLOSE_WAIT. Plus 10 normal probes from 127.0.0.2.',
    servicePorts: [20880],
    notes: 'Only the four 127.0.0.4 connections are in CLOSE_WAIT at the end. The RST from the server follows the client FIN by ~0.5 s; '
      + 'the clients of .3/.5/.8 have by then closed their fds (orphan FIN_WAIT_2), which is irrelevant to the RST.',
    async setup() {
      srv = await serve({ host: '127.0.0.1', port: 20880, decide: (s) => (forgotten.includes(s.remoteAddress) ? 'leak' : 'normal') });
    },
    async run() {
      const tasks = [];
      for (let i = 0; i < 10; i++) {
        tasks.push(probe(T(2)));
        if (i < 3) tasks.push(probe(T(3)), request(T(8), { id: `r${i}`, body: 'unread', timeoutMs: 200 }));
        if (i < 2) tasks.push(probe(T(5)), probe(T(4)), request(T(4), { id: `k${i}`, body: 'unread', timeoutMs: 200 }));
        await sleep(30);
      }
      await allOk(tasks);
      await sleep(500);
      for (const s of srv.leaked) {
        if (s.remoteAddress === '127.0.0.3') s.resetAndDestroy();
        else if (s.remoteAddress === '127.0.0.8') s.destroy();
        else if (s.remoteAddress === '127.0.0.5') s.destroy();
        await sleep(20);
      }
      await sleep(200);
      return { leaked: srv.leaked.length, expectCloseWait: srv.leaked.filter((x) => x.remoteAddress === '127.0.0.4').length };
    },
  };
};

scenarios.rotated = () => {
  let srv;
  const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
  return {
    description: 'One run captured with `tcpdump -G 1` (a new file every wall-clock second, renamed to rotated.pcap, rotated.pcap1 .. rotated.pcap4). '
      + 'Five phases, one per second: L1-L3 (127.0.0.4) connect in file 0, L4 in file 1; their client FINs come in files 1, 2, 3, 3, so every stuck '
      + 'connection has its handshake and its FIN in different files. LongA (127.0.0.3) opens in file 0 and closes properly in file 4. '
      + 'Each phase also has 5 probes (127.0.0.2) and one 16 KB bulk transfer (127.0.0.3).',
    servicePorts: [20880],
    notes: 'The server forgets every connection from 127.0.0.4 (L1-L4), which end in CLOSE_WAIT.',
    needsStartSecond: true,
    async setup() {
      srv = await serve({ host: '127.0.0.1', port: 20880, decide: (s) => (s.remoteAddress === '127.0.0.4' ? 'leak' : 'normal') });
    },
    async run(ctx) {
      const S = ctx.startSecond;
      const now = Date.now() / 1000;
      if (now > S + 0.45) throw new Error(`rotated: started too late in the capture second (${(now - S).toFixed(3)} s)`);
      const at = async (k) => { const ms = (S + k + 0.5) * 1000 - Date.now(); if (ms > 0) await sleep(ms); };
      const L = [];
      let longA;
      const phaseFill = async (k) => {
        const ps = [];
        for (let i = 0; i < 5; i++) ps.push(probe(T(2)));
        ps.push(bulk(T(3), 16384));
        await allOk(ps);
      };
      await at(0);
      L.push(await dial(T(4)), await dial(T(4)), await dial(T(4)));
      longA = await dial(T(3));
      await phaseFill(0);
      await at(1);
      L[0].end();
      L.push(await dial(T(4)));
      await phaseFill(1);
      await at(2);
      L[1].write('REQ l2 never-answered\n');
      L[1].end();
      await phaseFill(2);
      await at(3);
      L[2].end();
      L[3].end();
      await phaseFill(3);
      await at(4);
      longA.write('REQ longA\n');
      await readLine(longA, 500);
      longA.end(); longA.resume();
      await closedWithin(longA, 300);
      await phaseFill(4);
      for (const s of L) s.resume();
      const end = (S + 4.85) * 1000 - Date.now();
      if (end > 0) await sleep(end);
      if (Date.now() / 1000 > S + 4.97) throw new Error('rotated: phases overran the fifth second');
      return { expectCloseWait: L.length };
    },
  };
};

scenarios['probes-2000'] = () => {
  const leakSet = new Set();
  for (let i = 0; i < 2000; i++) if ([3, 9, 16].includes(i % 20)) leakSet.add(i);
  let srv;
  return {
    description: '2000 health-check probes (127.0.0.2 -> 127.0.0.1:20880, connect + immediate close, one started every ~2 ms, at most 20 in flight). '
      + 'The server forgets exactly 300 of them (accept index i with i mod 20 in {3, 9, 16}), which stay in CLOSE_WAIT.',
    servicePorts: [20880],
    notes: 'Forgotten probes leave an orphan FIN_WAIT_2 on the client side (the client closes its fd after 100 ms).',
    async setup() {
      srv = await serve({ host: '127.0.0.1', port: 20880, decide: (s, i) => (leakSet.has(i) ? 'leak' : 'normal') });
    },
    async run() {
      let inFlight = 0; let started = 0; let failed = 0;
      const done = [];
      const T = { host: '127.0.0.1', port: 20880, localAddress: '127.0.0.2' };
      const deadline = Date.now() + 60_000;
      while (started < 2000) {
        if (Date.now() > deadline) throw new Error('probes-2000: took too long');
        if (inFlight >= 20) { await sleep(1); continue; }
        inFlight++; started++;
        done.push(probe(T, { holdMs: 100 }).catch(() => { failed++; }).finally(() => { inFlight--; }));
        await sleep(2);
      }
      await Promise.all(done);
      if (failed) throw new Error(`${failed} probes failed`);
      if (srv.accepted !== 2000 || srv.leaked.length !== 300) throw new Error(`accepted ${srv.accepted}, leaked ${srv.leaked.length}`);
      await sleep(200);
      return { accepted: srv.accepted, leaked: srv.leaked.length, expectCloseWait: srv.leaked.length };
    },
  };
};

scenarios['half-close-sending'] = () => {
  const pairs = { stillSending: [] };
  return {
    description: 'Clients half-close (send a request, then shutdown their side) to 127.0.0.1:20880: from 127.0.0.3 the server answers with a '
      + 'stream that is still flowing when the capture ends (CLOSE_WAIT in use, not stuck); from 127.0.0.6 it answers with 4 MiB that the '
      + 'clients never read (their receive window closes: CLOSE_WAIT with a full send queue, not stuck); from 127.0.0.4 it answers once after '
      + 'the FIN and then never closes (stuck, silent for 6 s at the end). Probes from 127.0.0.2 are forgotten (stuck), requests from '
      + '127.0.0.5 close normally.',
    servicePorts: [20880],
    notes: 'ss lists the 127.0.0.3 and 127.0.0.6 connections as CLOSE-WAIT: they are in truth.closeWaitStillSending, not stuck.',
    async setup() {
      const byClient = { '127.0.0.2': 'leak', '127.0.0.3': 'stream-after-fin', '127.0.0.4': 'answer-after-fin', '127.0.0.6': 'flood-after-fin' };
      await serve({ host: '127.0.0.1', port: 20880, decide: (s) => byClient[s.remoteAddress] ?? 'normal' });
    },
    async run() {
      const T = (n) => ({ host: '127.0.0.1', port: 20880, localAddress: `127.0.0.${n}` });
      const halfClose = async (n, id, { read = true } = {}) => {
        const s = await dial({ ...T(n), allowHalfOpen: true });
        s.write(`REQ ${id}\n`);
        s.end();
        if (read) s.resume();
        return s;
      };
      const inUse = (s) => pairs.stillSending.push({ stuck: '127.0.0.1:20880', peer: `${s.localAddress}:${s.localPort}` });
      const tasks = [];
      for (let i = 0; i < 3; i++) {
        tasks.push(halfClose(3, `stream${i}`).then(inUse));
        if (i < 2) tasks.push(halfClose(6, `flood${i}`, { read: false }).then(inUse));
        tasks.push(halfClose(4, `answer${i}`));
        tasks.push(probe(T(2), { holdMs: 200 }));
        tasks.push(request(T(5), { id: `n${i}` }));
        await sleep(50);
      }
      await allOk(tasks);
      await sleep(6500);
      return { expectCloseWait: 11, stillSending: pairs.stillSending };
    },
  };
};

async function allOk(tasks) {
  const res = await Promise.allSettled(tasks);
  const bad = res.filter((r) => r.status === 'rejected');
  if (bad.length) throw new Error(`${bad.length} client tasks failed: ${bad[0].reason?.stack || bad[0].reason}`);
}

// ---------------------------------------------------------------------------------------------
// main

async function main() {
  const factory = scenarios[scenarioName];
  if (!factory) fail(`unknown scenario ${scenarioName}; known: ${Object.keys(scenarios).join(', ')}`);
  const sc = factory(opts.quick);
  if ((sc.sysctls || []).length && process.env.FIXTURE_NETNS !== '1') {
    fail('this scenario changes TCP sysctls: run it through make-fixtures.sh (private network namespace), not directly');
  }
  for (const kv of sc.sysctls || []) {
    const [k, v] = kv.split('=');
    fs.writeFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, `${v}\n`);
    log(`sysctl ${k}=${fs.readFileSync(`/proc/sys/${k.replaceAll('.', '/')}`, 'utf8').trim()}`);
  }
  await sc.setup();
  process.stdout.write('READY\n');
  await goSignal;
  capturing = true;
  const ctx = {};
  if (opts.ctl) {
    try { Object.assign(ctx, JSON.parse(fs.readFileSync(opts.ctl, 'utf8'))); } catch { /* optional */ }
  }
  if (sc.needsStartSecond && typeof ctx.startSecond !== 'number') throw new Error('this scenario needs startSecond in --ctl');
  const t0 = Date.now();
  const result = (await sc.run(ctx)) || {};
  await sleep(300); // let delayed ACKs and the last FIN/ACK exchanges reach the wire
  const meta = {
    scenario: scenarioName,
    description: sc.description,
    servicePorts: sc.servicePorts,
    connections,
    expectCloseWait: result.expectCloseWait,
    notes: sc.notes,
    quick: opts.quick,
    runMs: Date.now() - t0,
    result,
  };
  fs.writeFileSync(opts.meta, JSON.stringify(meta, null, 2) + '\n');
  log(`done: ${connections} connections, ${JSON.stringify(result)}`);
  process.stdout.write('DONE\n');
  // stay alive (with every leaked socket open) until the driver sends SIGTERM
}

main().catch((e) => {
  process.stderr.write(`fixture-peers: scenario ${scenarioName} failed: ${e?.stack || e}\n`);
  process.stdout.write('FAILED\n');
  process.exit(1);
});
