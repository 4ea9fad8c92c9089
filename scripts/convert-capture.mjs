#!/usr/bin/env node
// convert-capture.mjs: rewrite a capture in another container format, packet bytes unchanged.
//
//   node scripts/convert-capture.mjs --to be      IN OUT   classic pcap, big-endian (header and record
//                                                          header fields byte-swapped, packets untouched)
//   node scripts/convert-capture.mjs --to le      IN OUT   classic pcap, little-endian
//   node scripts/convert-capture.mjs --to pcapng  IN OUT   pcapng (one SHB, one IDB, EPBs), little-endian
//   node scripts/convert-capture.mjs --truncate-last IN OUT  copy, cut in the middle of the last record
//                                                          (prints the byte offset of the cut)
// Options: --us / --ns choose the timestamp precision of the output (default: same as input;
// going ns -> us truncates the sub-microsecond digits).
// IN may be pcap (LE/BE, us/ns), pcapng, or gzip of either.

import fs from 'node:fs';
import { readCapture, writePcap, writePcapng, decodeTcp } from './pcap-lite.mjs';

function usage(msg) {
  if (msg) console.error(`convert-capture: ${msg}`);
  console.error('usage: convert-capture.mjs (--to be|le|pcapng [--us|--ns] | --truncate-last) IN OUT');
  process.exit(2);
}

const argv = process.argv.slice(2);
let to = null; let prec = null; let truncateLast = false; const pos = [];
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  if (a === '--to') to = argv[++i];
  else if (a === '--us') prec = 'us';
  else if (a === '--ns') prec = 'ns';
  else if (a === '--truncate-last') truncateLast = true;
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else pos.push(a);
}
if (pos.length !== 2) usage('need IN and OUT');
const [inPath, outPath] = pos;
const input = fs.readFileSync(inPath);

if (truncateLast) {
  const cap = readCapture(input);
  if (cap.gzip || cap.format !== 'pcap') usage('--truncate-last wants an uncompressed classic pcap');
  const last = cap.records[cap.records.length - 1];
  if (!last) usage('capture has no records');
  // keep the 16-byte record header and half of the packet bytes
  const cut = last.offset + 16 + Math.max(1, Math.floor(last.capLen / 2));
  fs.writeFileSync(outPath, input.subarray(0, cut));
  const seg = decodeTcp(cap.linktype, last);
  const flags = seg ? ['syn', 'fin', 'rst', 'psh', 'ackf'].filter((f) => seg[f]).map((f) => f.replace('ackf', 'ack').toUpperCase()).join('|') : '';
  const lostPacket = seg ? `${seg.src} > ${seg.dst} [${flags}] ${seg.payloadLen} payload bytes` : 'not a TCP packet';
  console.log(JSON.stringify({ truncatedAtByte: cut, originalBytes: input.length, lastRecordOffset: last.offset, lastRecordCapLen: last.capLen, lostPacket }));
  process.exit(0);
}

if (!['be', 'le', 'pcapng'].includes(to)) usage('--to must be be, le or pcapng');
const cap = readCapture(input);
if (cap.truncated) console.error(`convert-capture: warning: input truncated at byte ${cap.truncatedAt}; dropped the partial record`);
const linktypes = new Set(cap.interfaces.map((i) => i.linktype));
if (linktypes.size > 1) usage('captures with several link types are not supported');
const nano = prec ? prec === 'ns' : cap.nano;
let out;
if (to === 'pcapng') {
  out = writePcapng(cap.records, { linktype: cap.linktype, snaplen: cap.snaplen, nano });
} else {
  out = writePcap(cap.records, {
    bigEndian: to === 'be', nano, linktype: cap.linktype, snaplen: cap.snaplen,
    thiszone: cap.thiszone ?? 0, sigfigs: cap.sigfigs ?? 0,
  });
}
fs.writeFileSync(outPath, out);
