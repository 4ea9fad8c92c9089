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
 *  - every file tshark reads: the same TCP connection count, FIN and RST packet counts and
 *    half-closed set (tshark's rule, applied literally to our connections: exactly one side sent FIN
 *    and the other neither FIN nor RST, acknowledged or not), and every close-wait finding (which
 *    also needs the FIN acknowledged) among tshark's half-closed streams.
 * The corpus marks rows where a correct analyzer may differ (tunnels, port reuse, VLAN ids in the
 * key, ...); we compare those too, since we decode several of those encapsulations (MPLS, PPPoE,
 * NFLOG, IP in IP, AH) and agree on most of the rest. Each disagreement is listed below with the
 * reason found by reading the packets; the test fails on any other disagreement and on a listed one
 * that no longer occurs, so the list stays true.
 */
const PER_FILE_SECONDS = 5;

type Figure = 'connections' | 'finPackets' | 'rstPackets' | 'halfClosed' | 'closeWaitNotHalfClosed';

interface Disagreement {
  differs: Figure[];
  reason: string;
}

const NO_IP_REASSEMBLY = 'we do not reassemble IP fragments (the first fragment\'s TCP header is cut, later fragments are skipped); tshark reassembles and sees the SYN';
const UDP_TUNNEL = 'TCP inside a UDP tunnel: we do not look inside UDP payloads; tshark decodes the tunnel and counts the inner connection';
const GRE_TUNNEL = 'TCP inside GRE: not decoded here; tshark counts the inner connection';
const SFLOW = 'an sFlow datagram quotes the headers of sampled packets: tshark counts each quoted TCP header as a packet of a stream, we do not look inside UDP';
const BAD_TCP_HEADER_LENGTH = 'we skip a segment whose TCP data offset is impossible (below 5 words or beyond the segment: its flags cannot be trusted); tshark marks it malformed but still gives its ports a stream';

const DISAGREEMENTS: Record<string, Disagreement> = {
  // Packets we do not decode.
  'zeek/ipv4/fragmented-syn.pcap': { differs: ['connections'], reason: `the SYN's 40-byte TCP header is split across two IPv4 fragments: ${NO_IP_REASSEMBLY}` },
  'suricata-verify/defrag/bug-6887-defrag-eth-vlan-ipv4-tcp-syn/frag-eth-vlan-ip-tcp-syn.pcap': { differs: ['connections'], reason: `a SYN in three 8-byte IPv4 fragments: ${NO_IP_REASSEMBLY}` },
  'suricata-verify/defrag/bug-6887-defrag-ppp-ipv4-tcp-syn/frag-ppp-ip-tcp-syn.pcap': { differs: ['connections'], reason: `a SYN in three 8-byte IPv4 fragments over PPP: ${NO_IP_REASSEMBLY}` },
  'pcapplusplus/Packet++Test/PacketExamples/tcp-malformed.pcap': { differs: ['connections'], reason: `both frames state a 28-byte TCP header in a 20-byte segment: ${BAD_TCP_HEADER_LENGTH}` },
  'suricata-verify/transform-base64-7296/input.pcap': { differs: ['connections'], reason: `fuzzed frames 11 and 59 (127.0.0.1:59207 > 223.138.31.144:44354) state a 60-byte TCP header in a 32-byte segment: ${BAD_TCP_HEADER_LENGTH}` },
  'suricata-verify/bug-76/input.pcap': { differs: ['connections'], reason: `fuzzed frame 46 (a SYN on the first 4-tuple) states a 40-byte header in 32 bytes: ${BAD_TCP_HEADER_LENGTH}, here a new one (port reuse)` },
  'suricata-verify/drop-protocol-change/input.pcap': { differs: ['connections'], reason: `frame 7 states an 8-byte TCP header: ${BAD_TCP_HEADER_LENGTH}, here a new one (port reuse)` },
  'libpcap/filter/http_PPI.pcap': { differs: ['connections'], reason: 'PPI (link type 192) wrapping 802.11 frames: wireless link layers are outside our scope' },
  'tcpdump-tests/geneve-gcp.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/geneve.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'libpcap/filter/geneve.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'zeek/tunnels/geneve-inner-tcp-bad-checksum.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv4-geneve-ipv4.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv4-geneve-ipv6.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv6-geneve-ipv4.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv6-geneve-ipv6.pcap': { differs: ['connections'], reason: `Geneve: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv4-vxlan-ipv4.pcap': { differs: ['connections'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv4-vxlan-ipv6.pcap': { differs: ['connections'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv6-vxlan-ipv4.pcap': { differs: ['connections'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'tcpdump-tests/gso-ipv6-vxlan-ipv6.pcap': { differs: ['connections'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'zeek/tunnels/vxlan-inner-tcp-bad-checksum.pcap': { differs: ['connections'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'zeek/tunnels/vxlan-encapsulated-http.pcap': { differs: ['connections', 'finPackets'], reason: `VXLAN: ${UDP_TUNNEL}` },
  'arkime/gtp-iphone.pcap': { differs: ['connections', 'finPackets'], reason: `GTP-U: ${UDP_TUNNEL}` },
  'dpkt/nb6-http.pcap': {
    differs: ['connections', 'finPackets'],
    reason: `two connections over PPPoE are ours too; the third is IPv6 in L2TP (UDP 1701) in the same PPPoE session: ${UDP_TUNNEL}`,
  },
  'arkime/gre-erspan-vxlan.pcap': { differs: ['connections', 'finPackets'], reason: `VXLAN inside ERSPAN inside GRE: ${GRE_TUNNEL}` },
  'tcpdump-tests/wccp_redirect_gre.pcap': { differs: ['connections'], reason: `WCCP redirect: ${GRE_TUNNEL}` },
  'zeek/tunnels/gre-sample.pcap': { differs: ['connections', 'finPackets'], reason: GRE_TUNNEL },
  'pcapplusplus/Packet++Test/PacketExamples/GrePackets.pcap': { differs: ['connections'], reason: GRE_TUNNEL },
  'tcpdump-tests/sflow_expanded.pcap': { differs: ['connections'], reason: SFLOW },
  'pcapplusplus/ExamplesTest/pcap_examples/tcp-reassembly.pcap': { differs: ['connections'], reason: `one HTTP connection is ours too; the other 6 streams are TCP headers quoted in frame 66: ${SFLOW}` },

  // Where a connection begins and ends (src/flow): modelling choices, each read packet by packet.
  'gopacket/layers/testdata/linux_sll_oversized_addr.pcapng': {
    differs: ['connections', 'halfClosed'],
    reason:
      'the connection ends with FIN+RST at frame 34, yet packets on the same 4-tuple go on for 7 more minutes: a closed ' +
      'connection is released after 120 s of linger, so the later packets start new mid-stream connections (3 in all), ' +
      'the first of which meets the half-closed rule (FIN from one side, nothing from the other); tshark keeps one ' +
      'stream, whose other side sends a RST at frame 96',
  },
  'arkime/tcp_handshake_synthetic.pcap': {
    differs: ['connections'],
    reason: 'same model: a SYN with a new ISN into an open or unanswered attempt (port 40003 frame 11, port 40013 frame 46) stays pending here, opens a stream for tshark',
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

const manifest = corpusAvailable ? loadManifest() : [];
const expected = corpusAvailable ? loadExpected() : new Map<string, ExpectedRow>();

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
    if (!reference || path in REJECTED_BY_US) return;

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
