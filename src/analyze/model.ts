/**
 * The report model: what every renderer reads and what `--format json` writes. Field names here are
 * a contract other tools rely on (schema/report.schema.json): add fields, never rename.
 */
export const SCHEMA_VERSION = 1;

export interface EndpointRef {
  ip: string;
  port: number;
}

export interface FrameEvidence {
  /** Index into `inputs`. */
  input: number;
  /** 1-based frame number within that input, as Wireshark and tcpdump number them. */
  frame: number;
}

export type TcpState =
  | 'SYN_SENT' | 'SYN_RECEIVED' | 'ESTABLISHED' | 'FIN_WAIT_1' | 'FIN_WAIT_2' | 'CLOSING' | 'TIME_WAIT'
  | 'CLOSE_WAIT' | 'LAST_ACK' | 'CLOSED' | 'UNKNOWN';

/**
 * What a stuck connection looks like, which points at the code path that leaked it:
 * - probe: the stuck server side carried no payload either way (connect, then FIN: health checks, port probes);
 * - unanswered-request: the client sent bytes the server ACKed and never answered (the application never read the socket);
 * - answered-not-closed: the server answered, then never closed;
 * - client-not-closed: the server closed first and the client never did (connection pools, HTTP clients).
 */
export type FindingFamily = 'probe' | 'unanswered-request' | 'answered-not-closed' | 'client-not-closed';

export interface Finding {
  kind: 'close-wait';
  /** Which side never closed: the accepting side ("server") or the connecting side ("client"). */
  stuckSide: 'server' | 'client';
  server: EndpointRef;
  client: EndpointRef;
  /** When the peer's FIN was captured: the moment the stuck side entered CLOSE_WAIT. */
  peerFinTime: string;
  peerFinAckTime: string;
  /** From the peer's FIN to the end of the capture. */
  stuckSeconds: number;
  connectionStartTime: string;
  /** True when the capture holds the connection's SYN; false when it started mid-connection. */
  handshakeSeen: boolean;
  /** How the server side was decided: syn, syn-ack, port, listener, many-peers, lower-port. */
  roleReason: string;
  stuckState: TcpState;
  peerState: TcpState;
  /** Payload bytes each side sent (highest sequence reached). */
  clientBytes: number;
  serverBytes: number;
  /** Why the verdict might be wrong (packets missing), or null. */
  uncertain: string | null;
  /** New SYNs from the client's port that hit this connection while it was stuck. */
  reconnectAttempts: number;
  /** Payload bytes the stuck side sent after its peer's FIN: it answered, then went silent. */
  bytesAfterPeerFin: number;
  /** When the stuck side last sent new payload, or null when it sent none. */
  lastDataTime: string | null;
  /** The peer's latest packet closed its receive window (0): it stopped reading, and the stuck side cannot send. */
  peerWindowClosed: boolean;
  family: FindingFamily;
  evidence: {
    firstPacket: FrameEvidence;
    peerFin: FrameEvidence;
    peerFinAck: FrameEvidence;
    lastPacket: FrameEvidence;
  };
}

export interface ServerSummary {
  ip: string;
  port: number;
  connections: number;
  closeWait: number;
  /** Of closeWait: stuck on the server side / on the client side. */
  closeWaitServerSide: number;
  closeWaitClientSide: number;
  /** Connections that ended with a RST from either side. */
  reset: number;
  /** Connections closed with FINs both ways. */
  closed: number;
  /** Connections still open (not stuck) at the end of the capture. */
  openAtEnd: number;
  /** Of openAtEnd: in CLOSE_WAIT but still sending (see Report.stillSending). */
  stillSending: number;
  /** Connection attempts that got no answer at all (SYNs only) and that the client had given up on (3 min silent). */
  unanswered: number;
  oldestStuckSeconds: number | null;
  /** The client of the connection stuck longest, or null. */
  oldestStuckClient: EndpointRef | null;
  /** Peer-FIN time of the first connection that got stuck, or null. */
  onsetTime: string | null;
  /** First and last stuck peer FIN: when the leak was happening. */
  leakWindow: [string, string] | null;
  /** Connections that got stuck per minute inside the leak window (null with fewer than 3 or a window under a second). */
  stuckPerMinute: number | null;
  /** Stuck connections by family. */
  stuckByFamily: Record<FindingFamily, number>;
  /** For connections that did close: from the peer's FIN to this server's FIN (or RST). */
  slowClose: SlowClose | null;
  /**
   * The other way round, for connections this server closed first: from its FIN to the client's FIN (or
   * RST), how long clients sat in CLOSE_WAIT before they closed.
   */
  clientSlowClose: SlowClose | null;
  /** Connections ended by a client's RST after its new SYN hit this tuple in CLOSE_WAIT (challenge ACK). */
  reconnectsIntoCloseWait: number;
  /** Client SYNs never answered by a SYN-ACK or RST (at least a second before the capture ended). */
  unansweredSyns: number;
  /** SYN-ACKs sent again with the same sequence number: the handshake's last ACK was not taken. */
  synAckRetransmits: number;
}

export interface SlowClose {
  /** Closes measured (a bounded sample when there are many). */
  count: number;
  p50Seconds: number;
  p95Seconds: number;
  maxSeconds: number;
}

/** A client that connects at a regular interval without sending anything (a health check or probe). */
export interface ProbePattern {
  kind: 'periodic-probe';
  server: EndpointRef;
  clients: string[];
  /** Median gap between the probe connections' starts. */
  intervalSeconds: number;
  /** Spread of those gaps: the interquartile range over the median (0 = perfectly regular). */
  intervalSpread: number;
  /** Payload-free connections from these clients to this server. */
  connections: number;
  /** Of them, stuck in CLOSE_WAIT at the end. */
  stuck: number;
  /** Of them, started inside the server's leak window. */
  inLeakWindow: number;
}

export type DiagnosisKind =
  | 'periodic-probe'
  | 'probe'
  | 'unanswered-request'
  | 'answered-not-closed'
  | 'client-not-closed'
  | 'reconnect-into-close-wait'
  | 'slow-close'
  | 'client-slow-close'
  | 'listen-backlog';

/** One finding of the diagnosis: a family of evidence on one server, in a sentence, with a hint. */
export interface DiagnosisItem {
  kind: DiagnosisKind;
  server: EndpointRef;
  /** One factual sentence. */
  summary: string;
  /** Where to look; null when the evidence does not point anywhere in particular. */
  hint: string | null;
  /** Connections this item is about. */
  connections: number;
  clientBytes: number;
  serverBytes: number;
  /** Why this might be wrong (packets missing, too recent), or null. */
  uncertain: string | null;
}

/** Open CLOSE_WAIT connections of one server at the end of one time bucket. */
export interface TimelinePoint {
  time: string;
  server: EndpointRef;
  closeWait: number;
}

export interface InputReport {
  path: string;
  format: 'pcap' | 'pcapng' | null;
  compressed: boolean;
  /** gzip, xz, zstd, bzip2 or lz4 (told by the first bytes), or null when not compressed. */
  compression: 'gzip' | 'xz' | 'zstd' | 'bzip2' | 'lz4' | null;
  linkTypes: number[];
  packets: number;
  firstPacketTime: string | null;
  lastPacketTime: string | null;
  truncated: boolean;
  warnings: string[];
  error: string | null;
}

export interface SkippedCounts {
  unsupportedLink: number;
  notIp: number;
  notTcp: number;
  fragment: number;
  truncated: number;
  badHeader: number;
}

export interface Summary {
  packets: number;
  tcpPackets: number;
  connections: number;
  closeWait: number;
  closeWaitServerSide: number;
  closeWaitClientSide: number;
  /** Before --min-age: connections stuck at all. */
  closeWaitAnyAge: number;
  reset: number;
  closed: number;
  /** Neither ended, stuck nor given up at the end of the capture. */
  openAtEnd: number;
  /** Of openAtEnd: in CLOSE_WAIT but still sending (see Report.stillSending). */
  stillSending: number;
  /** Connection attempts that got no answer at all (SYNs only) and that the client had given up on (3 min silent). */
  unanswered: number;
  /**
   * Connections seen from one side only, beyond a SYN or a single packet: the capture lacks the other
   * direction (a filter such as 'dst port 20880', asymmetric routing), where CLOSE_WAIT would show.
   */
  oneWay: number;
  skipped: SkippedCounts;
  /** TCP packets on ports outside --port. */
  filteredOut: number;
  /** Open connections dropped because more than --max-connections were open at once. */
  evicted: number;
  captureStartTime: string | null;
  captureEndTime: string | null;
  durationSeconds: number;
  ports: number[] | null;
  minAgeSeconds: number;
}

export interface Report {
  schemaVersion: typeof SCHEMA_VERSION;
  tool: { name: 'closewait'; version: string };
  /** The command line that produced the report, when run from the CLI. */
  command: string | null;
  inputs: InputReport[];
  summary: Summary;
  findings: Finding[];
  /**
   * In CLOSE_WAIT at the end but not stuck: the side still sent new data after its peer's FIN, recently
   * (see isStillSending), or cannot send because the peer closed its receive window (peerWindowClosed).
   * The peer half-closed (shutdown) and is still being answered. Longest in CLOSE_WAIT first; same
   * fields as a finding.
   */
  stillSending: Finding[];
  servers: ServerSummary[];
  /** Recurring patterns behind the findings (periodic probes). */
  patterns: ProbePattern[];
  /** The diagnosis: what the evidence says, one item per family and server, most important first. */
  diagnosis: DiagnosisItem[];
  /** Open CLOSE_WAIT over capture time per server with stuck connections (at most 60 buckets). */
  timeline: TimelinePoint[];
  warnings: string[];
}
