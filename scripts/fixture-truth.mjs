#!/usr/bin/env node
// fixture-truth.mjs: build <name>.truth.json from the scenario's bookkeeping (META.json written by
// fixture-peers.mjs), the raw `ss -tan` output taken just before tcpdump stopped, and the capture
// file(s). The capture is used only to cross-check the bookkeeping:
//   - connections: the count from fixture-peers.mjs must equal the number of connections seen in
//     the capture (4-tuples, split by distinct SYN sequence numbers); a mismatch is an error.
//   - every CLOSE-WAIT socket from ss is checked for visibility in the capture; sockets with no
//     packet, or whose peer FIN is not in the capture, are listed in closeWaitNotObservable.
//
//   node scripts/fixture-truth.mjs --meta META --ss SS --out OUT.truth.json [--scenario NAME]
//        [--description TEXT] [--notes-append TEXT] [--extra JSON] [--name-files-as BASENAME...]
//        CAPTURE [CAPTURE...]

import fs from 'node:fs';
import path from 'node:path';
import os from 'node:os';
import { readCapture, tcpBookkeeping } from './pcap-lite.mjs';

const argv = process.argv.slice(2);
const o = { extra: {}, captures: [], notesAppend: '', description: null, scenario: null };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--meta') o.meta = argv[++i];
  else if (a === '--ss') o.ss = argv[++i];
  else if (a === '--out') o.out = argv[++i];
  else if (a === '--scenario') o.scenario = argv[++i];
  else if (a === '--description') o.description = argv[++i];
  else if (a === '--notes-append') o.notesAppend = argv[++i];
  else if (a === '--extra') o.extra = JSON.parse(argv[++i]);
  else if (a.startsWith('--')) die(`unknown option ${a}`);
  else o.captures.push(a);
}
if (!o.meta || !o.ss || !o.out || o.captures.length === 0) die('need --meta, --ss, --out and at least one capture');

function die(msg) {
  console.error(`fixture-truth: ${msg}`);
  process.exit(1);
}

const meta = JSON.parse(fs.readFileSync(o.meta, 'utf8'));
const ports = meta.servicePorts;
const scenario = o.scenario || meta.scenario;

// ---- ss ----------------------------------------------------------------------------------------
export function parseSs(text) {
  const rows = [];
  for (const line of text.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 5 || f[0] === 'State') continue;
    rows.push({ state: f[0], recvQ: Number(f[1]), sendQ: Number(f[2]), local: f[3], peer: f[4] });
  }
  return rows;
}
const portOf = (ep) => Number(ep.slice(ep.lastIndexOf(':') + 1));
const ssRows = parseSs(fs.readFileSync(o.ss, 'utf8'));
const inFilter = (r) => ports.includes(portOf(r.local)) || ports.includes(portOf(r.peer));
const closeWait = ssRows
  .filter((r) => r.state === 'CLOSE-WAIT' && inFilter(r))
  .map((r) => ({ stuck: r.local, peer: r.peer }))
  .sort((a, b) => cmp(`${a.stuck}>${a.peer}`, `${b.stuck}>${b.peer}`));
function cmp(a, b) { return a < b ? -1 : a > b ? 1 : 0; }
const stuckSide = {};
for (const c of closeWait) stuckSide[`${c.stuck}>${c.peer}`] = ports.includes(portOf(c.stuck)) ? 'server' : 'client';

// ---- capture cross-check -----------------------------------------------------------------------
const caps = o.captures.map((f) => ({ file: f, ...readCapture(fs.readFileSync(f)) }));
const book = tcpBookkeeping(caps, ports);
const problems = [];
if (book.connections !== meta.connections) {
  problems.push(`connection count mismatch: scenario counted ${meta.connections}, capture shows ${book.connections}`);
}

// Connections the scenario keeps sending on after the peer's FIN: CLOSE-WAIT in ss, in use, not stuck.
const stillSending = (meta.result?.stillSending ?? []).slice().sort((a, b) => cmp(`${a.stuck}>${a.peer}`, `${b.stuck}>${b.peer}`));
for (const c of stillSending) {
  if (!closeWait.some((w) => w.stuck === c.stuck && w.peer === c.peer)) problems.push(`${c.stuck}>${c.peer} is meant to be still sending in CLOSE_WAIT, but ss does not list it as CLOSE-WAIT`);
}

if (typeof meta.expectCloseWait === 'number' && meta.expectCloseWait !== closeWait.length) {
  problems.push(`CLOSE_WAIT count mismatch: the scenario left ${meta.expectCloseWait} sockets half-closed on purpose, ss shows ${closeWait.length}`);
}

const notObservable = [];
for (const c of closeWait) {
  const key = c.stuck < c.peer ? `${c.stuck}|${c.peer}` : `${c.peer}|${c.stuck}`;
  const t = book.tuples.get(key);
  if (!t) { notObservable.push({ stuck: c.stuck, peer: c.peer, packets: 0, reason: 'no packet of this connection in the capture' }); continue; }
  // segments of the last connection on this tuple (after its last SYN, if any)
  let start = 0;
  t.segments.forEach((s, i) => { if (s.syn && !s.ackf) start = i; });
  const segs = t.segments.slice(start);
  const peerFinIdx = segs.findIndex((s) => s.src === c.peer && s.fin);
  if (peerFinIdx < 0) {
    notObservable.push({ stuck: c.stuck, peer: c.peer, packets: t.packets, reason: 'the peer FIN that put it in CLOSE_WAIT is not in the capture' });
    continue;
  }
  const closedAfter = segs.slice(peerFinIdx).some((s) => s.src === c.stuck && (s.fin || s.rst));
  if (closedAfter) problems.push(`${c.stuck}>${c.peer} is CLOSE-WAIT in ss but sent FIN/RST after the peer FIN in the capture`);
}

// several files (rotated set): in which file each stuck connection's handshake and peer FIN are
const closeWaitFiles = [];
if (caps.length > 1) {
  for (const c of closeWait) {
    const key = c.stuck < c.peer ? `${c.stuck}|${c.peer}` : `${c.peer}|${c.stuck}`;
    const t = book.tuples.get(key);
    const syn = t?.segments.find((s) => s.syn && !s.ackf);
    const fin = t?.segments.find((s) => s.fin && s.src === c.peer);
    closeWaitFiles.push({ stuck: c.stuck, peer: c.peer, synFile: syn ? syn.fileIndex : null, peerFinFile: fin ? fin.fileIndex : null });
  }
}

// informational: half-closed tuples in the capture that ss does not list as CLOSE-WAIT
const ssCw = new Set(closeWait.map((c) => `${c.stuck}>${c.peer}`));
const halfClosedNotCw = [];
for (const t of book.tuples.values()) {
  let start = 0;
  t.segments.forEach((s, i) => { if (s.syn && !s.ackf) start = i; });
  const segs = t.segments.slice(start);
  const fins = segs.filter((s) => s.fin);
  if (segs.some((s) => s.rst)) continue;
  const finSrc = new Set(fins.map((s) => s.src));
  if (finSrc.size === 1) {
    const a = [...finSrc][0];
    const [x, y] = t.key.split('|');
    const b = a === x ? y : x;
    if (!ssCw.has(`${b}>${a}`)) halfClosedNotCw.push({ stuck: b, peer: a });
  }
}

const first = caps[0];
const truth = {
  scenario,
  description: o.description || meta.description,
  captureFile: path.basename(o.captures[0]),
  files: o.captures.map((f) => path.basename(f)),
  servicePorts: [...ports].sort((a, b) => a - b),
  connections: meta.connections,
  closeWait,
  stuckSide,
  notes: [meta.notes, o.notesAppend].filter(Boolean).join(' '),
  ...o.extra,
};
if (stillSending.length) truth.closeWaitStillSending = stillSending;
if (notObservable.length) truth.closeWaitNotObservable = notObservable;
if (closeWaitFiles.length) truth.closeWaitFiles = closeWaitFiles;
if (halfClosedNotCw.length) {
  truth.closeWaitLookalikes = halfClosedNotCw
    .sort((x, y) => cmp(`${x.stuck}>${x.peer}`, `${y.stuck}>${y.peer}`))
    .map((c) => ({ ...c, reason: 'looks half-closed in the capture (only the peer FIN is visible, no FIN/RST from "stuck" after it) but ss shows no CLOSE-WAIT: its own FIN predates the capture' }));
}
truth.capture = {
  format: first.format,
  gzip: first.gzip,
  byteOrder: first.bigEndian ? 'big-endian' : 'little-endian',
  tsPrecision: first.nano ? 'ns' : 'us',
  linktype: first.linktype,
  packets: caps.reduce((s, c) => s + c.records.length, 0),
  tcpPackets: book.tcpPackets,
  truncated: caps.some((c) => c.truncated),
  generatedOn: `Linux ${os.release()}`,
};

fs.writeFileSync(o.out, JSON.stringify(truth, null, 2) + '\n');
const summary = `${scenario}: ${truth.connections} connections (capture: ${book.connections}), ${closeWait.length} CLOSE_WAIT`
  + `${notObservable.length ? ` (${notObservable.length} not observable)` : ''}, ${truth.capture.packets} packets`;
console.log(`fixture-truth: ${summary}`);
if (halfClosedNotCw.length) {
  const l = halfClosedNotCw.map((c) => `${c.stuck}>${c.peer}`);
  console.log(`fixture-truth: info: ${l.length} connection(s) half-closed in the capture but not CLOSE-WAIT in ss: ${l.slice(0, 5).join(', ')}${l.length > 5 ? ', ...' : ''}`);
}
if (problems.length) {
  for (const p of problems) console.error(`fixture-truth: ERROR: ${p}`);
  process.exit(1);
}
