import { formatAddress, formatEndpoint } from '../flow/address.js';
import type { Connection, Endpoint } from '../flow/connection.js';
import type {
  DiagnosisItem,
  EndpointRef,
  Finding,
  FindingFamily,
  ProbePattern,
  ServerSummary,
  SlowClose,
  TimelinePoint,
} from './model.js';
import type { TimeBase } from './time.js';
import { EndpointIndex } from '../flow/endpoints.js';
import { buildTimeline } from './timeline.js';
import { formatNumber } from '../numbers.js';

/** Server fields the diagnosis fills in; run.ts tallies the rest. */
export type DiagnosisServerFields =
  | 'oldestStuckClient'
  | 'onsetTime'
  | 'leakWindow'
  | 'stuckPerMinute'
  | 'stuckByFamily'
  | 'slowClose'
  | 'clientSlowClose'
  | 'reconnectsIntoCloseWait'
  | 'unansweredSyns'
  | 'synAckRetransmits';

export type ServerTally = Omit<ServerSummary, DiagnosisServerFields>;

export const FINDING_FAMILIES = ['probe', 'unanswered-request', 'answered-not-closed', 'client-not-closed'] as const satisfies readonly FindingFamily[];

/** Bounds: memory stays a few MB whatever the capture holds. */
const MAX_SERVERS = 10_000;
const MAX_PROBE_CLIENTS = 2_048;
const START_SAMPLE_SIZE = 1_024;
const CLOSE_SAMPLE_SIZE = 512;
/** A periodic client needs this many payload-free connections, with gaps this regular (IQR / median). */
const MIN_PROBES_FOR_PATTERN = 6;
const MAX_PERIODIC_SPREAD = 0.5;
/** Clients whose intervals are this close (relative) are one pattern. */
const SAME_INTERVAL = 0.2;
/** A server whose p95 close takes this long (s) is heading for CLOSE_WAIT. */
const SLOW_CLOSE_SECONDS = 1;
/** A SYN this recent at capture end (ns) may still be answered after it. */
const SYN_ANSWER_GRACE_NANOS = 1e9;
/** A rate needs a few events over a second or more; below that it is noise, not a pace. */
const MIN_STUCK_FOR_RATE = 3;
const MIN_WINDOW_FOR_RATE_NANOS = 1e9;
/** A finding stuck for less than this (s) at capture end might still close normally. */
const RECENT_STUCK_SECONDS = 1;
const MIN_RECENT_STUCK_SECONDS = 0.01;

/** What a stuck connection looks like; see FindingFamily. */
export function findingFamily(connection: Connection, stuckSide: 'server' | 'client'): FindingFamily {
  if (stuckSide === 'client') return 'client-not-closed';
  const client = clientEndpoint(connection);
  const server = serverEndpoint(connection);
  if (server.bytesSent > 0) return 'answered-not-closed';
  if (client.bytesSent > 0) return 'unanswered-request';
  return 'probe';
}

/**
 * Start times of one client's payload-free connections, for the probe interval. Bounded: past its
 * size it keeps every other sample and from then on every `stride`-th arrival, so the gaps between
 * kept samples are `stride` intervals.
 */
class StartSample {
  constructor(readonly ip: string) {}
  times = new Float64Array(32);
  length = 0;
  stride = 1;
  seen = 0;

  add(time: number): void {
    const index = this.seen++;
    if (index % this.stride !== 0) return;
    if (this.length === START_SAMPLE_SIZE) {
      for (let i = 0; i < this.length / 2; i++) this.times[i] = this.times[2 * i]!;
      this.length /= 2;
      this.stride *= 2;
      if (index % this.stride !== 0) return;
    }
    if (this.length === this.times.length) {
      const grown = new Float64Array(Math.min(START_SAMPLE_SIZE, this.times.length * 2));
      grown.set(this.times);
      this.times = grown;
    }
    this.times[this.length++] = time;
  }

  /** Median gap between starts and its spread (IQR / median), or null with too few. */
  interval(): { seconds: number; spread: number } | null {
    if (this.seen < MIN_PROBES_FOR_PATTERN || this.length < 3) return null;
    const sorted = Array.from(this.times.subarray(0, this.length)).sort((x, y) => x - y);
    const gaps = sorted.slice(1).map((t, i) => (t - sorted[i]!) / this.stride);
    gaps.sort((x, y) => x - y);
    const median = quantile(gaps, 0.5);
    if (median <= 0) return null;
    return { seconds: median / 1e9, spread: (quantile(gaps, 0.75) - quantile(gaps, 0.25)) / median };
  }

  /** Starts inside [from, to] (ns), scaled back by the stride. */
  countBetween(from: number, to: number): number {
    let n = 0;
    for (let i = 0; i < this.length; i++) if (this.times[i]! >= from && this.times[i]! <= to) n++;
    return n * this.stride;
  }
}

/** Times (s) from the peer's FIN to the server's close: a reservoir sample plus the exact max. */
class CloseSample {
  values: number[] = [];
  count = 0;
  max = 0;
  private random = 0x2545f491;

  add(seconds: number): void {
    this.count++;
    if (seconds > this.max) this.max = seconds;
    if (this.values.length < CLOSE_SAMPLE_SIZE) {
      this.values.push(seconds);
      return;
    }
    // xorshift32: deterministic, so the same capture always gives the same report
    this.random ^= this.random << 13;
    this.random ^= this.random >>> 17;
    this.random ^= this.random << 5;
    const slot = (this.random >>> 0) % this.count;
    if (slot < CLOSE_SAMPLE_SIZE) this.values[slot] = seconds;
  }

  summary(): SlowClose {
    const sorted = [...this.values].sort((x, y) => x - y);
    return { count: this.count, p50Seconds: round(quantile(sorted, 0.5)), p95Seconds: round(quantile(sorted, 0.95)), maxSeconds: round(this.max) };
  }
}

interface ReconnectExample {
  client: EndpointRef;
  synTime: number;
  synFrame: { input: number; frame: number } | null;
}

class ServerStats {
  constructor(readonly server: EndpointRef) {}
  closes: CloseSample | null = null;
  /** Server-first closes: from the server's FIN to the client's. */
  clientCloses: CloseSample | null = null;
  reconnects = 0;
  reconnectExample: ReconnectExample | null = null;
  /** New SYNs answered with the challenge ACK of an earlier connection the capture never saw. */
  reconnectsIntoUnseen = 0;
  unseenReconnectExample: ReconnectExample | null = null;
  unansweredSyns = 0;
  /** Connections whose SYN never got any answer. */
  synsNeverAnswered = 0;
  /** Capture time (ns) of the first and last handshake that stalled (SYN unanswered or SYN-ACK resent). */
  stalledFrom = Number.POSITIVE_INFINITY;
  stalledTo = Number.NEGATIVE_INFINITY;
  synAckRetransmits = 0;
  /** Handshakes this server answered: without any, "unanswered" SYNs may be a one-way capture. */
  synsAnswered = 0;
  /** By client address id (DiagnosisCollector.clientIds). */
  probeClients = new Map<number, StartSample>();
}

interface FinishInput {
  findings: Finding[];
  servers: ServerTally[];
  time: TimeBase;
  /** Capture start and end, ns since the time base; end < start when there were no packets. */
  captureStart: number;
  captureEnd: number;
}

export interface DiagnosisResult {
  servers: ServerSummary[];
  patterns: ProbePattern[];
  diagnosis: DiagnosisItem[];
  timeline: TimelinePoint[];
}

/**
 * Gathers what the diagnosis needs from each connection as it leaves the tracker (and from the ones
 * still live at the end), in bounded aggregates per server; `finish` turns them and the findings into
 * per-server figures, patterns, diagnosis items and the timeline.
 */
export class DiagnosisCollector {
  private readonly serverIds = new EndpointIndex(MAX_SERVERS);
  /** By server id. */
  private readonly stats: ServerStats[] = [];
  private probeClientCount = 0;
  /** Client addresses by number: a probe storm must not format an address string per connection. */
  private readonly clientIds = new EndpointIndex(MAX_PROBE_CLIENTS, true);

  /** Called once per connection: at release, or at the end for the ones still in the table. */
  observe(connection: Connection, captureEnd: number): void {
    if (connection.clientSide < 0) return;
    const stats = this.statsFor(connection);
    if (!stats) return;
    const client = clientEndpoint(connection);
    const server = serverEndpoint(connection);

    if (server.synAckSeen) stats.synsAnswered++;
    if (client.synSeen) {
      stats.synAckRetransmits += server.synAckSeen ? server.synRetransmits : 0;
      const answered = server.synAckSeen || server.rstSeen || server.packets > 0;
      // Across a gap in the inputs (a rotated file missing) the answer may be in what is missing: that
      // is no sign of a listener that stopped answering. SYNs sent again are seen, and still count.
      const settled = captureEnd - client.synTime >= SYN_ANSWER_GRACE_NANOS && !connection.spansGap;
      const never = !answered && settled ? 1 : 0;
      // A SYN sent again after a challenge ACK (below) is no sign of a listener that stopped answering.
      const retried = Math.max(0, client.synRetransmits - connection.challengedSyns);
      stats.unansweredSyns += retried + never;
      stats.synsNeverAnswered += never;
      if (retried + never > 0 || (server.synAckSeen && server.synRetransmits > 0)) {
        stats.stalledFrom = Math.min(stats.stalledFrom, client.synTime);
        stats.stalledTo = Math.max(stats.stalledTo, client.synTime);
      }
    }

    if (client.synSeen && server.synAckSeen && client.bytesSent === 0 && server.bytesSent === 0) {
      const clientId = this.clientIds.idOf(connection, clientSide(connection));
      let sample = stats.probeClients.get(clientId);
      if (!sample && clientId >= 0 && this.probeClientCount < MAX_PROBE_CLIENTS) {
        sample = new StartSample(formatAddress(clientSide(connection) === 0 ? connection.addressA : connection.addressB, connection.family));
        stats.probeClients.set(clientId, sample);
        this.probeClientCount++;
      }
      sample?.add(client.synTime);
    }

    // The server's close after the client's FIN: how long the socket sat in CLOSE_WAIT.
    if (client.finSeen && !client.rstSeen) {
      const serverClose = server.finSeen ? server.finTime : server.rstSeen ? server.rstTime : -1;
      if (serverClose >= client.finTime) (stats.closes ??= new CloseSample()).add((serverClose - client.finTime) / 1e9);
    }
    // The server closed first: how long the client sat in CLOSE_WAIT before it closed too.
    if (server.finSeen && !server.rstSeen) {
      const clientClose = client.finSeen ? client.finTime : client.rstSeen ? client.rstTime : -1;
      if (clientClose > server.finTime) (stats.clientCloses ??= new CloseSample()).add((clientClose - server.finTime) / 1e9);
    }

    // A new SYN answered with the ACK of an earlier connection on its tuple that the capture never saw:
    // the server still held that one, from before the capture (the tracker keeps the two apart).
    if (connection.challengedSyns > 0) {
      stats.reconnectsIntoUnseen += connection.challengedSyns;
      stats.unseenReconnectExample ??= { client: endpointOf(connection, clientSide(connection)), synTime: client.synTime, synFrame: client.synFrame ? { ...client.synFrame } : null };
    }

    // A new SYN on this tuple while the server sat in CLOSE_WAIT (Linux: challenge ACK, client RST).
    if (connection.synsIntoOpen > 0 && connection.pendingSynTime >= 0) {
      const synTime = connection.pendingSynTime;
      const inCloseWait = client.finSeen && client.finAcked && client.finAckTime <= synTime && !(server.finSeen && server.finTime <= synTime) && !(server.rstSeen && server.rstTime <= synTime);
      if (inCloseWait) {
        stats.reconnects++;
        const frame = connection.pendingSynFrame;
        // A copy: released connections are one reused instance.
        stats.reconnectExample ??= { client: endpointOf(connection, clientSide(connection)), synTime, synFrame: frame ? { ...frame } : null };
      }
    }
  }

  finish({ findings, servers, time, captureStart, captureEnd }: FinishInput): DiagnosisResult {
    const statsByKey = new Map<string, ServerStats>();
    for (const stats of this.stats) if (stats) statsByKey.set(formatEndpoint(stats.server.ip, stats.server.port), stats);
    // Findings carry their times as text, the report's form: each is read back once, not at every use.
    const finNanos = new Map<Finding, number>();
    const startNanos = new Map<Finding, number>();
    for (const finding of findings) {
      finNanos.set(finding, time.relative(...rfc3339Parts(finding.peerFinTime)));
      startNanos.set(finding, time.relative(...rfc3339Parts(finding.connectionStartTime)));
    }
    const stuckNanos = (finding: Finding) => finNanos.get(finding)!;
    const connectionStartNanos = (finding: Finding) => startNanos.get(finding)!;
    const byServer = new Map<string, Finding[]>();
    for (const finding of findings) {
      const key = formatEndpoint(finding.server.ip, finding.server.port);
      let list = byServer.get(key);
      if (!list) byServer.set(key, (list = []));
      list.push(finding);
    }

    const completed: ServerSummary[] = [];
    const leading = new Set<DiagnosisItem>();
    const patterns: ProbePattern[] = [];
    const items: DiagnosisItem[] = [];

    for (const tally of servers) {
      const key = formatEndpoint(tally.ip, tally.port);
      const stats = statsByKey.get(key);
      const stuck = byServer.get(key) ?? [];
      const finTimes = stuck.map(stuckNanos).sort((x, y) => x - y);
      const first = finTimes[0];
      const last = finTimes[finTimes.length - 1];
      const slowClose = stats?.closes ? stats.closes.summary() : null;
      const clientSlowClose = stats?.clientCloses ? stats.clientCloses.summary() : null;
      const oldest = stuck.reduce<Finding | null>((best, f) => (!best || f.stuckSeconds > best.stuckSeconds ? f : best), null);
      const stuckByFamily = Object.fromEntries(FINDING_FAMILIES.map((family) => [family, stuck.filter((f) => f.family === family).length])) as Record<FindingFamily, number>;
      const windowNanos = first !== undefined && last !== undefined ? last - first : 0;
      const summary: ServerSummary = {
        ...tally,
        oldestStuckClient: oldest ? oldest.client : null,
        onsetTime: first !== undefined ? time.format(first) : null,
        leakWindow: first !== undefined && last !== undefined ? [time.format(first), time.format(last)] : null,
        stuckPerMinute: finTimes.length >= MIN_STUCK_FOR_RATE && windowNanos >= MIN_WINDOW_FOR_RATE_NANOS ? round(((finTimes.length - 1) / windowNanos) * 60e9, 2) : null,
        stuckByFamily,
        slowClose,
        clientSlowClose,
        reconnectsIntoCloseWait: stats?.reconnects ?? 0,
        unansweredSyns: stats?.unansweredSyns ?? 0,
        synAckRetransmits: stats?.synAckRetransmits ?? 0,
      };
      completed.push(summary);

      // Findings near the end of the capture may be a close still on its way. The stuck side seen closing
      // quickly tells how long "too long" is (the server after clients' FINs, clients after the server's);
      // without closes to go by, a second.
      const recent = (closes: SlowClose | null, whose: string) => {
        const known = closes !== null && closes.count >= 5;
        const limit = known ? Math.max(MIN_RECENT_STUCK_SECONDS, 2 * closes.p95Seconds) : RECENT_STUCK_SECONDS;
        const reason = `stuck less than ${seconds(limit)} when the capture ended` + (known ? ` (twice ${whose} p95 close time, ${seconds(closes.p95Seconds)})` : '') + ': it may still have closed after it';
        return { limit, reason };
      };
      const recentBySide = { server: recent(slowClose, "this server's"), client: recent(clientSlowClose, "its clients'") };
      for (const finding of stuck) {
        const { limit, reason } = recentBySide[finding.stuckSide];
        if (finding.stuckSeconds >= limit) continue;
        finding.uncertain = finding.uncertain ? `${finding.uncertain}; ${reason}` : reason;
      }

      const serverPatterns = stats ? probePatterns(summary, stats, stuck, stuckNanos) : [];
      for (const pattern of serverPatterns) patterns.push(pattern);
      for (const item of diagnose(summary, stuck, serverPatterns, stats ?? null, { stuckNanos, connectionStartNanos }, leading)) items.push(item);
    }

    return {
      servers: completed,
      patterns,
      diagnosis: items.sort((x, y) => rank(x, leading) - rank(y, leading) || y.connections - x.connections),
      timeline: buildTimeline(completed, byServer, stuckNanos, time, captureStart, captureEnd),
    };
  }

  private statsFor(connection: Connection): ServerStats | undefined {
    const serverSide = clientSide(connection) === 0 ? 1 : 0;
    const id = this.serverIds.idOf(connection, serverSide);
    if (id < 0) return undefined;
    return (this.stats[id] ??= new ServerStats(endpointOf(connection, serverSide)));
  }
}

const KIND_ORDER: DiagnosisItem['kind'][] = [
  'periodic-probe', 'probe', 'unanswered-request', 'answered-not-closed', 'client-not-closed', 'reconnect-into-close-wait', 'listen-backlog', 'slow-close',
  'client-slow-close',
];

/** Kind order, except that a listen backlog that explains the stuck connections comes first. */
function rank(item: DiagnosisItem, leading: ReadonlySet<DiagnosisItem>): number {
  return leading.has(item) ? -1 : KIND_ORDER.indexOf(item.kind);
}

function probePatterns(server: ServerSummary, stats: ServerStats, stuck: Finding[], peerFinNanos: (finding: Finding) => number): ProbePattern[] {
  const periodic: { ip: string; seconds: number; spread: number; sample: StartSample }[] = [];
  for (const sample of stats.probeClients.values()) {
    const ip = sample.ip;
    const interval = sample.interval();
    if (interval && interval.spread <= MAX_PERIODIC_SPREAD) periodic.push({ ip, ...interval, sample });
  }
  periodic.sort((x, y) => x.seconds - y.seconds || (x.ip < y.ip ? -1 : 1));
  const groups: (typeof periodic)[] = [];
  for (const client of periodic) {
    const group = groups[groups.length - 1];
    if (group && Math.abs(client.seconds - group[0]!.seconds) <= SAME_INTERVAL * group[0]!.seconds) group.push(client);
    else groups.push([client]);
  }
  const patterns: ProbePattern[] = [];
  for (const group of groups) {
    const clients = group.map((c) => c.ip).sort();
    const stuckProbes = stuck.filter((f) => f.family === 'probe' && clients.includes(f.client.ip));
    if (stuckProbes.length === 0) continue;
    const intervals = group.map((c) => c.seconds).sort((x, y) => x - y);
    const intervalSeconds = quantile(intervals, 0.5);
    // Probes that started while these probes were getting stuck: from half an interval before the first
    // stuck probe's FIN to the last one's (other families' FINs can lag behind by a client timeout).
    const fins = stuckProbes.map(peerFinNanos).sort((x, y) => x - y);
    const from = fins[0]! - (intervalSeconds * 1e9) / 2;
    const inLeakWindow = group.reduce((n, c) => n + c.sample.countBetween(from, fins[fins.length - 1]!), 0);
    patterns.push({
      kind: 'periodic-probe',
      server: { ip: server.ip, port: server.port },
      clients,
      intervalSeconds: round(intervalSeconds, 4),
      intervalSpread: round(Math.max(...group.map((c) => c.spread)), 3),
      connections: group.reduce((n, c) => n + c.sample.seen, 0),
      stuck: stuckProbes.length,
      inLeakWindow,
    });
  }
  return patterns;
}

function diagnose(
  server: ServerSummary,
  stuck: Finding[],
  patterns: ProbePattern[],
  stats: ServerStats | null,
  times: { stuckNanos: (finding: Finding) => number; connectionStartNanos: (finding: Finding) => number },
  leading: Set<DiagnosisItem>,
): DiagnosisItem[] {
  const ref = { ip: server.ip, port: server.port };
  const at = formatEndpoint(server.ip, server.port);
  const items: DiagnosisItem[] = [];
  const item = (kind: DiagnosisItem['kind'], findings: Finding[], summary: string, hint: string | null): void => {
    items.push({
      kind,
      server: ref,
      summary: summary[0]!.toUpperCase() + summary.slice(1),
      hint,
      connections: findings.length,
      clientBytes: sum(findings, (f) => f.clientBytes),
      serverBytes: sum(findings, (f) => f.serverBytes),
      uncertain: uncertainOf(findings),
    });
  };
  const family = (name: FindingFamily) => stuck.filter((f) => f.family === name);
  // Handshakes stalling while the stuck connections were opened and closed: the accept queue was
  // full then, and sockets nobody read may never have been accepted at all.
  const backlog = stats !== null && (stats.unansweredSyns > 0 || stats.synAckRetransmits > 0);
  // Loops, not Math.min(...list): a long leak leaves more stuck connections than a call takes arguments.
  let stuckFrom = Number.POSITIVE_INFINITY;
  let stuckTo = Number.NEGATIVE_INFINITY;
  for (const finding of stuck) {
    stuckFrom = Math.min(stuckFrom, times.connectionStartNanos(finding));
    stuckTo = Math.max(stuckTo, times.stuckNanos(finding));
  }
  const backlogDuringLeak = backlog && stuck.length > 0 && stats.stalledFrom <= stuckTo && stats.stalledTo >= stuckFrom;
  const neverReadHint = (accepted: string) => (backlogDuringLeak ? maybeNeverAccepted(server.port) : accepted);

  const probes = family('probe');
  const patterned = new Set<Finding>();
  for (const pattern of patterns) {
    const mine = probes.filter((f) => pattern.clients.includes(f.client.ip));
    for (const f of mine) patterned.add(f);
    const each = pattern.inLeakWindow > 0 && mine.length >= 0.9 * pattern.inLeakWindow;
    const what = each
      ? `each probe during the leak window left one socket in CLOSE_WAIT (${formatNumber(mine.length)} of ${formatNumber(pattern.inLeakWindow)})`
      : `${mine.length} of its ${formatNumber(pattern.connections)} probes left a socket in CLOSE_WAIT${pattern.inLeakWindow > 0 ? ` (${pattern.inLeakWindow} started during the leak window)` : ''}`;
    item(
      'periodic-probe',
      mine,
      `Periodic probe from ${list(pattern.clients)} to ${at} every ~${seconds(pattern.intervalSeconds)} (gap spread ${Math.round(pattern.intervalSpread * 100)}%): ${what}.`,
      neverReadHint(ACCEPTED_NEVER_REGISTERED),
    );
  }
  const loose = probes.filter((f) => !patterned.has(f));
  if (loose.length > 0) {
    item('probe', loose, `${count(loose.length, 'connection')} to ${at} carried no payload either way (connect, then FIN) and the server never closed ${loose.length === 1 ? 'it' : 'them'}.`, neverReadHint(ACCEPTED_NEVER_REGISTERED));
  }

  const unanswered = family('unanswered-request');
  if (unanswered.length > 0) {
    item(
      'unanswered-request',
      unanswered,
      `${count(unanswered.length, 'request')} to ${at} (${bytes(sum(unanswered, (f) => f.clientBytes))} from the clients) ${unanswered.length === 1 ? 'was' : 'were'} ACKed by the server's kernel and never answered, and the server never closed ${unanswered.length === 1 ? 'it' : 'them'}: the application never read ${unanswered.length === 1 ? 'that socket' : 'those sockets'}.`,
      neverReadHint(
        'the request bytes still sit unread in the receive queue (Recv-Q above 0 in `ss -tn state close-wait`): the socket never reached the code that reads it — look at what hands accepted sockets to readers (a worker pool or event loop that was blocked, full, or failed to register the socket).',
      ),
    );
  }

  const answered = family('answered-not-closed');
  if (answered.length > 0) {
    // Answered after the FIN: the client half-closed once its request was sent, and the server wrote on
    // end-of-stream. Its read loop saw the end; what it skipped is the close after the last write.
    const afterFin = answered.filter((f) => f.bytesAfterPeerFin > 0).length;
    const them = answered.length === 1 ? 'it' : 'them';
    const answer = `${bytes(sum(answered, (f) => f.serverBytes))} from the server`;
    const story =
      afterFin === answered.length ? `got an answer (${answer}, sent after the client's FIN) and the server never closed ${them}.`
      : afterFin > 0 ? `got an answer (${answer}; ${formatNumber(afterFin)} answered after the client's FIN) and the server never closed ${them} after the client's FIN.`
      : `got an answer (${answer}) and the server never closed ${them} after the client's FIN.`;
    item(
      'answered-not-closed',
      answered,
      `${count(answered.length, 'connection')} to ${at} ${story}`,
      afterFin * 2 > answered.length
        ? 'the clients half-closed (shutdown after the request) and the application answered on end-of-stream, then never closed: look at the path that handles end-of-input (a read of -1 or EOF, channelInputShutdown, an on-end handler) for a write without the close after it.'
        : 'the application read and answered, then missed the close: look for a path after the response that skips close() (an error or timeout branch, a keep-alive or pool bookkeeping path, a stream or response object never closed).',
    );
  }

  const clientStuck = family('client-not-closed');
  if (clientStuck.length > 0) {
    const clients = [...new Set(clientStuck.map((f) => f.client.ip))].sort();
    item(
      'client-not-closed',
      clientStuck,
      `${count(clientStuck.length, 'connection')} to ${at} ${clientStuck.length === 1 ? 'is' : 'are'} stuck on the client side (${list(clients)}): the server closed first and the client never closed its end.`,
      'the client application holds connections the server has closed: connection pools and HTTP clients that do not release or validate them (a response body never consumed or closed, no eviction of idle or half-closed connections).',
    );
  }

  if (stats && (stats.reconnects > 0 || stats.reconnectsIntoUnseen > 0)) {
    const example = (e: ReconnectExample | null) =>
      e ? `, e.g. from ${formatEndpoint(e.client.ip, e.client.port)}${e.synFrame ? ` (input ${e.synFrame.input}, frame #${e.synFrame.frame})` : ''}` : '';
    const seen = stats.reconnects > 0 ? `${count(stats.reconnects, 'new SYN')} hit a 4-tuple of ${at} still in CLOSE_WAIT (the server answers with a challenge ACK, the client resets and retries)${example(stats.reconnectExample)}` : '';
    const unseen =
      stats.reconnectsIntoUnseen > 0
        ? `${count(stats.reconnectsIntoUnseen, 'new SYN')} to ${at} got a challenge ACK for an earlier connection on the same 4-tuple that the capture never saw: the server still held it from before the capture began${example(stats.unseenReconnectExample)}`
        : '';
    const total = stats.reconnects + stats.reconnectsIntoUnseen;
    items.push({
      kind: 'reconnect-into-close-wait',
      server: ref,
      summary: `${[seen, unseen].filter(Boolean).join('; ')}.`,
      hint: 'those clients see connect delays (Linux retries the SYN after ~10 ms, other stacks after their SYN timeout, 1 s or more): the stuck sockets now also cost the clients that reuse their ports.',
      connections: total,
      clientBytes: 0,
      serverBytes: 0,
      uncertain:
        stats.reconnectsIntoUnseen > 0
          ? `${formatNumber(stats.reconnectsIntoUnseen)} of ${formatNumber(total)}: the earlier connection is not in the capture; any open state answers a new SYN this way, CLOSE_WAIT is the likeliest where a server leaks sockets`
          : null,
    });
  }

  if (stats && (stats.unansweredSyns > 0 || stats.synAckRetransmits > 0)) {
    const parts = [
      stats.unansweredSyns > 0
        ? `${count(stats.unansweredSyns, 'client SYN')} to ${at} got no answer${stats.synsNeverAnswered > 0 ? ` (${count(stats.synsNeverAnswered, 'connection')} never got a SYN-ACK at all)` : ''}`
        : '',
      stats.synAckRetransmits > 0 ? `${count(stats.synAckRetransmits, 'SYN-ACK')} from ${at} ${stats.synAckRetransmits === 1 ? 'was' : 'were'} sent again` : '',
    ].filter(Boolean);
    const onlySyns = stats.synAckRetransmits === 0;
    const item: DiagnosisItem = {
      kind: 'listen-backlog',
      server: ref,
      summary:
        `${parts.join(' and ')}: the listener was not taking new connections${backlogDuringLeak ? ' while the stuck connections were opened and closed' : ''}, ` +
        `the sign of a full accept queue (the application not calling accept() fast enough)${onlySyns ? '; a firewall or SYN-flood protection dropping SYNs looks the same' : ''}.`,
      hint: `packets cannot tell a socket queued and never accepted from one accepted and never registered (both sit in CLOSE_WAIT once the client closes): \`ss -lnt 'sport = :${server.port}'\` tells — a listener Recv-Q at its backlog (Send-Q) means nothing is calling accept(); near 0 means the sockets were accepted and then leaked.`,
      connections: stats.unansweredSyns + stats.synAckRetransmits,
      clientBytes: 0,
      serverBytes: 0,
      uncertain: stats.synsAnswered === 0 && stats.synAckRetransmits === 0 ? 'the capture shows no SYN-ACK from this server at all: it may hold only one direction of the traffic' : null,
    };
    items.push(item);
    if (backlogDuringLeak || !onlySyns) leading.add(item);
  }

  const slow = server.slowClose;
  if (slow && slow.p95Seconds >= SLOW_CLOSE_SECONDS) {
    items.push({
      kind: 'slow-close',
      server: ref,
      summary: `${at} was slow to close after the client's FIN: p50 ${seconds(slow.p50Seconds)}, p95 ${seconds(slow.p95Seconds)}, max ${seconds(slow.maxSeconds)} over ${count(slow.count, 'close')}.`,
      hint: 'each of those sockets sat in CLOSE_WAIT until the close came: the close path waits on something (a blocking call, a timer, a busy event loop); under more load or one more failure it becomes a leak.',
      connections: slow.count,
      clientBytes: 0,
      serverBytes: 0,
      uncertain: null,
    });
  }
  const clientSlow = server.clientSlowClose;
  if (clientSlow && clientSlow.p95Seconds >= SLOW_CLOSE_SECONDS) {
    items.push({
      kind: 'client-slow-close',
      server: ref,
      summary: `clients of ${at} were slow to close after the server's FIN: p50 ${seconds(clientSlow.p50Seconds)}, p95 ${seconds(clientSlow.p95Seconds)}, max ${seconds(clientSlow.maxSeconds)} over ${count(clientSlow.count, 'close')}.`,
      hint: 'each of those client sockets sat in CLOSE_WAIT until the client closed it: connection pools that notice a closed connection only when they next lend or validate it; the same pools, with no eviction at all, are where client-side leaks come from.',
      connections: clientSlow.count,
      clientBytes: 0,
      serverBytes: 0,
      uncertain: null,
    });
  }
  return items;
}

const ACCEPTED_NEVER_REGISTERED =
  "the application accepted these sockets and never registered or closed them: look at error paths between accept() and registration (Netty 3.x NioServerBoss logged 'Failed to accept a connection.' and kept the socket; Netty 4 closes it). If the listener's Recv-Q in `ss -lnt` sits at its backlog instead, they were never accepted at all.";

function maybeNeverAccepted(port: number): string {
  return `the accept queue of this port overflowed during the capture (see the listen backlog): these sockets may sit in that queue, never accepted, rather than accepted and leaked — packets cannot tell the two apart. \`ss -lnt 'sport = :${port}'\` can: a listener Recv-Q at its backlog (Send-Q) means nothing calls accept(); near 0 means accept() ran and the sockets were never registered or closed.`;
}

function uncertainOf(findings: Finding[]): string | null {
  const unsure = findings.filter((f) => f.uncertain);
  if (unsure.length === 0) return null;
  const reasons = [...new Set(unsure.flatMap((f) => f.uncertain!.split('; ')))];
  return `${formatNumber(unsure.length)} of ${formatNumber(findings.length)}: ${reasons.join('; ')}`;
}

function clientSide(connection: Connection): 0 | 1 {
  return connection.clientSide === 1 ? 1 : 0;
}

function clientEndpoint(connection: Connection): Endpoint {
  return connection.endpoint(clientSide(connection));
}

function serverEndpoint(connection: Connection): Endpoint {
  return connection.endpoint(clientSide(connection) === 0 ? 1 : 0);
}

function endpointOf(connection: Connection, side: 0 | 1): EndpointRef {
  return side === 0
    ? { ip: formatAddress(connection.addressA, connection.family), port: connection.portA }
    : { ip: formatAddress(connection.addressB, connection.family), port: connection.portB };
}

/** Seconds and nanoseconds of an RFC 3339 UTC time as written by TimeBase.format. */
export function rfc3339Parts(text: string): [number, number] {
  const match = /^(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.(\d{1,9}))?Z$/.exec(text);
  if (!match) return [Number.NaN, 0];
  return [Date.parse(`${match[1]}Z`) / 1000, Number((match[2] ?? '').padEnd(9, '0'))];
}

/** Linear interpolation between closest ranks, on a sorted list. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return 0;
  const position = (sorted.length - 1) * q;
  const low = Math.floor(position);
  const high = Math.ceil(position);
  return sorted[low]! + (sorted[high]! - sorted[low]!) * (position - low);
}

function round(value: number, digits = 6): number {
  const factor = 10 ** digits;
  return Math.round(value * factor) / factor;
}

function sum<T>(values: readonly T[], of: (value: T) => number): number {
  return values.reduce((total, value) => total + of(value), 0);
}

function count(n: number, singular: string): string {
  return `${formatNumber(n)} ${n === 1 ? singular : `${singular}s`}`;
}

function bytes(n: number): string {
  return n === 1 ? '1 byte' : `${formatNumber(n)} bytes`;
}

function list(items: readonly string[]): string {
  return items.length <= 3 ? items.join(', ') : `${items.slice(0, 3).join(', ')} and ${items.length - 3} more`;
}

/** 0.25 s, 1.5 s, 42 s: short and exact enough for a sentence. */
function seconds(value: number): string {
  if (value >= 60) return `${Math.round(value)} s`;
  if (value >= 10) return `${Math.round(value * 10) / 10} s`;
  if (value >= 1) return `${Math.round(value * 100) / 100} s`;
  if (value >= 0.1) return `${Math.round(value * 1000) / 1000} s`;
  if (value >= 0.001) return `${Math.round(value * 10000) / 10} ms`;
  return `${Math.round(value * 1e6)} µs`;
}
