import { describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import type { Finding, Report } from '../src/analyze/model.js';
import { SUPPORTED_LINK_TYPES } from '../src/decode/link.js';
import { formatEndpoint } from '../src/flow/address.js';
import { corpusAvailable, corpusPath, loadExpected, loadManifest, tcpView, withinSeconds, type ExpectedRow, type ManifestRow, type TcpView } from './helpers/corpus.js';

/**
 * The analyzer over every capture of the public corpus (../shared/corpus, 779 files from the test
 * suites of tcpdump, Zeek, Suricata, PcapPlusPlus, gopacket, libpcap, Arkime, scapy, dpkt, ...):
 *  - every file: no throw, no hang, done within PER_FILE_SECONDS;
 *  - files tshark cannot read: one clear line naming what is wrong and the byte offset (an error, or
 *    a truncation warning after the packets that were good), or, for a link type outside our scope,
 *    every packet counted as an unsupported link;
 *  - files tshark reads: read whole, without a warning, with capinfos' packet count;
 *  - files whose tshark figures carry no caveat (or only `fin-sender-rst`, which the literal
 *    half-closed rule below reproduces): the same TCP connection count, FIN and RST packet counts and
 *    half-closed set, and every close-wait finding among tshark's half-closed streams.
 * Each disagreement is listed below with the reason found by reading the packets; the test fails on
 * any other disagreement and on a listed one that no longer occurs.
 */
const PER_FILE_SECONDS = 5;

type Figure = 'connections' | 'finPackets' | 'rstPackets' | 'halfClosed' | 'closeWaitNotHalfClosed';

interface Disagreement {
  differs: Figure[];
  reason: string;
}

const DISAGREEMENTS: Record<string, Disagreement> = {
  'zeek/ipv4/fragmented-syn.pcap': {
    differs: ['connections'],
    reason:
      'the SYN is split into two IPv4 fragments and the first carries 24 of its 40 TCP header bytes: we do not reassemble IP ' +
      '(the first fragment\'s header is cut, later fragments are skipped); tshark reassembles and sees the SYN',
  },
  'suricata-verify/defrag/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap': {
    differs: ['connections'],
    reason: 'a SYN in three 8-byte IPv4 fragments (no IP reassembly here; tshark reassembles)',
  },
  'suricata-verify/defrag/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap': {
    differs: ['connections'],
    reason: 'a SYN in three 8-byte IPv4 fragments over PPP (no IP reassembly here; tshark reassembles)',
  },
  'pcapplusplus/Packet++Test/PacketExamples/tcp-malformed.pcap': {
    differs: ['connections'],
    reason:
      'both frames state a 28-byte TCP header in a 20-byte segment: we skip such packets as bad headers (their flags ' +
      'cannot be trusted); tshark flags them malformed but still opens a stream for the ports',
  },
  'suricata-verify/transform-base64-7296/input.pcap': {
    differs: ['connections'],
    reason:
      'fuzzed frames 11 and 59 (127.0.0.1:59207 > 223.138.31.144:44354) state a 60-byte TCP header in a 32-byte segment: ' +
      'skipped as bad headers here, a stream of their own for tshark',
  },
  'gopacket/layers/testdata/linux_sll_oversized_addr.pcapng': {
    differs: ['connections', 'halfClosed'],
    reason:
      'the connection ends with FIN+RST at frame 34, yet packets on the same 4-tuple go on for 7 more minutes: a closed ' +
      'connection is released after 120 s of linger, so the later packets start new mid-stream connections (3 in all), ' +
      'the first of which meets the half-closed rule (FIN from one side, nothing from the other); tshark keeps one ' +
      'stream, whose other side sends a RST at frame 96',
  },
  'libpcap/filter/http_PPI.pcap': {
    differs: ['connections'],
    reason: 'PPI (link type 192) wrapping 802.11 frames: wireless link layers are outside our scope',
  },
  'suricata-verify/tcp-split-handshake-01-4whs/split-handshake-4whs.pcap': {
    differs: ['connections'],
    reason:
      'split handshake: the client\'s SYN is answered by a bare SYN (ISN 3000) and the client then sends SYN-ACK. The ' +
      'tracker takes the second SYN for a new attempt on an open tuple and the SYN-ACK answering it for a takeover, ' +
      'so it counts 2 connections; it is one (simultaneous-open style). Tracker behaviour (src/flow), reported',
  },
};

/** Readable for tshark, not for us. */
const REJECTED_BY_US: Record<string, string> = {
  'libpcap/pcap-invalid-version-2.pcap': 'pcap version 2.5: libpcap (and so tcpdump) accept only 2.0-2.4; tshark reads any 2.x',
};

/** Unreadable files where tshark kept a different number of packets before the damage than we do. */
const PACKETS_BEFORE_DAMAGE_DIFFER: Record<string, string> = {
  'suricata-verify/bug-6875-01/fuzz.pcap':
    'record 2 (at byte 228) claims 1,409,179,648 bytes; tshark\'s reader tries other pcap variants on a bad record ' +
    'header and so reads a second, differently framed packet before failing',
};

const COMPARABLE_CAVEATS = new Set(['fin-sender-rst']);

const manifest = corpusAvailable ? loadManifest() : [];
const expected = corpusAvailable ? loadExpected() : new Map<string, ExpectedRow>();

const isComparable = (row: ExpectedRow) => row.caveats.every((caveat) => COMPARABLE_CAVEATS.has(caveat));

function finSenderKey(finding: Finding): string {
  const stuck = finding.stuckSide === 'server' ? finding.server : finding.client;
  const peer = finding.stuckSide === 'server' ? finding.client : finding.server;
  return `${formatEndpoint(peer.ip, peer.port)}>${formatEndpoint(stuck.ip, stuck.port)}`;
}

/** Which figures differ from tshark's, with both values, for one comparable file. */
function compareWithTshark(row: ExpectedRow, view: TcpView, report: Report): Map<Figure, string> {
  const differences = new Map<Figure, string>();
  const note = (figure: Figure, ours: unknown, theirs: unknown) => differences.set(figure, `${figure}: ours ${JSON.stringify(ours)}, tshark ${JSON.stringify(theirs)}`);
  if (view.connections.length !== row.tcpStreams) note('connections', view.connections.length, row.tcpStreams);
  if (view.finPackets !== row.finPackets) note('finPackets', view.finPackets, row.finPackets);
  if (view.rstPackets !== row.rstPackets) note('rstPackets', view.rstPackets, row.rstPackets);
  const ours = [...view.halfClosed].sort();
  const theirs = [...row.halfClosed].sort();
  if (ours.join(';') !== theirs.join(';')) note('halfClosed', ours, theirs);
  const halfClosed = new Set(row.halfClosed);
  const outside = report.findings.map(finSenderKey).filter((key) => !halfClosed.has(key));
  if (outside.length > 0) note('closeWaitNotHalfClosed', outside, row.halfClosed);
  return differences;
}

const linkTypesOf = (report: Report) => report.inputs[0]!.linkTypes;
const outOfScopeLinks = (report: Report) => linkTypesOf(report).length > 0 && linkTypesOf(report).every((type) => !SUPPORTED_LINK_TYPES.includes(type));

function expectOneClearLine(text: string) {
  expect(text).not.toMatch(/\n/);
  expect(text.length).toBeLessThan(300);
}

function checkUnreadable(row: ManifestRow, report: Report) {
  const input = report.inputs[0]!;
  if (input.error === null && outOfScopeLinks(report)) {
    // tshark: "network type N unknown or unsupported". We read the records and skip every one.
    expect(report.summary.skipped.unsupportedLink).toBe(input.packets);
    expect(report.summary.connections).toBe(0);
    return;
  }
  if (input.error !== null) {
    expectOneClearLine(input.error);
    expect(input.error).toMatch(/\(at byte [\d,]+\)/);
    expect(input.packets).toBe(0);
    return;
  }
  expect(input.truncated).toBe(true);
  expect(input.warnings).toHaveLength(1);
  expectOneClearLine(input.warnings[0]!);
  expect(input.warnings[0]).toMatch(/: stopped at byte [\d,]+; kept the [\d,]+ packets before it$/);
  const tsharkKept = /tshark read (\d+) packets before failing/.exec(row.note);
  if (tsharkKept) {
    const differs = input.packets !== Number(tsharkKept[1]);
    expect(differs, PACKETS_BEFORE_DAMAGE_DIFFER[row.path] ?? `tshark kept ${tsharkKept[1]} packets, we kept ${input.packets}`).toBe(row.path in PACKETS_BEFORE_DAMAGE_DIFFER);
  }
}

function checkReadable(row: ManifestRow, report: Report) {
  const input = report.inputs[0]!;
  const rejected = REJECTED_BY_US[row.path];
  if (rejected) {
    expect(input.error, rejected).not.toBeNull();
    expectOneClearLine(input.error!);
    return;
  }
  expect(input.error).toBeNull();
  expect(input.truncated).toBe(false);
  expect(input.warnings).toEqual([]);
  expect(input.packets).toBe(row.packets);
}

describe.skipIf(!corpusAvailable)('public capture corpus', () => {
  it('has the rows the README describes', () => {
    expect(manifest).toHaveLength(779);
    expect(manifest.filter((row) => row.packets === 'unreadable')).toHaveLength(31);
    expect(expected.size).toBe(748);
    for (const path of [...Object.keys(DISAGREEMENTS), ...Object.keys(REJECTED_BY_US), ...Object.keys(PACKETS_BEFORE_DAMAGE_DIFFER)]) {
      expect(manifest.some((row) => row.path === path), path).toBe(true);
    }
  });

  it.each(manifest.map((row) => [row.path, row] as const))('%s', async (path, row) => {
    const started = performance.now();
    const report = await withinSeconds(PER_FILE_SECONDS, path, () => analyze([corpusPath(path)]));
    expect(performance.now() - started).toBeLessThan(PER_FILE_SECONDS * 1000);
    expect(report.inputs).toHaveLength(1);

    if (row.packets === 'unreadable') {
      expect(expected.has(path)).toBe(false);
      checkUnreadable(row, report);
      return;
    }
    checkReadable(row, report);
    const reference = expected.get(path);
    if (!reference || !isComparable(reference) || path in REJECTED_BY_US) return;

    const view = await withinSeconds(PER_FILE_SECONDS, path, () => tcpView(corpusPath(path)));
    // The test's own wiring of the stages must see what analyze() saw, or the comparison means nothing.
    expect(view.connections.length).toBe(report.summary.connections);
    expect(view.tcpPackets).toBe(report.summary.tcpPackets);

    const differences = compareWithTshark(reference, view, report);
    const listed = DISAGREEMENTS[path];
    expect([...differences.keys()].sort(), [...differences.values()].join('\n') || `listed but no longer differs: ${listed?.reason}`).toEqual(
      [...(listed?.differs ?? [])].sort(),
    );
  });
});
