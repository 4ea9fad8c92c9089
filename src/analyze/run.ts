import { readCapture, firstPacketTime, type InputSource, type InputSummary } from '../capture/reader.js';
import type { CaptureRecord } from '../capture/record.js';
import { decodeFrame, SUPPORTED_LINK_TYPES } from '../decode/link.js';
import { DECODE_STATUS_NAMES, DecodeStatus, newTcpSegment } from '../decode/segment.js';
import { formatAddress } from '../flow/address.js';
import { Connection } from '../flow/connection.js';
import { ConnectionTracker, UNANSWERED_GIVE_UP_NANOS, type ReleaseReason } from '../flow/tracker.js';
import { EndpointIndex } from '../flow/endpoints.js';
import { SCHEMA_VERSION, type EndpointRef, type Finding, type InputReport, type Report, type ServerSummary, type SkippedCounts } from './model.js';
import { closeWaitSide, endpointState, inferMissingFin, inferMissingFinAck, isBlockedByPeerWindow, isStillSending, uncertainty } from './verdict.js';
import { TimeBase } from './time.js';
import { checkBoundary, missingRotations, type Discontinuity } from './continuity.js';
import { VERSION } from '../version.js';
import { DiagnosisCollector, findingFamily, type ServerTally } from './diagnosis.js';
import { formatNumber } from '../numbers.js';

/** How far the reading of one input is: bytes of it (compressed, when gzip'd) and packets so far in the analysis. */
export interface InputProgress {
  /** The input's position: in the order read (one capture), or among the inputs given (--separate). */
  input: number;
  path: string;
  bytesRead: number;
  packets: number;
}

export interface AnalyzeOptions {
  /** Server ports: only connections on them are analysed, and they decide roles without a handshake. */
  ports?: number[];
  /** Only report connections stuck at least this long at the end of the capture. */
  minAgeSeconds?: number;
  /** Most connections held at once (default 1,000,000); the idlest beyond are evicted and counted. */
  maxConnections?: number;
  /** Seconds a closed connection is kept to absorb late packets (default 120, a TIME_WAIT and more). */
  lingerSeconds?: number;
  signal?: AbortSignal;
  onProgress?: (progress: InputProgress) => void;
  /** Recorded in the report as the command that produced it. */
  command?: string;
}

export const DEFAULT_MAX_CONNECTIONS = 1_000_000;
/**
 * Capture time can step back (a clock change, inputs merged out of order). The time base sits this far
 * before the first packet so such packets still get times >= 0: downstream, -1 means "never" (no FIN,
 * not closed), and a negative time taken for it made a closed connection look open and close again.
 * Steps back further than this are held at the base for connection tracking (the capture's start and
 * end still say what the timestamps say).
 */
const TIME_BASE_MARGIN_SECONDS = 86_400;
/** A step back in capture time shorter than this is reordering between capture queues, not a clock change. */
const CLOCK_STEP_BACK_NANOS = 1e9;
const DEFAULT_LINGER_SECONDS = 120;
/** One-way connections worth a warning: this many, and one in twenty of all. */
const MIN_ONE_WAY_WARNING = 10;
/** Connections with packets missing worth a warning: this many, and one in two hundred of all. */
const MIN_LOSSY_WARNING = 10;
/** Distinct server endpoints reported one by one; the rest are summed in a row with ip '*'. */
const MAX_SERVER_ENTRIES = 10_000;

/**
 * Reads the inputs as one capture (in order of their first packet), follows every TCP connection
 * and reports the ones stuck half-closed at the end.
 */
export async function analyze(inputs: readonly (string | InputSource)[], options: AnalyzeOptions = {}): Promise<Report> {
  const sources = inputs.map((input) => (typeof input === 'string' ? { path: input } : input));
  const ordered = await orderByFirstPacket(sources);
  const ports = options.ports?.length ? new Set(options.ports) : undefined;
  const serverIds = new EndpointIndex(MAX_SERVER_ENTRIES);
  /** By server id. */
  const servers: ServerTally[] = [];
  const skipped: SkippedCounts = { unsupportedLink: 0, notIp: 0, notTcp: 0, fragment: 0, truncated: 0, badHeader: 0 };
  const totals = { packets: 0, tcpPackets: 0, reset: 0, closed: 0, unanswered: 0, oneWay: 0, lossy: 0 };

  // Scans and floods touch endless (address, port) pairs: past the cap they share one row.
  const otherServers = newTally({ ip: '*', port: 0 });
  const tally = (connection: Connection): ServerTally => {
    const serverSide = connection.clientSide === 0 ? 1 : 0;
    const id = serverIds.idOf(connection, serverSide);
    let entry = id < 0 ? otherServers : servers[id];
    if (!entry) {
      entry = newTally(endpointRef(connection, serverSide));
      servers[id] = entry;
    }
    entry.connections++;
    return entry;
  };
  const countEnded = (connection: Connection, entry: ServerTally): boolean => {
    if (connection.a.rstSeen || connection.b.rstSeen) {
      entry.reset++;
      totals.reset++;
      return true;
    }
    if (connection.a.finSeen && connection.b.finSeen) {
      entry.closed++;
      totals.closed++;
      return true;
    }
    return false;
  };
  const countUnanswered = (entry: ServerTally): void => {
    entry.unanswered++;
    totals.unanswered++;
  };

  const diagnosis = new DiagnosisCollector();
  const tracker = new ConnectionTracker({
    maxConnections: options.maxConnections ?? DEFAULT_MAX_CONNECTIONS,
    lingerNanos: (options.lingerSeconds ?? DEFAULT_LINGER_SECONDS) * 1e9,
    ports,
    onRelease: (connection: Connection, reason: ReleaseReason) => {
      if (isOneWay(connection)) totals.oneWay++;
      if (connection.a.ackedUnseen || connection.b.ackedUnseen) totals.lossy++;
      const entry = tally(connection);
      if (reason === 'unanswered') countUnanswered(entry);
      else countEnded(connection, entry);
      diagnosis.observe(connection, Number.POSITIVE_INFINITY);
    },
  });

  const segment = newTcpSegment();
  const firstKnown = ordered.find((o) => o.first)?.first;
  let time = new TimeBase((firstKnown?.seconds ?? 0) - TIME_BASE_MARGIN_SECONDS, 6);
  let timeBaseSet = firstKnown !== undefined;
  // Earliest and latest packet time. A typed array, not two closure variables: a double written to a
  // closure variable is boxed anew on every write, which here would be once per packet.
  const captureBounds = new Float64Array([Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY]);
  let inputIndex = 0;
  const summaries: InputSummary[] = [];
  // Per input: packets stamped earlier than the packet before them, beyond reordering.
  const stepsBack = { previous: Number.NEGATIVE_INFINITY, count: 0, largest: 0, firstFrame: 0 };
  const stepBackWarnings: string[] = [];

  const onRecord = (record: CaptureRecord): void => {
    totals.packets++;
    if (!timeBaseSet) {
      time = new TimeBase(record.seconds - TIME_BASE_MARGIN_SECONDS, 6);
      timeBaseSet = true;
    }
    const now = time.relative(record.seconds, record.nanos);
    if (stepsBack.previous - now > CLOCK_STEP_BACK_NANOS) {
      if (stepsBack.count++ === 0) stepsBack.firstFrame = record.frame;
      stepsBack.largest = Math.max(stepsBack.largest, stepsBack.previous - now);
    }
    stepsBack.previous = now;
    if (now < captureBounds[0]!) captureBounds[0] = now;
    if (now > captureBounds[1]!) captureBounds[1] = now;
    const status = decodeFrame(record.linkType, record.data, record.offset, record.caplen, segment);
    if (status !== DecodeStatus.ok) {
      skipped[DECODE_STATUS_NAMES[status] as keyof SkippedCounts]++;
      return;
    }
    totals.tcpPackets++;
    tracker.onSegment(segment, Math.max(0, now), inputIndex, record.frame);
  };

  const discontinuities: Discontinuity[] = [];
  for (const { source, first } of ordered) {
    if (options.signal?.aborted) break;
    const previous = summaries[summaries.length - 1];
    const boundary = previous ? checkBoundary(previous, first, source.path, inputIndex) : null;
    if (boundary) {
      discontinuities.push(boundary);
      if (boundary.kind === 'gap') tracker.markLiveSpansGap();
    }
    const summary = await readCapture(source, onRecord, {
      signal: options.signal,
      onProgress: (bytesRead) => options.onProgress?.({ input: inputIndex, path: source.path, bytesRead, packets: totals.packets }),
    });
    summaries.push(summary);
    if (stepsBack.count > 0) {
      stepBackWarnings.push(
        `${source.path}: time steps back ${formatNumber(stepsBack.count)} ${stepsBack.count === 1 ? 'time' : 'times'} (by up to ${formatNumber(roundSeconds(stepsBack.largest / 1e9))} s, first at frame ${formatNumber(stepsBack.firstFrame)}): ages and durations around it may be off`,
      );
    }
    Object.assign(stepsBack, { previous: Number.NEGATIVE_INFINITY, count: 0, largest: 0, firstFrame: 0 });
    inputIndex++;
  }

  const fractionDigits = summaries.reduce((most, s) => (s.packets > 0 ? Math.max(most, s.fractionDigits) : most), 6);
  time = new TimeBase(time.baseSeconds, fractionDigits);
  const captureStart = captureBounds[0]!;
  const captureEnd = captureBounds[1]!;
  const hasPackets = captureEnd >= captureStart;
  const endTime = hasPackets ? captureEnd : 0;
  const minAge = options.minAgeSeconds ?? 0;

  const findings: Finding[] = [];
  const stillSending: Finding[] = [];
  let openAtEnd = 0;
  let closeWaitAnyAge = 0;
  for (const connection of tracker.live(Connection.blank())) {
    tracker.roles.resolve(connection);
    if (isOneWay(connection)) totals.oneWay++;
    if (connection.a.ackedUnseen || connection.b.ackedUnseen) totals.lossy++;
    inferMissingFin(connection);
    inferMissingFinAck(connection, endTime);
    const entry = tally(connection);
    diagnosis.observe(connection, endTime);
    if (countEnded(connection, entry) || connection.superseded) continue;
    // Given up on as the tracker would have, had a sweep come after its time was up.
    if (connection.isUnanswered && connection.lastTime < endTime - UNANSWERED_GIVE_UP_NANOS) {
      countUnanswered(entry);
      continue;
    }
    const stuck = closeWaitSide(connection);
    const sending = stuck !== -1 && isStillSending(connection, stuck, endTime);
    if (stuck === -1 || sending) {
      entry.openAtEnd++;
      openAtEnd++;
      if (sending) {
        entry.stillSending++;
        stillSending.push(describeFinding(connection, stuck, time, endTime));
      }
      continue;
    }
    closeWaitAnyAge++;
    const finding = describeFinding(connection, stuck, time, endTime);
    if (finding.stuckSeconds < minAge) continue;
    findings.push(finding);
    entry.closeWait++;
    if (finding.stuckSide === 'server') entry.closeWaitServerSide++;
    else entry.closeWaitClientSide++;
    entry.oldestStuckSeconds = Math.max(entry.oldestStuckSeconds ?? 0, finding.stuckSeconds);
  }
  const longestFirst = (x: Finding, y: Finding) => y.stuckSeconds - x.stuckSeconds || compareRefs(x.server, y.server) || compareRefs(x.client, y.client);
  findings.sort(longestFirst);
  stillSending.sort(longestFirst);

  const warnings: string[] = [];
  if (tracker.evicted > 0) {
    warnings.push(
      `${formatNumber(tracker.evicted)} open connections were evicted because more than ${formatNumber(options.maxConnections ?? DEFAULT_MAX_CONNECTIONS)} were open at once: findings may be incomplete (raise --max-connections)`,
    );
  }
  for (const summary of summaries) for (const warning of summary.warnings) warnings.push(`${summary.path}: ${warning}`);
  for (const warning of stepBackWarnings) warnings.push(warning);
  for (const summary of summaries) {
    const unsupported = summary.linkTypes.filter((linkType) => !SUPPORTED_LINK_TYPES.includes(linkType));
    if (unsupported.length > 0) warnings.push(`${summary.path}: link type ${unsupported.join(', ')} is not one closewait decodes (Ethernet, Linux SLL/SLL2, raw IP, NULL/LOOP, PPP, NFLOG...): its packets were skipped`);
  }
  for (const warning of captureQualityWarnings(totals, skipped, tracker, servers, options.ports)) warnings.push(warning);
  for (const discontinuity of discontinuities) warnings.push(discontinuity.message);
  for (const warning of missingRotations(summaries.map((s) => s.path))) warnings.push(warning);
  const unread = ordered.length - summaries.length;
  if (unread > 0) warnings.push(`interrupted: ${formatNumber(unread)} of ${formatNumber(ordered.length)} inputs not read; the report covers only what was read before the stop`);

  if (otherServers.connections > 0) servers.push(otherServers);
  const serverList = [...servers].sort((x, y) => y.closeWait - x.closeWait || y.connections - x.connections || compareRefs(x, y));
  const countSide = (side: 'server' | 'client') => findings.filter((f) => f.stuckSide === side).length;
  const diagnosed = diagnosis.finish({ findings, servers: serverList, time, captureStart, captureEnd });
  return {
    schemaVersion: SCHEMA_VERSION,
    tool: { name: 'closewait', version: VERSION },
    command: options.command ?? null,
    inputs: summaries.map((summary) => inputReport(summary)),
    summary: {
      packets: totals.packets,
      tcpPackets: totals.tcpPackets,
      connections: tracker.connectionsSeen,
      closeWait: findings.length,
      closeWaitServerSide: countSide('server'),
      closeWaitClientSide: countSide('client'),
      closeWaitAnyAge,
      reset: totals.reset,
      closed: totals.closed,
      openAtEnd,
      stillSending: stillSending.length,
      unanswered: totals.unanswered,
      oneWay: totals.oneWay,
      skipped,
      filteredOut: tracker.packetsFilteredOut,
      evicted: tracker.evicted,
      captureStartTime: hasPackets ? time.format(captureStart) : null,
      captureEndTime: hasPackets ? time.format(captureEnd) : null,
      durationSeconds: hasPackets ? (captureEnd - captureStart) / 1e9 : 0,
      ports: options.ports?.length ? [...options.ports] : null,
      minAgeSeconds: minAge,
    },
    findings,
    stillSending,
    servers: diagnosed.servers,
    patterns: diagnosed.patterns,
    diagnosis: diagnosed.diagnosis,
    timeline: diagnosed.timeline,
    warnings,
  };
}

function describeFinding(connection: Connection, stuck: 0 | 1, time: TimeBase, endTime: number): Finding {
  const peerSide = stuck === 0 ? 1 : 0;
  const peer = connection.endpoint(peerSide);
  const self = connection.endpoint(stuck);
  const clientSide = connection.clientSide === 1 ? 1 : 0;
  const serverSide = clientSide === 0 ? 1 : 0;
  return {
    kind: 'close-wait',
    stuckSide: stuck === serverSide ? 'server' : 'client',
    server: endpointRef(connection, serverSide),
    client: endpointRef(connection, clientSide),
    peerFinTime: time.format(peer.finTime),
    peerFinAckTime: time.format(peer.finAckTime),
    stuckSeconds: roundSeconds((endTime - peer.finTime) / 1e9),
    connectionStartTime: time.format(connection.firstTime),
    handshakeSeen: connection.endpoint(clientSide).synSeen,
    roleReason: connection.roleReason ?? 'lower-port',
    stuckState: endpointState(connection, stuck),
    peerState: endpointState(connection, peerSide),
    clientBytes: connection.endpoint(clientSide).bytesSent,
    serverBytes: connection.endpoint(serverSide).bytesSent,
    uncertain: uncertainty(connection, stuck),
    reconnectAttempts: connection.synsIntoOpen,
    bytesAfterPeerFin: Math.max(0, self.bytesSent - self.bytesSentAtPeerFin),
    lastDataTime: self.lastDataTime >= 0 ? time.format(self.lastDataTime) : null,
    peerWindowClosed: isBlockedByPeerWindow(connection, stuck),
    family: findingFamily(connection, stuck === serverSide ? 'server' : 'client'),
    // Copies: the connection is one instance, refilled for the next.
    evidence: {
      firstPacket: { ...connection.firstFrame },
      peerFin: { ...peer.finFrame! },
      peerFinAck: { ...peer.finAckFrame! },
      lastPacket: { input: connection.lastInput, frame: connection.lastFrameNumber },
    },
  };
}

/**
 * What the capture itself lacks, said once: a direction, the --port's traffic, whole headers, packets.
 * Each of these made an all-clear that was no answer, or findings that rest on packets not seen.
 */
function captureQualityWarnings(
  totals: { packets: number; oneWay: number; lossy: number },
  skipped: SkippedCounts,
  tracker: ConnectionTracker,
  servers: readonly (ServerTally | undefined)[],
  ports: readonly number[] | undefined,
): string[] {
  const warnings: string[] = [];
  const connections = tracker.connectionsSeen;
  if (totals.oneWay >= MIN_ONE_WAY_WARNING && totals.oneWay * 20 >= connections) {
    const busiest = servers.reduce<ServerTally | null>((most, s) => (s && (!most || s.connections > most.connections) ? s : most), null);
    const port = ports?.[0] ?? busiest?.port;
    const filter = port !== undefined ? `a filter such as 'dst port ${port}'` : 'a filter on one direction';
    warnings.push(
      `${formatNumber(totals.oneWay)} of ${formatNumber(connections)} connections were seen from one side only (${formatNumber(connections - totals.oneWay)} both ways): ` +
        `the capture lacks a direction of the traffic (${filter}, asymmetric routing?). A socket stuck in CLOSE_WAIT shows as its ACK of the peer's FIN, ` +
        `in the direction that is missing, so those connections cannot show it: capture both directions${port !== undefined ? ` ('port ${port}')` : ''}`,
    );
  }
  if (ports?.length && connections === 0 && tracker.packetsFilteredOut > 0) {
    warnings.push(
      `none of the ${formatNumber(tracker.packetsFilteredOut)} TCP packets was on --port ${ports.join(', ')}; the capture's busiest ports: ${busiestPorts(tracker.filteredOutByPort!)}`,
    );
  }
  if (skipped.truncated > 0) {
    const all = skipped.truncated === totals.packets;
    warnings.push(
      `${formatNumber(skipped.truncated)} of ${formatNumber(totals.packets)} packets end before their TCP header does (cut short in the capture: a snapshot length below ~96 bytes?): ` +
        (all ? 'nothing in this capture could be analysed' : 'the connections they belong to may be missing or misread') +
        '; capture with tcpdump -s 96 or more (the default keeps whole packets)',
    );
  }
  if (totals.lossy >= MIN_LOSSY_WARNING && totals.lossy * 200 >= connections) {
    warnings.push(
      `${formatNumber(totals.lossy)} of ${formatNumber(connections)} connections lack packets the other side acknowledged: the capture lost packets ` +
        `(tcpdump's 'packets dropped by kernel'?). Findings on such connections are marked uncertain; a larger buffer (tcpdump -B) or a narrower filter loses fewer`,
    );
  }
  return warnings;
}

/** The three ports with the most packets, with their counts: '20880 (812 packets), 22 (40 packets)'. */
function busiestPorts(packetsByPort: Uint32Array): string {
  const top: number[] = [];
  for (let port = 0; port < packetsByPort.length; port++) {
    if (packetsByPort[port] === 0) continue;
    top.push(port);
    top.sort((x, y) => packetsByPort[y]! - packetsByPort[x]! || x - y);
    if (top.length > 3) top.pop();
  }
  return top.map((port) => `${port} (${formatNumber(packetsByPort[port]!)} ${packetsByPort[port] === 1 ? 'packet' : 'packets'})`).join(', ');
}

/**
 * Packets from one side only, and more than its SYNs (an attempt nobody answered is two-sided as far as
 * the capture goes: the answer never came) or a single packet (a stray RST, a keep-alive at the edge).
 */
function isOneWay(connection: Connection): boolean {
  const { a, b } = connection;
  if ((a.packets === 0) === (b.packets === 0)) return false;
  const sender = a.packets > 0 ? a : b;
  return sender.packets >= 2 && !(sender.synSeen && sender.packets === sender.synRetransmits + 1);
}

function newTally(server: EndpointRef): ServerTally {
  return { ...server, connections: 0, closeWait: 0, closeWaitServerSide: 0, closeWaitClientSide: 0, reset: 0, closed: 0, openAtEnd: 0, stillSending: 0, unanswered: 0, oldestStuckSeconds: null };
}

function endpointRef(connection: Connection, side: 0 | 1): EndpointRef {
  return side === 0
    ? { ip: formatAddress(connection.addressA, connection.family), port: connection.portA }
    : { ip: formatAddress(connection.addressB, connection.family), port: connection.portB };
}

function compareRefs(x: EndpointRef, y: EndpointRef): number {
  return x.ip < y.ip ? -1 : x.ip > y.ip ? 1 : x.port - y.port;
}

function roundSeconds(seconds: number): number {
  return Math.round(seconds * 1e6) / 1e6;
}

function inputReport(summary: InputSummary): InputReport {
  const digits = summary.fractionDigits;
  const stamp = (t: { seconds: number; nanos: number } | null) => (t ? new TimeBase(t.seconds, digits).format(t.nanos) : null);
  return {
    path: summary.path,
    format: summary.format,
    compressed: summary.compressed,
    compression: summary.compression,
    linkTypes: summary.linkTypes,
    packets: summary.packets,
    firstPacketTime: stamp(summary.firstPacketTime),
    lastPacketTime: stamp(summary.lastPacketTime),
    truncated: summary.truncated,
    warnings: summary.warnings,
    error: summary.error,
  };
}

/** Rotated files are one capture: read them in order of their first packet, not of their names. */
async function orderByFirstPacket(sources: InputSource[]): Promise<{ source: InputSource; first: { seconds: number; nanos: number } | null }[]> {
  const withTimes = [];
  for (const source of sources) withTimes.push({ source, first: source.stream ? null : await firstPacketTime(source) });
  const key = (t: { seconds: number; nanos: number } | null) => (t ? t.seconds * 1e9 + t.nanos : Number.POSITIVE_INFINITY);
  return withTimes
    .map((entry, position) => ({ ...entry, position }))
    .sort((x, y) => key(x.first) - key(y.first) || x.position - y.position);
}
