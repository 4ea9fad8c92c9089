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
  oldestStuckSeconds: number | null;
}

export interface InputReport {
  path: string;
  format: 'pcap' | 'pcapng' | null;
  compressed: boolean;
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
  openAtEnd: number;
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
  servers: ServerSummary[];
  warnings: string[];
}
