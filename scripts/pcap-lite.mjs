// pcap-lite.mjs: a tiny, dependency-free pcap / pcapng reader and writer used by the
// fixture tooling (scripts/convert-capture.mjs, scripts/fixture-truth.mjs).
//
// It is deliberately independent of the analyzer in src/: the fixture generator uses it
// only to convert formats and to cross-check its own bookkeeping against the capture.
// Plain Node (>= 20), no build step.

import zlib from 'node:zlib';

export const LINKTYPE = { NULL: 0, EN10MB: 1, RAW: 101, LOOP: 108, LINUX_SLL: 113, IPV4: 228, IPV6: 229, LINUX_SLL2: 276 };

const MAGIC_US = 0xa1b2c3d4;
const MAGIC_NS = 0xa1b23c4d;
const PCAPNG_SHB = 0x0a0d0d0a;

/**
 * Read a capture (classic pcap LE/BE, µs/ns, pcapng, optionally gzip-compressed).
 * Returns { format: 'pcap'|'pcapng', gzip, bigEndian, nano, linktype, snaplen, versionMajor,
 *           versionMinor, thiszone, sigfigs, interfaces, records: [{tsSec, tsFrac, tsNs (bigint),
 *           capLen, origLen, data, ifIndex}], truncated, truncatedAt }
 * A capture cut inside a record is read up to the last complete record (truncated = true).
 */
export function readCapture(input) {
  let buf = input;
  let gzip = false;
  if (buf.length >= 2 && buf[0] === 0x1f && buf[1] === 0x8b) {
    gzip = true;
    buf = zlib.gunzipSync(buf, { finishFlush: zlib.constants.Z_SYNC_FLUSH });
  }
  if (buf.length < 4) throw new Error('capture too short');
  const m = buf.readUInt32LE(0);
  if (m === PCAPNG_SHB) return { ...readPcapng(buf), gzip };
  return { ...readPcap(buf), gzip };
}

function readPcap(buf) {
  let bigEndian;
  let nano;
  const le = buf.readUInt32LE(0);
  const be = buf.readUInt32BE(0);
  if (le === MAGIC_US || le === MAGIC_NS) { bigEndian = false; nano = le === MAGIC_NS; }
  else if (be === MAGIC_US || be === MAGIC_NS) { bigEndian = true; nano = be === MAGIC_NS; }
  else throw new Error(`not a pcap file (magic 0x${be.toString(16)})`);
  if (buf.length < 24) throw new Error('pcap header truncated');
  const u16 = (o) => (bigEndian ? buf.readUInt16BE(o) : buf.readUInt16LE(o));
  const u32 = (o) => (bigEndian ? buf.readUInt32BE(o) : buf.readUInt32LE(o));
  const i32 = (o) => (bigEndian ? buf.readInt32BE(o) : buf.readInt32LE(o));
  const hdr = {
    format: 'pcap', bigEndian, nano,
    versionMajor: u16(4), versionMinor: u16(6), thiszone: i32(8), sigfigs: u32(12),
    snaplen: u32(16), linktype: u32(20) & 0x0fffffff,
  };
  const records = [];
  let off = 24;
  let truncated = false;
  let truncatedAt = null;
  while (off < buf.length) {
    if (off + 16 > buf.length) { truncated = true; truncatedAt = off; break; }
    const tsSec = u32(off); const tsFrac = u32(off + 4); const capLen = u32(off + 8); const origLen = u32(off + 12);
    if (capLen > 0x4000000) throw new Error(`absurd record length ${capLen} at byte ${off}`);
    if (off + 16 + capLen > buf.length) { truncated = true; truncatedAt = off; break; }
    const tsNs = BigInt(tsSec) * 1_000_000_000n + BigInt(tsFrac) * (nano ? 1n : 1000n);
    records.push({ tsSec, tsFrac, tsNs, capLen, origLen, data: buf.subarray(off + 16, off + 16 + capLen), ifIndex: 0, offset: off });
    off += 16 + capLen;
  }
  return { ...hdr, interfaces: [{ linktype: hdr.linktype, snaplen: hdr.snaplen, tsresol: nano ? 9 : 6 }], records, truncated, truncatedAt };
}

function readPcapng(buf) {
  let off = 0;
  let bigEndian = false;
  let interfaces = [];
  const records = [];
  let truncated = false;
  let truncatedAt = null;
  const u16 = (o) => (bigEndian ? buf.readUInt16BE(o) : buf.readUInt16LE(o));
  const u32 = (o) => (bigEndian ? buf.readUInt32BE(o) : buf.readUInt32LE(o));
  while (off < buf.length) {
    if (off + 12 > buf.length) { truncated = true; truncatedAt = off; break; }
    const typeLE = buf.readUInt32LE(off);
    if (typeLE === PCAPNG_SHB) {
      const bom = buf.readUInt32LE(off + 8);
      if (bom === 0x1a2b3c4d) bigEndian = false;
      else if (bom === 0x4d3c2b1a) bigEndian = true;
      else throw new Error('bad pcapng byte-order magic');
      interfaces = []; // a new section starts a new interface list
    }
    const type = u32(off);
    const len = u32(off + 4);
    if (len < 12 || len % 4 !== 0) throw new Error(`bad pcapng block length ${len} at ${off}`);
    if (off + len > buf.length) { truncated = true; truncatedAt = off; break; }
    const body = off + 8;
    const end = off + len - 4;
    if (type === 1) {
      const linktype = u16(body);
      const snaplen = u32(body + 4);
      let tsresol = 6;
      let o = body + 8;
      while (o + 4 <= end) {
        const code = u16(o); const olen = u16(o + 2);
        if (code === 0) break;
        if (code === 9 && olen >= 1) tsresol = buf[o + 4];
        o += 4 + ((olen + 3) & ~3);
      }
      interfaces.push({ linktype, snaplen, tsresol });
    } else if (type === 6) {
      const ifIndex = u32(body);
      const tsHigh = u32(body + 4); const tsLow = u32(body + 8);
      const capLen = u32(body + 12); const origLen = u32(body + 16);
      const intf = interfaces[ifIndex];
      if (!intf) throw new Error(`EPB references unknown interface ${ifIndex}`);
      const raw = (BigInt(tsHigh) << 32n) | BigInt(tsLow);
      const tsNs = tsUnitsToNs(raw, intf.tsresol);
      records.push({ tsSec: Number(tsNs / 1_000_000_000n), tsFrac: Number(tsNs % 1_000_000_000n), tsNs, capLen, origLen,
        data: buf.subarray(body + 20, body + 20 + capLen), ifIndex, offset: off });
    } else if (type === 3) {
      const intf = interfaces[0];
      const origLen = u32(body);
      const capLen = Math.min(origLen, intf ? intf.snaplen || origLen : origLen, end - (body + 4));
      records.push({ tsSec: 0, tsFrac: 0, tsNs: 0n, capLen, origLen, data: buf.subarray(body + 4, body + 4 + capLen), ifIndex: 0, offset: off });
    }
    off += len;
  }
  const first = interfaces[0] || { linktype: LINKTYPE.EN10MB, snaplen: 0, tsresol: 6 };
  return { format: 'pcapng', bigEndian, nano: first.tsresol === 9, linktype: first.linktype, snaplen: first.snaplen, interfaces, records, truncated, truncatedAt };
}

function tsUnitsToNs(raw, tsresol) {
  if (tsresol & 0x80) {
    // power of two resolution
    const p = tsresol & 0x7f;
    return (raw * 1_000_000_000n) >> BigInt(p);
  }
  const exp = tsresol;
  if (exp <= 9) return raw * 10n ** BigInt(9 - exp);
  return raw / 10n ** BigInt(exp - 9);
}

/** Write a classic pcap. opts: { bigEndian, nano, linktype, snaplen, thiszone, sigfigs } */
export function writePcap(records, opts) {
  const { bigEndian = false, nano = false, linktype, snaplen = 262144, thiszone = 0, sigfigs = 0 } = opts;
  const total = 24 + records.reduce((s, r) => s + 16 + r.data.length, 0);
  const out = Buffer.alloc(total);
  const w16 = (v, o) => (bigEndian ? out.writeUInt16BE(v, o) : out.writeUInt16LE(v, o));
  const w32 = (v, o) => (bigEndian ? out.writeUInt32BE(v >>> 0, o) : out.writeUInt32LE(v >>> 0, o));
  w32(nano ? MAGIC_NS : MAGIC_US, 0);
  w16(2, 4); w16(4, 6);
  (bigEndian ? out.writeInt32BE(thiszone, 8) : out.writeInt32LE(thiszone, 8));
  w32(sigfigs, 12); w32(snaplen, 16); w32(linktype, 20);
  let off = 24;
  for (const r of records) {
    const sec = r.tsNs / 1_000_000_000n;
    const ns = r.tsNs % 1_000_000_000n;
    w32(Number(sec), off);
    w32(Number(nano ? ns : ns / 1000n), off + 4);
    w32(r.data.length, off + 8);
    w32(r.origLen, off + 12);
    r.data.copy(out, off + 16);
    off += 16 + r.data.length;
  }
  return out;
}

/** Write a little-endian pcapng with one SHB and one IDB. opts: { linktype, snaplen, nano, comment } */
export function writePcapng(records, opts) {
  const { linktype, snaplen = 262144, nano = false, userappl = 'closewait scripts/convert-capture.mjs' } = opts;
  const parts = [];
  const pad4 = (n) => (n + 3) & ~3;
  const option = (code, valueBuf) => {
    const b = Buffer.alloc(4 + pad4(valueBuf.length));
    b.writeUInt16LE(code, 0); b.writeUInt16LE(valueBuf.length, 2); valueBuf.copy(b, 4);
    return b;
  };
  const endOpt = Buffer.alloc(4);
  const block = (type, body) => {
    const len = 12 + body.length;
    const b = Buffer.alloc(len);
    b.writeUInt32LE(type, 0); b.writeUInt32LE(len, 4); body.copy(b, 8); b.writeUInt32LE(len, len - 4);
    return b;
  };
  // SHB
  const shbFixed = Buffer.alloc(16);
  shbFixed.writeUInt32LE(0x1a2b3c4d, 0); shbFixed.writeUInt16LE(1, 4); shbFixed.writeUInt16LE(0, 6);
  shbFixed.writeInt32LE(-1, 8); shbFixed.writeInt32LE(-1, 12); // section length unknown
  parts.push(block(0x0a0d0d0a, Buffer.concat([shbFixed, option(4, Buffer.from(userappl)), endOpt])));
  // IDB
  const idbFixed = Buffer.alloc(8);
  idbFixed.writeUInt16LE(linktype, 0); idbFixed.writeUInt32LE(snaplen, 4);
  parts.push(block(1, Buffer.concat([idbFixed, option(9, Buffer.from([nano ? 9 : 6])), endOpt])));
  for (const r of records) {
    const units = nano ? r.tsNs : r.tsNs / 1000n;
    const fixed = Buffer.alloc(20);
    fixed.writeUInt32LE(0, 0);
    fixed.writeUInt32LE(Number(units >> 32n), 4);
    fixed.writeUInt32LE(Number(units & 0xffffffffn), 8);
    fixed.writeUInt32LE(r.data.length, 12);
    fixed.writeUInt32LE(r.origLen, 16);
    const data = Buffer.alloc(pad4(r.data.length));
    r.data.copy(data);
    parts.push(block(6, Buffer.concat([fixed, data])));
  }
  return Buffer.concat(parts);
}

// ---------------------------------------------------------------------------------------------
// Minimal TCP decoding, enough for bookkeeping cross-checks.

function ipPayload(linktype, d) {
  let proto; let off;
  switch (linktype) {
    case LINKTYPE.EN10MB: {
      if (d.length < 14) return null;
      off = 12; proto = d.readUInt16BE(off); off += 2;
      while ((proto === 0x8100 || proto === 0x88a8) && d.length >= off + 4) { proto = d.readUInt16BE(off + 2); off += 4; }
      break;
    }
    case LINKTYPE.LINUX_SLL: if (d.length < 16) return null; proto = d.readUInt16BE(14); off = 16; break;
    case LINKTYPE.LINUX_SLL2: if (d.length < 20) return null; proto = d.readUInt16BE(0); off = 20; break;
    case LINKTYPE.NULL: case LINKTYPE.LOOP: {
      if (d.length < 4) return null;
      const fam = d.readUInt32LE(0) <= 0xffff ? d.readUInt32LE(0) : d.readUInt32BE(0);
      proto = fam === 2 ? 0x0800 : 0x86dd; off = 4; break;
    }
    case LINKTYPE.RAW: case 12: case LINKTYPE.IPV4: case LINKTYPE.IPV6:
      if (d.length < 1) return null;
      proto = (d[0] >> 4) === 6 ? 0x86dd : 0x0800; off = 0; break;
    default: return null;
  }
  return { ethertype: proto, off };
}

function fmtV6(b) {
  const groups = [];
  for (let i = 0; i < 16; i += 2) groups.push(b.readUInt16BE(i).toString(16));
  // compress the longest run of zero groups
  let best = -1; let bestLen = 0;
  for (let i = 0; i < 8;) {
    if (groups[i] !== '0') { i++; continue; }
    let j = i; while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen && j - i > 1) { best = i; bestLen = j - i; }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** Decode one record to a TCP segment summary, or null if it is not TCP. */
export function decodeTcp(linktype, rec) {
  const d = rec.data;
  const l2 = ipPayload(linktype, d);
  if (!l2) return null;
  let off = l2.off; let src; let dst; let v6 = false; let ipEnd;
  if (l2.ethertype === 0x0800) {
    if (d.length < off + 20) return null;
    const ihl = (d[off] & 0x0f) * 4;
    if (d[off + 9] !== 6) return null;
    const fragOff = d.readUInt16BE(off + 6) & 0x1fff;
    if (fragOff !== 0) return null;
    const totalLen = d.readUInt16BE(off + 2);
    src = `${d[off + 12]}.${d[off + 13]}.${d[off + 14]}.${d[off + 15]}`;
    dst = `${d[off + 16]}.${d[off + 17]}.${d[off + 18]}.${d[off + 19]}`;
    ipEnd = off + totalLen;
    off += ihl;
  } else if (l2.ethertype === 0x86dd) {
    if (d.length < off + 40) return null;
    v6 = true;
    let next = d[off + 6];
    const payloadLen = d.readUInt16BE(off + 4);
    src = fmtV6(d.subarray(off + 8, off + 24));
    dst = fmtV6(d.subarray(off + 24, off + 40));
    ipEnd = off + 40 + payloadLen;
    off += 40;
    while ([0, 43, 60, 44].includes(next)) {
      if (d.length < off + 8) return null;
      const nh = d[off];
      off += next === 44 ? 8 : (d[off + 1] + 1) * 8;
      next = nh;
    }
    if (next !== 6) return null;
  } else return null;
  if (d.length < off + 20) return null;
  const sport = d.readUInt16BE(off); const dport = d.readUInt16BE(off + 2);
  const seq = d.readUInt32BE(off + 4); const ack = d.readUInt32BE(off + 8);
  const doff = (d[off + 12] >> 4) * 4;
  const fl = d[off + 13];
  const payloadLen = Math.max(0, ipEnd - off - doff);
  const ep = (ip, port) => (v6 ? `[${ip}]:${port}` : `${ip}:${port}`);
  return {
    src: ep(src, sport), dst: ep(dst, dport), sport, dport, seq, ack, payloadLen,
    syn: !!(fl & 0x02), ackf: !!(fl & 0x10), fin: !!(fl & 0x01), rst: !!(fl & 0x04), psh: !!(fl & 0x08),
    tsNs: rec.tsNs,
  };
}

/**
 * Group TCP segments of one or more captures (in order) into per-4-tuple stats.
 * A connection = a 4-tuple, split by distinct initial SYN sequence numbers (so a reused tuple
 * counts once per handshake). A tuple with packets but no SYN counts as one connection.
 */
export function tcpBookkeeping(captures, ports) {
  const tuples = new Map();
  let tcpPackets = 0; let otherPackets = 0; let firstNs = null; let lastNs = null;
  for (const [fileIndex, cap] of captures.entries()) {
    for (const rec of cap.records) {
      const lt = cap.interfaces[rec.ifIndex]?.linktype ?? cap.linktype;
      const s = decodeTcp(lt, rec);
      if (!s || (ports && !ports.includes(s.sport) && !ports.includes(s.dport))) { otherPackets++; continue; }
      tcpPackets++;
      if (firstNs === null) firstNs = s.tsNs;
      lastNs = s.tsNs;
      const key = s.src < s.dst ? `${s.src}|${s.dst}` : `${s.dst}|${s.src}`;
      let t = tuples.get(key);
      if (!t) { t = { key, packets: 0, synIsns: [], segments: [] }; tuples.set(key, t); }
      t.packets++;
      if (s.syn && !s.ackf && !t.synIsns.includes(s.seq)) t.synIsns.push(s.seq);
      s.fileIndex = fileIndex;
      t.segments.push(s);
    }
  }
  let connections = 0;
  for (const t of tuples.values()) connections += Math.max(1, t.synIsns.length);
  return { tuples, connections, tcpPackets, otherPackets, firstNs, lastNs };
}
