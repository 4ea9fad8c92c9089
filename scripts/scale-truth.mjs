#!/usr/bin/env node
// scale-truth.mjs: the kernel's answer for the scale capture (scripts/make-scale-capture.sh), and
// closewait's report checked against it.
//
//   node scripts/scale-truth.mjs --meta META.json --ss SS.txt --capture FILE.pcap --out TRUTH.json
//        [--report REPORT.json --compare-out COMPARE.json]
//
// The truth is `ss -tan` taken inside the namespace just before tcpdump stopped: every CLOSE-WAIT
// socket on a service port (stuck = ss Local, peer = ss Peer, side = server when Local is a service
// port). Beside it, to explain any difference, an independent look at the wire: the capture is read
// once, streaming (classic pcap, Ethernet or Linux cooked, IPv4), and each 4-tuple is split into
// connections by the client's SYN sequence number. Per connection: SYNs (and retransmissions), FINs,
// whether each FIN was ACKed, RSTs. A RST whose sequence number is the previous connection's
// "client FIN + 1" on the same tuple is the client's answer to the challenge ACK of a socket still
// in CLOSE_WAIT (or TIME_WAIT) and belongs to that previous connection, not to the new handshake.
//
// With --report (closewait's `analyze --format json`), writes COMPARE.json and prints a summary:
// the stuck sets (closewait vs ss vs wire), by side, connections, resets, packets; exit 1 when
// closewait's CLOSE_WAIT set or counts differ from the kernel's.

import fs from 'node:fs';

const argv = process.argv.slice(2);
const o = {};
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const key = { '--meta': 'meta', '--ss': 'ss', '--capture': 'capture', '--out': 'out', '--report': 'report', '--compare-out': 'compareOut' }[a];
  if (!key || i + 1 >= argv.length) die(`unknown or incomplete argument ${a}`);
  o[key] = argv[++i];
}
if (!o.meta || !o.ss || !o.capture || !o.out) die('need --meta, --ss, --capture and --out');
if (o.report && !o.compareOut) die('--report needs --compare-out');

function die(msg) {
  console.error(`scale-truth: ${msg}`);
  process.exit(2);
}

const meta = JSON.parse(fs.readFileSync(o.meta, 'utf8'));
const ports = meta.servicePorts;
const isService = (port) => ports.includes(port);

// ---- ss ----------------------------------------------------------------------------------------
const portOf = (ep) => Number(ep.slice(ep.lastIndexOf(':') + 1));
const ssRows = [];
for (const line of fs.readFileSync(o.ss, 'utf8').split('\n')) {
  const f = line.trim().split(/\s+/);
  if (f.length < 5 || f[0] === 'State') continue;
  ssRows.push({ state: f[0], local: f[3], peer: f[4] });
}
const ssStates = {};
for (const r of ssRows) if (isService(portOf(r.local)) || isService(portOf(r.peer))) ssStates[r.state] = (ssStates[r.state] || 0) + 1;
const ssCloseWait = new Map(); // "stuck>peer" -> side
for (const r of ssRows) {
  if (r.state !== 'CLOSE-WAIT' || !(isService(portOf(r.local)) || isService(portOf(r.peer)))) continue;
  ssCloseWait.set(`${r.local}>${r.peer}`, isService(portOf(r.local)) ? 'server' : 'client');
}

// ---- the wire ----------------------------------------------------------------------------------
const ipText = (buf, at) => `${buf[at]}.${buf[at + 1]}.${buf[at + 2]}.${buf[at + 3]}`;
const seqAtLeast = (a, b) => ((a - b) | 0) >= 0;

const tuples = new Map(); // "a|b" (sorted endpoints) -> { conns: [conn] }
const wire = { packets: 0, bytes: 24, tcp: 0, other: 0, synRetransmits: 0, challengeRsts: 0, firstTs: null, lastTs: null };

function newConn(client, server, isn, ts, synSeen) {
  return { client, server, isn, synSeen, syns: synSeen ? 1 : 0, synAck: false, start: ts, packets: 0, fin: {}, finAcked: {}, closedAfterFin: {}, rst: null, rstCount: 0, lastTs: ts };
}

function onSegment(ts, src, dst, flags, seq, ack, payload) {
  const key = src < dst ? `${src}|${dst}` : `${dst}|${src}`;
  let t = tuples.get(key);
  const syn = (flags & 0x02) !== 0;
  const ackf = (flags & 0x10) !== 0;
  const fin = (flags & 0x01) !== 0;
  const rst = (flags & 0x04) !== 0;
  if (!t) {
    t = { conns: [] };
    tuples.set(key, t);
  }
  let c = t.conns[t.conns.length - 1];
  if (syn && !ackf) {
    if (c && c.client === src && c.isn === seq) {
      c.syns++;
      wire.synRetransmits++;
    } else {
      c = newConn(src, dst, seq, ts, true);
      t.conns.push(c);
    }
  } else if (!c) {
    // first seen mid-stream: the side on a service port is the server
    const server = isService(portOf(src)) ? src : dst;
    c = newConn(server === src ? dst : src, server, null, ts, false);
    t.conns.push(c);
  }
  if (rst && t.conns.length > 1 && !c.synAck) {
    const prev = t.conns[t.conns.length - 2];
    const prevClientFin = prev.fin[src];
    if (prevClientFin !== undefined && seq === ((prevClientFin + 1) >>> 0)) {
      prev.rst = prev.rst || { from: src, ts, challenge: true };
      prev.rstCount++;
      prev.packets++;
      wire.challengeRsts++;
      return;
    }
  }
  c.packets++;
  c.lastTs = ts;
  if (syn && ackf) c.synAck = true;
  const other = src === c.client ? c.server : c.client;
  if (rst) {
    c.rst = c.rst || { from: src, ts };
    c.rstCount++;
  }
  if (fin && c.fin[src] === undefined) c.fin[src] = (seq + payload) >>> 0;
  if (c.fin[other] !== undefined && (fin || rst)) c.closedAfterFin[src] = true;
  if (ackf && c.fin[other] !== undefined && !c.finAcked[other] && seqAtLeast(ack, (c.fin[other] + 1) >>> 0)) c.finAcked[other] = ts;
}

function readPcap(file) {
  const fd = fs.openSync(file, 'r');
  const chunkSize = 8 << 20;
  let buf = Buffer.alloc(chunkSize);
  let have = 0;
  let pos = 0;
  let eof = false;
  const fill = () => {
    if (pos > 0) { buf.copy(buf, 0, pos, have); have -= pos; pos = 0; }
    while (!eof && have < buf.length) {
      const n = fs.readSync(fd, buf, have, buf.length - have, null);
      if (n === 0) eof = true;
      have += n;
    }
  };
  fill();
  if (have < 24) die(`${file}: not a pcap file (too short)`);
  const magic = buf.readUInt32LE(0);
  let le;
  let nano;
  if (magic === 0xa1b2c3d4) { le = true; nano = false; } else if (magic === 0xa1b23c4d) { le = true; nano = true; } else if (magic === 0xd4c3b2a1) { le = false; nano = false; } else if (magic === 0x4d3cb2a1) { le = false; nano = true; } else die(`${file}: not a classic pcap file (magic ${magic.toString(16)})`);
  const u32 = (at) => (le ? buf.readUInt32LE(at) : buf.readUInt32BE(at));
  const linktype = u32(20) & 0x0fffffff;
  const l2 = { 1: 14, 113: 16 }[linktype];
  if (l2 === undefined) die(`${file}: link type ${linktype} is not handled here (Ethernet or Linux cooked only)`);
  pos = 24;
  let truncated = false;
  for (;;) {
    if (have - pos < 16) {
      fill();
      if (have - pos < 16) { truncated = have - pos > 0; break; }
    }
    const sec = u32(pos);
    const frac = u32(pos + 4);
    const caplen = u32(pos + 8);
    if (caplen > 262_144) die(`${file}: impossible record length ${caplen} at packet ${wire.packets + 1}`);
    if (have - pos < 16 + caplen) {
      if (buf.length < 16 + caplen) { const bigger = Buffer.alloc(16 + caplen); buf.copy(bigger, 0, pos, have); have -= pos; pos = 0; buf = bigger; }
      fill();
      if (have - pos < 16 + caplen) { truncated = true; break; }
    }
    const ts = sec + frac / (nano ? 1e9 : 1e6);
    const at = pos + 16;
    wire.packets++;
    wire.bytes += 16 + caplen;
    if (wire.firstTs === null) wire.firstTs = ts;
    wire.lastTs = ts;
    pos = at + caplen;
    const ethType = buf.readUInt16BE(at + l2 - 2);
    const ip = at + l2;
    if (ethType !== 0x0800 || caplen < l2 + 20 || buf[ip + 9] !== 6) { wire.other++; continue; }
    const ihl = (buf[ip] & 0x0f) * 4;
    const totalLength = buf.readUInt16BE(ip + 2);
    const tcp = ip + ihl;
    const dataOffset = (buf[tcp + 12] >> 4) * 4;
    const payload = totalLength - ihl - dataOffset;
    const src = `${ipText(buf, ip + 12)}:${buf.readUInt16BE(tcp)}`;
    const dst = `${ipText(buf, ip + 16)}:${buf.readUInt16BE(tcp + 2)}`;
    wire.tcp++;
    onSegment(ts, src, dst, buf[tcp + 13], buf.readUInt32BE(tcp + 4), buf.readUInt32BE(tcp + 8), payload);
  }
  fs.closeSync(fd);
  return { linktype, nano, truncated };
}

const started = Date.now();
const capInfo = readPcap(o.capture);

// per connection verdict at the end of the capture
const wireStuck = new Map(); // "stuck>peer" -> { side, conn }
const ends = { closed: 0, reset: 0, open: 0, halfClosedNotAcked: 0, stuck: 0 };
const resetsBy = { client: 0, server: 0, challengeAck: 0 };
const resetsAfterFin = []; // RSTs (not challenge-ACK answers) on connections where a FIN was sent first: a sample
let connections = 0;
let connectionsWithoutSyn = 0;
let tuplesReused = 0;
for (const t of tuples.values()) {
  if (t.conns.length > 1) tuplesReused++;
  for (const c of t.conns) {
    connections++;
    if (!c.synSeen) connectionsWithoutSyn++;
    if (c.rst) {
      ends.reset++;
      const by = c.rst.challenge ? 'challengeAck' : c.rst.from === c.client ? 'client' : 'server';
      resetsBy[by]++;
      const finners = Object.keys(c.fin);
      if (finners.length && !c.rst.challenge && resetsAfterFin.length < 20) resetsAfterFin.push({ client: c.client, server: c.server, rstFrom: by, rstTs: c.rst.ts, finFrom: finners });
      continue;
    }
    const finners = Object.keys(c.fin);
    if (finners.length === 2) { ends.closed++; continue; }
    if (finners.length === 0) { ends.open++; continue; }
    const peer = finners[0];
    const stuck = peer === c.client ? c.server : c.client;
    if (!c.finAcked[peer]) { ends.halfClosedNotAcked++; continue; }
    ends.stuck++;
    wireStuck.set(`${stuck}>${peer}`, { side: stuck === c.server ? 'server' : 'client', conn: c });
  }
}

const sideCount = (m) => {
  const n = { server: 0, client: 0 };
  for (const v of m.values()) n[typeof v === 'string' ? v : v.side]++;
  return n;
};
const diff = (a, b) => [...a.keys()].filter((k) => !b.has(k)).sort();
const describe = (k) => {
  const [stuck, peer] = k.split('>');
  const key = stuck < peer ? `${stuck}|${peer}` : `${peer}|${stuck}`;
  const t = tuples.get(key);
  if (!t) return { tuple: k, wire: 'no packet of this 4-tuple in the capture' };
  return {
    tuple: k,
    wire: t.conns.map((c) => ({
      client: c.client,
      isn: c.isn,
      syns: c.syns,
      synAck: c.synAck,
      packets: c.packets,
      start: c.start,
      last: c.lastTs,
      fins: Object.fromEntries(Object.entries(c.fin).map(([ep]) => [ep, { acked: c.finAcked[ep] ? c.finAcked[ep] : false }])),
      rst: c.rst,
    })),
  };
};

const truth = {
  generatedBy: 'scripts/scale-truth.mjs',
  captureFile: o.capture,
  servicePorts: ports,
  capture: { ...capInfo, packets: wire.packets, bytes: wire.bytes, tcpPackets: wire.tcp, otherPackets: wire.other, firstTs: wire.firstTs, lastTs: wire.lastTs, seconds: wire.lastTs - wire.firstTs },
  peers: {
    attempted: meta.attempted,
    connected: meta.connected,
    connectErrors: meta.connectErrors,
    accepted: meta.accepted,
    clientResets: meta.clientResets,
    serverResets: meta.serverResets,
    intendedCloseWait: meta.intendedCloseWait,
    leakedClientFdsClosed: meta.leakedClientFdsClosed,
    failures: meta.failures,
    playedMs: meta.playedMs,
  },
  ss: {
    statesOnServicePorts: ssStates,
    closeWait: ssCloseWait.size,
    closeWaitBySide: sideCount(ssCloseWait),
  },
  wire: {
    connections,
    connectionsWithoutSyn,
    tuples: tuples.size,
    tuplesReused,
    synRetransmits: wire.synRetransmits,
    challengeAckRsts: wire.challengeRsts,
    ends,
    resetsBy,
    resetsAfterFin,
    closeWait: wireStuck.size,
    closeWaitBySide: sideCount(wireStuck),
    ssNotOnWire: diff(ssCloseWait, wireStuck).map(describe),
    wireNotInSs: diff(wireStuck, ssCloseWait).map(describe),
  },
  closeWait: [...ssCloseWait.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([k, side]) => {
    const [stuck, peer] = k.split('>');
    return { stuck, peer, side };
  }),
  readSeconds: (Date.now() - started) / 1000,
};
fs.writeFileSync(o.out, `${JSON.stringify(truth, null, 1)}\n`);
console.log(`scale-truth: ${wire.packets} packets, ${wire.bytes} bytes; wire: ${connections} connections (${connectionsWithoutSyn} without SYN, `
  + `${tuplesReused} tuples reused, ${wire.synRetransmits} SYN retransmissions), ends ${JSON.stringify(ends)}, resets by ${JSON.stringify(resetsBy)}; `
  + `ss CLOSE-WAIT ${ssCloseWait.size} ${JSON.stringify(sideCount(ssCloseWait))}, wire ${wireStuck.size}; `
  + `ss-not-on-wire ${truth.wire.ssNotOnWire.length}, wire-not-in-ss ${truth.wire.wireNotInSs.length}`);

// ---- closewait vs the kernel ---------------------------------------------------------------------
if (o.report) {
  const report = JSON.parse(fs.readFileSync(o.report, 'utf8'));
  const ep = (e) => (e.ip.includes(':') ? `[${e.ip}]:${e.port}` : `${e.ip}:${e.port}`);
  const cw = new Map();
  for (const f of report.findings) {
    if (f.kind !== 'close-wait') continue;
    const stuck = f.stuckSide === 'server' ? f.server : f.client;
    const peer = f.stuckSide === 'server' ? f.client : f.server;
    cw.set(`${ep(stuck)}>${ep(peer)}`, f.stuckSide);
  }
  const s = report.summary;
  const sideMismatch = [...cw.entries()].filter(([k, side]) => ssCloseWait.has(k) && ssCloseWait.get(k) !== side).map(([k]) => k);
  const compare = {
    closewait: { packets: s.packets, tcpPackets: s.tcpPackets, connections: s.connections, closeWait: s.closeWait, closeWaitServerSide: s.closeWaitServerSide, closeWaitClientSide: s.closeWaitClientSide, reset: s.reset, closed: s.closed, openAtEnd: s.openAtEnd, evicted: s.evicted, findings: cw.size, warnings: report.warnings },
    kernel: { closeWait: ssCloseWait.size, ...sideCount(ssCloseWait) },
    wire: { packets: wire.packets, connections, reset: ends.reset, closed: ends.closed, open: ends.open + ends.halfClosedNotAcked, closeWait: wireStuck.size },
    peers: { attempted: meta.attempted, connected: meta.connected, closedOutcomes: meta.outcome?.closed ?? null, clientResets: meta.clientResets, serverResets: meta.serverResets },
    wireResetsBy: resetsBy,
    wireResetsAfterFin: resetsAfterFin,
    closewaitNotInSs: diff(cw, ssCloseWait).map(describe),
    ssNotInClosewait: diff(ssCloseWait, cw).map(describe),
    sideMismatch,
  };
  compare.exact = compare.closewaitNotInSs.length === 0 && compare.ssNotInClosewait.length === 0 && sideMismatch.length === 0
    && s.closeWait === ssCloseWait.size && s.closeWaitServerSide === sideCount(ssCloseWait).server && s.closeWaitClientSide === sideCount(ssCloseWait).client;
  fs.writeFileSync(o.compareOut, `${JSON.stringify(compare, null, 1)}\n`);
  console.log(`compare: closewait closeWait ${s.closeWait} (server ${s.closeWaitServerSide}, client ${s.closeWaitClientSide}) vs ss ${ssCloseWait.size} `
    + `${JSON.stringify(sideCount(ssCloseWait))}; closewait-not-in-ss ${compare.closewaitNotInSs.length}, ss-not-in-closewait ${compare.ssNotInClosewait.length}, side mismatches ${sideMismatch.length}`);
  console.log(`compare: connections closewait ${s.connections}, wire ${connections}, peers connected ${meta.connected} (attempted ${meta.attempted}); `
    + `resets closewait ${s.reset}, wire ${ends.reset} (client ${resetsBy.client}, server ${resetsBy.server}, answers to a challenge ACK ${resetsBy.challengeAck}), `
    + `deliberate ${meta.clientResets + meta.serverResets} (client ${meta.clientResets}, server ${meta.serverResets}); `
    + `packets closewait ${s.packets}, pcap ${wire.packets}; closed closewait ${s.closed}, wire ${ends.closed}`);
  console.log(compare.exact ? 'compare: EXACT (closewait = kernel)' : 'compare: DIFFERENT (see the compare file)');
  if (!compare.exact) process.exitCode = 1;
}
