import { closeSync, existsSync, openSync, readdirSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { enhancedPacket, ethernet, interfaceDescription, ipv4, ipv6, LINK, pcapFile, pcapngOptions, sectionHeader, simplePacket, tcp, tcpFrame, TCP, type PcapRecord } from './build.js';
import { makeSeed, type Seed } from './mutate.js';
import { fingerprint } from './random.js';

/** The repository root, whether running from src/ (vitest) or dist/ (npm run fuzz). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const DEFAULT_SEED_DIRS = [join(REPO_ROOT, 'test/regressions'), join(REPO_ROOT, 'fixtures'), resolve(REPO_ROOT, '../shared/corpus')];
/** Seeds larger than this are cut at a record boundary: big inputs slow the run without finding more. */
const MAX_SEED_BYTES = 512 * 1024;
const MAX_SEED_FILES = 5_000;

export interface SeedPool {
  seeds: Seed[];
  /** Identifies the pool: the same seed and count reproduce a run only over the same pool. */
  fingerprint: string;
  sources: string[];
}

/** Builds the pool: the synthetic seeds always, then every capture file under the given paths, in name order. */
export function loadPool(paths: readonly string[] = DEFAULT_SEED_DIRS): SeedPool {
  const seeds: Seed[] = syntheticSeeds();
  const sources = ['synthetic'];
  for (const root of paths) {
    if (!existsSync(root)) continue;
    sources.push(root);
    const base = statSync(root).isDirectory() ? root : dirname(root);
    for (const file of captureFiles(root)) {
      if (seeds.length >= MAX_SEED_FILES) break;
      const raw = readFileSync(file);
      const seed = makeSeed(relative(base, file), raw);
      seeds.push(seed.bytes.length > MAX_SEED_BYTES ? shorten(seed) : seed);
    }
  }
  const print = fingerprint(seeds.map((s) => `${s.name}:${s.bytes.length}`).join('\n'));
  return { seeds, fingerprint: `${seeds.length}-${print.toString(16).padStart(8, '0')}`, sources };
}

function captureFiles(root: string): string[] {
  if (statSync(root).isFile()) return [root];
  const found: string[] = [];
  const walk = (dir: string) => {
    const entries = readdirSync(dir, { withFileTypes: true }).sort((x, y) => (x.name < y.name ? -1 : x.name > y.name ? 1 : 0));
    for (const entry of entries) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) walk(path);
      else if (entry.isFile() && looksLikeCapture(path)) found.push(path);
    }
  };
  walk(root);
  return found;
}

function looksLikeCapture(path: string): boolean {
  const head = Buffer.alloc(4);
  const fd = openSync(path, 'r');
  try {
    if (readSync(fd, head, 0, 4, 0) < 4) return false;
  } finally {
    closeSync(fd);
  }
  if (head[0] === 0x1f && head[1] === 0x8b) return true;
  const magic = head.readUInt32LE(0);
  return [0x0a0d0d0a, 0xa1b2c3d4, 0xa1b23c4d, 0xa1b2cd34, 0xd4c3b2a1, 0x4d3cb2a1, 0x34cdb2a1].includes(magic);
}

/** Keeps the units that fit in MAX_SEED_BYTES. */
function shorten(seed: Seed): Seed {
  const units = seed.layout.units.filter((u) => u.start + u.length <= MAX_SEED_BYTES);
  const end = units.length > 0 ? units[units.length - 1]!.start + units[units.length - 1]!.length : MAX_SEED_BYTES;
  return makeSeed(`${seed.name}[:${end}]`, seed.bytes.subarray(0, end));
}

/**
 * Seeds that exist even without fixtures or corpus: a connection left in CLOSE_WAIT, clean closes and
 * resets, IPv6 with extension headers, pcapng with two interfaces and options, both byte orders.
 */
export function syntheticSeeds(): Seed[] {
  const client = '10.0.0.1';
  const server = '10.0.0.2';
  const conversation = (port: number, closeBoth: boolean): Buffer[] => {
    const c = (flags: number, seq: number, ack: number, payload = 0) => tcpFrame(client, server, { srcPort: port, dstPort: 8080, flags, seq, ack, payload });
    const s = (flags: number, seq: number, ack: number, payload = 0) => tcpFrame(server, client, { srcPort: 8080, dstPort: port, flags, seq, ack, payload });
    const frames = [c(TCP.SYN, 1000, 0), s(TCP.SYN | TCP.ACK, 5000, 1001), c(TCP.ACK, 1001, 5001), c(TCP.PSH | TCP.ACK, 1001, 5001, 10), s(TCP.ACK, 5001, 1011), c(TCP.FIN | TCP.ACK, 1011, 5001), s(TCP.ACK, 5001, 1012)];
    if (closeBoth) frames.push(s(TCP.FIN | TCP.ACK, 5001, 1012), c(TCP.ACK, 1012, 5002));
    return frames;
  };
  const frames = [...conversation(40000, false), ...conversation(40001, true), tcpFrame(client, server, { srcPort: 40002, dstPort: 8080, flags: TCP.RST, seq: 7 })];
  const records: PcapRecord[] = frames.map((data, i) => ({ seconds: 1_700_000_000 + i, fraction: i * 1000, data }));

  const v6Segment = (flags: number, seq: number, ack: number, fromClient: boolean) =>
    ethernet(0x86dd, ipv6({
      src: fromClient ? '2001:db8::1' : '2001:db8::2', dst: fromClient ? '2001:db8::2' : '2001:db8::1',
      extensions: [{ type: 0, lengthField: 0 }, { type: 60, lengthField: 1 }, { type: 44 }],
      payload: tcp({ srcPort: fromClient ? 50000 : 443, dstPort: fromClient ? 443 : 50000, flags, seq, ack }),
    }));
  const v6 = [v6Segment(TCP.SYN, 1, 0, true), v6Segment(TCP.SYN | TCP.ACK, 9, 2, false), v6Segment(TCP.FIN | TCP.ACK, 2, 10, true), v6Segment(TCP.ACK, 10, 3, false)];

  const rawV4 = (flags: number, seq: number) => ipv4({ src: client, dst: server, ihl: 6, payload: tcp({ srcPort: 1234, dstPort: 80, flags, seq, dataOffset: 6 }) });
  const pcapng = (le: boolean) => Buffer.concat([
    sectionHeader({ littleEndian: le }),
    interfaceDescription(LINK.ethernet, { littleEndian: le, tsresol: 9, extraOptions: [{ code: 2, value: Buffer.from('eth0') }] }),
    interfaceDescription(LINK.raw, { littleEndian: le }),
    ...frames.map((data, i) => enhancedPacket({ littleEndian: le, interfaceId: 0, timestamp: 1_700_000_000_000_000_000n + BigInt(i) * 1_000_000n, data })),
    enhancedPacket({ littleEndian: le, interfaceId: 1, timestamp: 1_700_000_000_000_000n, data: rawV4(TCP.SYN, 1) }),
    simplePacket(frames[0]!, { littleEndian: le }),
    // An EPB with options after the data: a comment and a flags word.
    Buffer.concat([enhancedPacket({ littleEndian: le, interfaceId: 1, timestamp: 1_700_000_001_000_000n, data: Buffer.concat([rawV4(TCP.ACK, 2), pcapngOptions([{ code: 1, value: Buffer.from('hi') }], le)]), caplen: rawV4(TCP.ACK, 2).length })]),
  ]);
  return [
    makeSeed('synthetic/close-wait.pcap', pcapFile(records)),
    makeSeed('synthetic/close-wait-be-ns.pcap', pcapFile(records, { littleEndian: false, nanos: true })),
    makeSeed('synthetic/ipv6-extensions.pcap', pcapFile(v6.map((data, i) => ({ seconds: 1_600_000_000 + i, data })))),
    makeSeed('synthetic/raw-options.pcap', pcapFile([rawV4(TCP.SYN, 1), rawV4(TCP.ACK, 2)].map((data, i) => ({ seconds: 1 + i, data })), { linkType: LINK.raw })),
    makeSeed('synthetic/two-interfaces-le.pcapng', pcapng(true)),
    makeSeed('synthetic/two-interfaces-be.pcapng', pcapng(false)),
  ];
}
