/** Where a packet sits in the inputs: which input (0-based, in analysis order) and its frame number there. */
export interface FrameRef {
  input: number;
  frame: number;
}

/**
 * Everything seen from one side of a connection. Times are nanoseconds since the analysis's first
 * packet (a double: exact for 104 days), so no per-packet objects are needed.
 */
export class Endpoint {
  packets = 0;
  /** Sequence number just after the SYN (or the first sequence number seen, mid-stream). */
  seqBase = 0;
  hasSeqBase = false;
  /** Highest byte sent, relative to seqBase: the payload bytes sent. */
  bytesSent = 0;
  /** Payload bytes sent again (segments wholly below what was already sent). */
  retransmittedBytes = 0;
  synSeen = false;
  isn = 0;
  /** SYNs (or SYN-ACKs) sent again with the same ISN: the handshake stalled. */
  synRetransmits = 0;
  synAckSeen = false;
  synTime = -1;
  synFrame: FrameRef | null = null;
  finSeen = false;
  finSeq = 0;
  finTime = -1;
  finFrame: FrameRef | null = null;
  finRetransmits = 0;
  /** The other side acknowledged this side's FIN (its ACK covers FIN seq + 1). */
  finAcked = false;
  finAckTime = -1;
  finAckFrame: FrameRef | null = null;
  rstSeen = false;
  rstTime = -1;
  rstFrame: FrameRef | null = null;
  /** This side acknowledged bytes of the other side's that the capture never showed. */
  ackedUnseen = false;
  /** Highest acknowledgement number this side sent, relative to the other side's seqBase. */
  highestAck = 0;
  /** When and where that acknowledgement was first sent (numbers, so the per-packet path stays allocation-free). */
  highestAckTime = -1;
  highestAckInput = 0;
  highestAckFrame = 0;
  /** This side's FIN was never captured but the other side acknowledged it (see inferMissingFin). */
  finInferred = false;
  /** This side's FIN was never seen acknowledged, nor ever sent again (see inferMissingFinAck). */
  finAckInferred = false;
  firstTime = -1;
  lastTime = -1;
  /** When this side last sent bytes it had not sent before (not a retransmission), or -1. */
  lastDataTime = -1;
  /** bytesSent when the other side's first FIN came: what this side sent after it is the difference. */
  bytesSentAtPeerFin = 0;
  /** Longest wait (ns) between two sends of new data, both after the other side's FIN. */
  maxDataGapAfterPeerFin = 0;
  /** The receive window in this side's latest packet (unscaled: only 0 means anything here), or -1. */
  lastWindow = -1;

  /** A copy that shares nothing with this one. */
  clone(): Endpoint {
    const copy = Object.assign(new Endpoint(), this);
    copy.synFrame = copyRef(this.synFrame);
    copy.finFrame = copyRef(this.finFrame);
    copy.finAckFrame = copyRef(this.finAckFrame);
    copy.rstFrame = copyRef(this.rstFrame);
    return copy;
  }
}

function copyRef(ref: FrameRef | null): FrameRef | null {
  return ref ? { input: ref.input, frame: ref.frame } : null;
}

/** How the server (accepting) side was decided. */
export type RoleReason = 'syn' | 'syn-ack' | 'port' | 'listener' | 'many-peers' | 'lower-port';

export type Family = 4 | 6;

/** One TCP connection: endpoint `a` is the lower (address, port) of the pair, `b` the higher. */
export class Connection {
  readonly a = new Endpoint();
  readonly b = new Endpoint();
  /** 0 when `a` is the client, 1 when `b` is, -1 while unknown. */
  clientSide: -1 | 0 | 1 = -1;
  roleReason: RoleReason | null = null;
  lastTime = -1;
  lastInput = 0;
  lastFrameNumber = 0;
  /** Time the connection became closed (RST, or FINs both ways), or -1. */
  closedTime = -1;
  /** A SYN with a new ISN arrived while this connection was still open (Linux answers with a challenge ACK). */
  pendingSynIsn = -1;
  pendingSynTime = -1;
  pendingSynFrame: FrameRef | null = null;
  /** New SYNs that hit this connection while it was open. */
  synsIntoOpen = 0;
  /**
   * Times this connection's SYN was answered with the ACK of an earlier connection on its 4-tuple, one
   * the capture never saw (a challenge ACK: the server still held that one open, in CLOSE_WAIT say).
   */
  challengedSyns = 0;
  /** The 4-tuple was taken over by a new connection (its SYN was answered) before this one closed. */
  superseded = false;
  /** The inputs had a gap in time while this connection was open. */
  spansGap = false;

  /**
   * Identity fields are writable only so the tracker can reuse one instance for every connection it
   * releases (see TrackerOptions.onRelease); nothing else changes them.
   */
  constructor(
    public serial: number,
    public family: Family,
    /** Addresses as four 32-bit words each (IPv4 mapped into IPv6). */
    public addressA: Uint32Array,
    public portA: number,
    public addressB: Uint32Array,
    public portB: number,
    public firstTime: number,
    public firstFrame: FrameRef,
  ) {}

  /**
   * A copy that shares nothing with this one: what to keep of a connection handed to the tracker's
   * onRelease, which reuses one instance for every release.
   */
  clone(): Connection {
    const copy = new Connection(this.serial, this.family, this.addressA.slice(), this.portA, this.addressB.slice(), this.portB, this.firstTime, { ...this.firstFrame });
    Object.assign(copy.a, this.a.clone());
    Object.assign(copy.b, this.b.clone());
    copy.clientSide = this.clientSide;
    copy.roleReason = this.roleReason;
    copy.lastTime = this.lastTime;
    copy.lastInput = this.lastInput;
    copy.lastFrameNumber = this.lastFrameNumber;
    copy.closedTime = this.closedTime;
    copy.pendingSynIsn = this.pendingSynIsn;
    copy.pendingSynTime = this.pendingSynTime;
    copy.pendingSynFrame = copyRef(this.pendingSynFrame);
    copy.synsIntoOpen = this.synsIntoOpen;
    copy.challengedSyns = this.challengedSyns;
    copy.superseded = this.superseded;
    copy.spansGap = this.spansGap;
    return copy;
  }

  /** An instance for the tracker to fill (loadInto) and reuse. */
  static blank(): Connection {
    return new Connection(0, 4, new Uint32Array(4), 0, new Uint32Array(4), 0, 0, { input: 0, frame: 0 });
  }

  endpoint(side: 0 | 1): Endpoint {
    return side === 0 ? this.a : this.b;
  }

  get isClosed(): boolean {
    return this.closedTime >= 0;
  }

  /** Neither side can ever be stuck again: a RST, FINs both ways, or the tuple was taken over. */
  get isFinished(): boolean {
    return this.a.rstSeen || this.b.rstSeen || (this.a.finSeen && this.b.finSeen) || this.superseded;
  }

  /** SYNs from one side (one attempt, sent again or not) and nothing at all from the other. */
  get isUnanswered(): boolean {
    const synOnly = (e: Endpoint) => e.synSeen && !e.synAckSeen && e.packets === e.synRetransmits + 1;
    return (this.b.packets === 0 && synOnly(this.a)) || (this.a.packets === 0 && synOnly(this.b));
  }
}
