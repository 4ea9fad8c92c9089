// Helpers for comparing analyzer reports with the fixtures' truth.json files
// (written by scripts/fixture-truth.mjs; format documented in fixtures/README.md).

import { readFileSync } from 'node:fs';

export type Side = 'server' | 'client';

export interface TruthPair {
  /** the endpoint whose socket is in CLOSE_WAIT (ss "Local"), "ip:port" or "[ipv6]:port" */
  stuck: string;
  /** the other endpoint (ss "Peer") */
  peer: string;
}

export interface Truth {
  scenario: string;
  description: string;
  captureFile: string;
  /** capture files in order (several for a rotated set) */
  files: string[];
  servicePorts: number[];
  /** connections with at least one packet in the capture */
  connections: number;
  /** every socket in CLOSE-WAIT per `ss -tan` taken just before the capture stopped, sorted */
  closeWait: TruthPair[];
  /** "stuck>peer" -> which side is stuck (server = the accepting side) */
  stuckSide?: Record<string, Side>;
  notes: string;
  /** variant-truncated only: byte offset where the file was cut */
  truncatedAtByte?: number;
  /** CLOSE-WAIT sockets the capture cannot show (no packet, or the peer FIN predates the capture) */
  closeWaitNotObservable?: Array<TruthPair & { packets: number; reason: string }>;
  /** rotated sets: file index of each stuck connection's handshake and peer FIN */
  closeWaitFiles?: Array<TruthPair & { synFile: number | null; peerFinFile: number | null }>;
  /** CLOSE-WAIT sockets whose application was still sending when the capture ended: in use, not stuck */
  closeWaitStillSending?: TruthPair[];
  /** connections that look half-closed in the capture but are NOT in CLOSE_WAIT (mid-stream) */
  closeWaitLookalikes?: Array<TruthPair & { reason: string }>;
  capture?: {
    format: 'pcap' | 'pcapng';
    gzip: boolean;
    byteOrder: 'little-endian' | 'big-endian';
    tsPrecision: 'us' | 'ns';
    linktype: number;
    packets: number;
    tcpPackets: number;
    truncated: boolean;
    generatedOn: string;
  };
}

export function loadTruth(path: string): Truth {
  const t = JSON.parse(readFileSync(path, 'utf8')) as Truth;
  if (typeof t.connections !== 'number' || !Array.isArray(t.closeWait) || !Array.isArray(t.files)) {
    throw new Error(`${path}: not a fixture truth file`);
  }
  return t;
}

/** Canonical text of an IP address: IPv6 compressed and lower-case (via the WHATWG URL parser). */
export function canonicalIp(ip: string): string {
  const bare = ip.replace(/^\[|\]$/g, '');
  if (!bare.includes(':')) return bare;
  try {
    return new URL(`http://[${bare}]/`).hostname.slice(1, -1);
  } catch {
    return bare.toLowerCase();
  }
}

/** "ip:port" for IPv4, "[ip]:port" for IPv6. */
export function formatEndpoint(ep: { ip: string; port: number }): string {
  const ip = canonicalIp(ep.ip);
  return ip.includes(':') ? `[${ip}]:${ep.port}` : `${ip}:${ep.port}`;
}

/** Re-format an "ip:port" / "[ip]:port" string canonically. */
export function canonicalEndpoint(s: string): string {
  const i = s.lastIndexOf(':');
  return formatEndpoint({ ip: s.slice(0, i), port: Number(s.slice(i + 1)) });
}

function pairKey(stuck: string, peer: string): string {
  return `${stuck}>${peer}`;
}

interface ReportEndpoint { ip: string; port: number }
interface ReportFinding { kind: string; stuckSide: Side; server: ReportEndpoint; client: ReportEndpoint }

function closeWaitFindings(report: unknown): ReportFinding[] {
  const r = (typeof report === 'string' ? JSON.parse(report) : report) as { findings?: unknown };
  if (!r || typeof r !== 'object' || !Array.isArray(r.findings)) {
    throw new Error('report has no findings array');
  }
  const out: ReportFinding[] = [];
  for (const f of r.findings as ReportFinding[]) {
    if (!f || f.kind !== 'close-wait') continue;
    if (f.stuckSide !== 'server' && f.stuckSide !== 'client') throw new Error(`finding without a valid stuckSide: ${JSON.stringify(f)}`);
    if (!f.server || !f.client) throw new Error(`finding without server/client endpoints: ${JSON.stringify(f)}`);
    out.push(f);
  }
  return out;
}

/** Sorted "stuck>peer" strings for the close-wait findings of an analyzer JSON report (object or JSON text). */
export function stuckSetFromReport(report: unknown): string[] {
  return closeWaitFindings(report)
    .map((f) => {
      const stuck = f[f.stuckSide];
      const peer = f.stuckSide === 'server' ? f.client : f.server;
      return pairKey(formatEndpoint(stuck), formatEndpoint(peer));
    })
    .sort();
}

/** Sorted "stuck>peer" strings of a truth file's closeWait list. */
export function stuckSetFromTruth(truth: Truth): string[] {
  return truth.closeWait.map((c) => pairKey(canonicalEndpoint(c.stuck), canonicalEndpoint(c.peer))).sort();
}

/** "stuck>peer" -> side, from a report. */
export function stuckSidesFromReport(report: unknown): Record<string, Side> {
  const out: Record<string, Side> = {};
  for (const f of closeWaitFindings(report)) {
    const stuck = f[f.stuckSide];
    const peer = f.stuckSide === 'server' ? f.client : f.server;
    out[pairKey(formatEndpoint(stuck), formatEndpoint(peer))] = f.stuckSide;
  }
  return out;
}

/** "stuck>peer" -> side, from a truth file (canonical endpoint text). */
export function stuckSidesFromTruth(truth: Truth): Record<string, Side> {
  const out: Record<string, Side> = {};
  for (const [k, side] of Object.entries(truth.stuckSide ?? {})) {
    const [stuck, peer] = k.split('>');
    out[pairKey(canonicalEndpoint(stuck), canonicalEndpoint(peer))] = side;
  }
  return out;
}
