import { TCP_FLAG, type TcpSegment } from '../decode/segment.js';
import { Connection, type Endpoint, type Family, type FrameRef, type RoleReason } from './connection.js';
import { ConnectionTable, KEY_WORDS } from './table.js';
import { RoleResolver, type ConnectionEnds } from './roles.js';
import { TimeQueue } from './time-queue.js';

/**
 * Why a connection left the table before the end of the capture. 'unanswered': SYNs only, never a
 * packet back, and silent for longer than any client retries them (UNANSWERED_GIVE_UP_NANOS).
 */
export type ReleaseReason = 'closed' | 'evicted' | 'superseded' | 'unanswered';

export interface TrackerOptions {
  /** Most connections held at once; past it the idlest are evicted (and counted). */
  maxConnections: number;
  /** A closed connection stays this long (ns of capture time) to absorb late ACKs and retransmissions. */
  lingerNanos: number;
  /**
   * Called when a connection leaves the table, so aggregates can take what they need first. The
   * connection is one instance reused for every release (a hundred thousand per GiB of capture): it is
   * valid only until the callback returns, and whatever is kept of it must be copied.
   */
  onRelease: (connection: Connection, reason: ReleaseReason) => void;
  /** When given, only connections with one of these ports are followed. */
  ports?: ReadonlySet<number>;
}

const HALF_RANGE = 0x80000000;
/** Listening endpoints remembered by number, so a SYN-ACK from a known listener builds no strings. */
const MAX_KNOWN_LISTENERS = 65_536;
/**
 * A connection attempt that got no answer for this long (ns) is over: clients stop retrying their SYN
 * well before (Linux after ~127 s with its default 6 retries, Windows after ~21 s). Held longer, such
 * attempts (a dead backend, a scan) would fill the table for the rest of the capture.
 */
export const UNANSWERED_GIVE_UP_NANOS = 180e9;
/**
 * How often (ns of capture time) the table is scanned for such attempts: a scan of every slot, cheap at
 * this pace (a per-connection queue cost 4 % of the run, for the 0.4 % of connections never answered).
 */
const UNANSWERED_SCAN_EVERY_NANOS = 60e9;
const SWEEP_EVERY_NANOS = 5e9;
/**
 * A SYN sent again comes after the retransmission timeout: 1 s on Linux and in RFC 6298, 3 s on older
 * stacks, never under 200 ms. The same SYN sooner is one packet the capture saw twice.
 */
const DUPLICATE_SYN_NANOS = 100e6;
/**
 * Past this many connections in the table, closed ones linger only BUSY_LINGER_NANOS. At thousands of
 * connections a second (a load test, a probe storm) the full linger would hold every connection of two
 * minutes of traffic, ~0.8 KB each: 115,000 connections in 60 s of real-kernel traffic
 * (scripts/make-scale-capture.sh) took 234 MB, 124 MB with this. What a closed connection still sees (the last ACK, a FIN or RST sent again up to
 * three times) comes within a few seconds of its close.
 */
const BUSY_TABLE = 16_384;
const BUSY_LINGER_NANOS = 5e9;
/** On overflow, evict down to this share of the cap so eviction runs rarely. */
const EVICT_TO_SHARE = 0.9;
const INITIAL_IDS = 1024;

/**
 * Per-connection state lives in flat Float64Arrays indexed by the table id (stride C.stride), per-endpoint
 * state likewise at (id * 2 + side) * E.stride. Connections live long enough to be promoted, so objects
 * per connection (and a boxed number per time field) would die in the old generation; these columns are
 * reused with the ids. `Connection` objects are built from them only when a connection leaves the table,
 * when `live()` is read, and never on the per-packet path. Flags are stored as 0/1; frame refs as an
 * (input, frame) pair whose presence follows the matching flag.
 */
const enum C {
  // Fields a packet touches come first: they share a cache line or two.
  lastTime = 0, lastInput = 1, lastFrame = 2, closedTime = 3, superseded = 4, pendingSynIsn = 5, roleReason = 6,
  clientSide = 7, inUse = 8, serial = 9, family = 10, portA = 11, portB = 12, firstTime = 13, firstInput = 14,
  firstFrame = 15, pendingSynTime = 16, pendingSynInput = 17, pendingSynFrame = 18, synsIntoOpen = 19,
  spansGap = 20, challengeAck = 21, challengedSyns = 22, stride = 23,
}
const enum E {
  // Fields a packet touches come first: the first 15 (120 bytes) share two or three cache lines.
  packets = 0, lastTime = 1, lastWindow = 2, hasSeqBase = 3, seqBase = 4, bytesSent = 5, lastDataTime = 6, highestAck = 7,
  highestAckTime = 8, highestAckInput = 9, highestAckFrame = 10, finSeen = 11, finSeq = 12, finAcked = 13, rstSeen = 14,
  retransmittedBytes = 15, ackedUnseen = 16, synSeen = 17, isn = 18, firstTime = 19, synAckSeen = 20, synRetransmits = 21,
  synTime = 22, synInput = 23, synFrame = 24, finTime = 25, finInput = 26, finFrame = 27, finRetransmits = 28,
  finAckTime = 29, finAckInput = 30, finAckFrame = 31, rstTime = 32, rstInput = 33, rstFrame = 34, lastSynTime = 35,
  bytesSentAtPeerFin = 36, maxDataGapAfterPeerFin = 37, stride = 38,
}
/** A new connection's columns, copied in whole: most fields start at 0, these at -1. */
const NEW_CONN = initialRow(C.stride, [C.clientSide, C.lastTime, C.closedTime, C.pendingSynIsn, C.pendingSynTime, C.challengeAck]);
const NEW_ENDPOINT = initialRow(E.stride, [E.synTime, E.finTime, E.finAckTime, E.rstTime, E.highestAckTime, E.firstTime, E.lastTime, E.lastSynTime, E.lastDataTime, E.lastWindow]);
const NEW_ENDPOINTS = new Float64Array([...NEW_ENDPOINT, ...NEW_ENDPOINT]);

function initialRow(stride: number, minusOne: number[]): Float64Array {
  const row = new Float64Array(stride);
  for (const field of minusOne) row[field] = -1;
  return row;
}
/** roleReason column: 0 for none yet. */
const ROLE_SYN = 1;
const ROLE_SYN_ACK = 2;

/** a - b in sequence space, as a signed 32-bit distance. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class ConnectionTracker {
  private readonly table = new ConnectionTable();
  private capacity = INITIAL_IDS;
  private conn = new Float64Array(INITIAL_IDS * C.stride);
  private ep = new Float64Array(INITIAL_IDS * 2 * E.stride);
  /** Both addresses of each connection: a's four words, then b's. */
  private addresses = new Uint32Array(INITIAL_IDS * 8);
  private readonly key = new Uint32Array(KEY_WORDS);
  /** Finished connections, by the time they finished. */
  private readonly closed = new TimeQueue();
  private readonly knownListeners = new ConnectionTable();
  private readonly listenerKey = new Uint32Array(KEY_WORDS);
  /** Scratch view of one connection's addresses for the role resolver (which keeps only strings). */
  private readonly ends: { family: Family; addressA: Uint32Array; portA: number; addressB: Uint32Array; portB: number } = {
    family: 4, addressA: new Uint32Array(4), portA: 0, addressB: new Uint32Array(4), portB: 0,
  };
  private readonly releasing = Connection.blank();
  private serial = 0;
  private now = 0;
  private nextSweep = SWEEP_EVERY_NANOS;
  private nextAttemptScan = UNANSWERED_SCAN_EVERY_NANOS;
  /** Connections seen (born) in all. */
  connectionsSeen = 0;
  /** Open connections (that could still have become stuck) released because the table was full. */
  evicted = 0;
  /** TCP packets whose ports matched no --port. */
  packetsFilteredOut = 0;
  /**
   * With --port: packets filtered out, by the lower of their two ports (a server's, mostly), so that a
   * --port that matches nothing can be told which ports the capture holds.
   */
  readonly filteredOutByPort: Uint32Array | null;

  readonly roles: RoleResolver;

  constructor(private readonly options: TrackerOptions) {
    this.roles = new RoleResolver(options.ports);
    this.filteredOutByPort = options.ports ? new Uint32Array(65_536) : null;
    // Storing the columns a second time marks these fields as ones that change. Otherwise V8 compiles
    // the per-packet code with the first arrays as constants and throws it away at the first grow():
    // measured, the tracker reached full speed ~20 ms later in every run.
    this.grow(INITIAL_IDS);
  }

  get liveConnections(): number {
    return this.table.size;
  }

  /**
   * Connections still in the table, in id order: copies, so changing them changes nothing here. With
   * `into`, each is written into that one instance instead (no object per connection): it is valid
   * until the next, and whatever is kept of it must be copied.
   */
  *live(into?: Connection): Iterable<Connection> {
    for (let id = 0; id < this.capacity; id++) {
      if (this.conn[id * C.stride + C.inUse]) yield into ? this.loadInto(into, id) : this.materialise(id);
    }
  }

  /** Marks every connection now open as spanning a gap in the inputs' time. */
  markLiveSpansGap(): void {
    for (let id = 0; id < this.capacity; id++) if (this.conn[id * C.stride + C.inUse]) this.conn[id * C.stride + C.spansGap] = 1;
  }

  /**
   * Follows one segment. `time` is ns since the analysis's first packet; `input`/`frame` locate it.
   * Allocates nothing per packet; a connection's birth may grow the columns.
   */
  onSegment(seg: TcpSegment, time: number, input: number, frame: number): void {
    const ports = this.options.ports;
    if (ports && !ports.has(seg.srcPort) && !ports.has(seg.dstPort)) {
      this.packetsFilteredOut++;
      this.filteredOutByPort![Math.min(seg.srcPort, seg.dstPort)]++;
      return;
    }
    if (time > this.now) this.now = time;
    const senderIsA = this.buildKey(seg);
    let id = this.table.find(this.key);
    const isSyn = (seg.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK | TCP_FLAG.RST)) === TCP_FLAG.SYN;
    const senderSide = senderIsA ? 0 : 1;

    if (id >= 0 && isSyn) {
      const c = id * C.stride;
      const sender = (id * 2 + senderSide) * E.stride;
      const sameAttempt = isSameAttempt(this.ep, sender, seg.seq);
      const peerSilent = this.ep[(id * 2 + 1 - senderSide) * E.stride + E.packets] === 0;
      if (!sameAttempt && peerSilent) {
        // Nobody ever answered the old attempt: the client gave up on it and this SYN is a new connect().
        this.conn[c + C.superseded] = 1;
        this.release(id, 'superseded');
        id = -1;
      } else if (this.isFinished(id) && !sameAttempt) {
        this.release(id, this.conn[c + C.superseded] ? 'superseded' : 'closed');
        id = -1;
      } else if (!sameAttempt) {
        // A new SYN on a tuple still open. Linux answers it with a challenge ACK; the client's RST then
        // ends the old connection and the SYN's retransmission starts the new one. Until the SYN is
        // answered, the packets belong to the old connection.
        if (this.conn[c + C.pendingSynIsn] !== seg.seq) {
          this.conn[c + C.pendingSynIsn] = seg.seq;
          this.conn[c + C.pendingSynTime] = time;
          this.conn[c + C.pendingSynInput] = input;
          this.conn[c + C.pendingSynFrame] = frame;
          this.conn[c + C.synsIntoOpen]++;
        }
        this.touch(id, sender, time, input, frame);
        return;
      }
    } else if (id >= 0 && this.conn[id * C.stride + C.pendingSynIsn] >= 0 && this.answersPendingSyn(seg, id)) {
      // The SYN was accepted: the old connection is gone from the hosts' view (not closed on the wire).
      const c = id * C.stride;
      const conn = this.conn;
      const synIsn = conn[c + C.pendingSynIsn]! >>> 0;
      const synTime = conn[c + C.pendingSynTime]!;
      const synInput = conn[c + C.pendingSynInput]!;
      const synFrame = conn[c + C.pendingSynFrame]!;
      conn[c + C.superseded] = 1;
      this.release(id, 'superseded');
      id = this.born(seg, senderIsA, synTime, synInput, synFrame);
      const clientSide = senderIsA ? 1 : 0;
      const client = (id * 2 + clientSide) * E.stride;
      this.recordSyn(id, client, synIsn, synTime, synInput, synFrame, clientSide, true);
      this.ep[client + E.packets]++;
    }

    // Cheap test first: only a side's first packet, or a RST, can belong to an earlier connection.
    if (id >= 0 && (seg.flags & TCP_FLAG.RST || this.ep[(id * 2 + senderSide) * E.stride + E.packets] === 0) && this.isForEarlierConnection(id, seg, senderSide)) {
      this.touchConnection(id, time, input, frame);
      return;
    }
    if (id < 0) {
      id = this.born(seg, senderIsA, time, input, frame);
      if (!(seg.flags & TCP_FLAG.SYN)) this.roles.noteMidstream(this.endsOf(id));
    }
    this.follow(id, seg, senderSide, time, input, frame);
    if (time >= this.nextSweep) this.sweep();
  }

  /**
   * A segment of an earlier connection on this tuple, one the capture never saw (it was silent, or began
   * before the capture), while this connection's SYN waits for its answer. A socket still open there (in
   * CLOSE_WAIT, say) answers a new SYN with a challenge ACK (RFC 5961): the ACK of that earlier
   * connection, not this SYN's ISN + 1. The client, in SYN-SENT, answers that with a RST whose seq is the
   * ACK's ack (RFC 793), which ends the earlier connection, and sends its SYN again. Taken for this
   * attempt's, the two made it a reset connection: its later close, or its getting stuck, went unseen.
   */
  private isForEarlierConnection(id: number, seg: TcpSegment, senderSide: 0 | 1): boolean {
    const flags = seg.flags;
    if (flags & (TCP_FLAG.SYN | TCP_FLAG.FIN) || seg.payloadLength > 0) return false;
    const ep = this.ep;
    const conn = this.conn;
    const c = id * C.stride;
    const sender = (id * 2 + senderSide) * E.stride;
    const receiver = (id * 2 + 1 - senderSide) * E.stride;
    if (flags & TCP_FLAG.RST) {
      const resetsChallenge = conn[c + C.challengeAck]! >= 0 && seg.seq === conn[c + C.challengeAck] && ep[sender + E.synSeen] === 1 && ep[receiver + E.packets] === 0;
      if (resetsChallenge) conn[c + C.challengeAck] = -1;
      return resetsChallenge;
    }
    // The SYN's side has sent nothing but its SYN (sent again or not): past that, a first packet from the
    // other side is an answer whose SYN-ACK the capture lost, not a challenge.
    const synWaiting =
      ep[receiver + E.synSeen] === 1 && ep[receiver + E.synAckSeen] === 0 && ep[receiver + E.packets] === ep[receiver + E.synRetransmits]! + 1 && ep[sender + E.packets] === 0;
    if (!(flags & TCP_FLAG.ACK) || !synWaiting || seg.ack === ((ep[receiver + E.isn]! + 1) >>> 0)) return false;
    conn[c + C.challengeAck] = seg.ack;
    conn[c + C.challengedSyns]++;
    return true;
  }

  /** The connection was heard from, by a packet that is none of its endpoints' own. */
  private touchConnection(id: number, time: number, input: number, frame: number): void {
    const c = id * C.stride;
    this.conn[c + C.lastTime] = time;
    this.conn[c + C.lastInput] = input;
    this.conn[c + C.lastFrame] = frame;
  }

  /** Neither side can ever be stuck again: a RST, FINs both ways, or the tuple was taken over. */
  private isFinished(id: number): boolean {
    const ep = this.ep;
    const a = id * 2 * E.stride;
    const b = a + E.stride;
    return ep[a + E.rstSeen] === 1 || ep[b + E.rstSeen] === 1 || (ep[a + E.finSeen] === 1 && ep[b + E.finSeen] === 1) || this.conn[id * C.stride + C.superseded] === 1;
  }

  private isCurrent(id: number, serial: number): boolean {
    return id < this.capacity && this.conn[id * C.stride + C.inUse] === 1 && this.conn[id * C.stride + C.serial] === serial;
  }

  /** Releases closed connections whose linger has passed and attempts nobody answered, in id order. */
  private sweep(): void {
    this.nextSweep = this.now + SWEEP_EVERY_NANOS;
    const linger = this.table.size > BUSY_TABLE ? Math.min(this.options.lingerNanos, BUSY_LINGER_NANOS) : this.options.lingerNanos;
    const closed: number[] = [];
    this.closed.takeDue(this.now - linger, (id, serial) => {
      if (this.isCurrent(id, serial)) closed.push(id);
    });
    closed.sort((x, y) => x - y);
    for (const id of closed) this.release(id, 'closed');

    if (this.now >= this.nextAttemptScan) this.releaseUnanswered();
  }

  /** Releases, in id order, the attempts nobody answered that have been silent for UNANSWERED_GIVE_UP_NANOS. */
  private releaseUnanswered(): void {
    this.nextAttemptScan = this.now + UNANSWERED_SCAN_EVERY_NANOS;
    const cutoff = this.now - UNANSWERED_GIVE_UP_NANOS;
    for (let id = 0; id < this.capacity; id++) {
      const c = id * C.stride;
      if (this.conn[c + C.inUse] === 1 && this.conn[c + C.lastTime]! < cutoff && this.isUnanswered(id)) this.release(id, 'unanswered');
    }
  }

  /** SYNs from one side (the same attempt, sent again or not) and nothing at all from the other. */
  private isUnanswered(id: number): boolean {
    const ep = this.ep;
    const a = id * 2 * E.stride;
    const b = a + E.stride;
    const synOnly = (e: number) => ep[e + E.synSeen] === 1 && ep[e + E.synAckSeen] === 0 && ep[e + E.packets] === ep[e + E.synRetransmits]! + 1;
    return (ep[b + E.packets] === 0 && synOnly(a)) || (ep[a + E.packets] === 0 && synOnly(b));
  }

  private queueClosed(id: number): void {
    // Released otherwise (evicted, taken over by a new SYN), entries wait for a sweep to pass them; while
    // capture time stands still or runs back no sweep does, so drop them before they outnumber the table.
    if (this.closed.length > 2 * this.table.size + 1024) this.closed.compact((queued, serial) => this.isCurrent(queued, serial));
    this.closed.push(id, this.conn[id * C.stride + C.serial]!, this.conn[id * C.stride + C.closedTime]!);
  }

  /** The scratch addresses of connection `id`, for the role resolver. */
  private endsOf(id: number): ConnectionEnds {
    const ends = this.ends;
    const c = id * C.stride;
    const base = id * 8;
    ends.family = this.conn[c + C.family] as Family;
    copyWords(this.addresses, base, ends.addressA);
    copyWords(this.addresses, base + 4, ends.addressB);
    ends.portA = this.conn[c + C.portA]!;
    ends.portB = this.conn[c + C.portB]!;
    return ends;
  }

  /** Tells the role resolver about a listening endpoint once, not on every handshake it answers. */
  private noteListener(id: number, side: 0 | 1): void {
    const key = this.listenerKey;
    const base = id * 8 + side * 4;
    const addresses = this.addresses;
    key[0] = addresses[base]!;
    key[1] = addresses[base + 1]!;
    key[2] = addresses[base + 2]!;
    key[3] = addresses[base + 3]!;
    key[4] = this.conn[id * C.stride + C.family]!;
    key[8] = this.conn[id * C.stride + (side === 0 ? C.portA : C.portB)]!;
    if (this.knownListeners.find(key) >= 0) return;
    if (this.knownListeners.size < MAX_KNOWN_LISTENERS) this.knownListeners.insert(key);
    this.roles.noteListener(this.endsOf(id), side);
  }

  private grow(capacity: number): void {
    const conn = new Float64Array(capacity * C.stride);
    conn.set(this.conn);
    this.conn = conn;
    const ep = new Float64Array(capacity * 2 * E.stride);
    ep.set(this.ep);
    this.ep = ep;
    const addresses = new Uint32Array(capacity * 8);
    addresses.set(this.addresses);
    this.addresses = addresses;
    this.capacity = capacity;
  }

  private born(seg: TcpSegment, senderIsA: boolean, time: number, input: number, frame: number): number {
    if (this.table.size >= this.options.maxConnections) this.evict();
    const id = this.table.insert(this.key);
    if (id >= this.capacity) this.grow(Math.max(this.capacity * 2, id + 1));
    const conn = this.conn;
    const c = id * C.stride;
    conn.set(NEW_CONN, c);
    this.ep.set(NEW_ENDPOINTS, id * 2 * E.stride);
    conn[c + C.serial] = this.serial++;
    conn[c + C.family] = seg.family;
    conn[c + C.portA] = senderIsA ? seg.srcPort : seg.dstPort;
    conn[c + C.portB] = senderIsA ? seg.dstPort : seg.srcPort;
    conn[c + C.firstTime] = time;
    conn[c + C.firstInput] = input;
    conn[c + C.firstFrame] = frame;
    conn[c + C.inUse] = 1;
    this.addresses.set(senderIsA ? seg.src : seg.dst, id * 8);
    this.addresses.set(senderIsA ? seg.dst : seg.src, id * 8 + 4);
    this.connectionsSeen++;
    return id;
  }

  private follow(id: number, seg: TcpSegment, side: 0 | 1, time: number, input: number, frame: number): void {
    const ep = this.ep;
    const conn = this.conn;
    const c = id * C.stride;
    const sender = (id * 2 + side) * E.stride;
    const receiver = (id * 2 + 1 - side) * E.stride;
    const flags = seg.flags;
    if (flags & TCP_FLAG.SYN && !(flags & (TCP_FLAG.FIN | TCP_FLAG.RST | TCP_FLAG.URG)) && seg.payloadLength === 0 && this.isDuplicateSyn(sender, seg.seq, time)) return;
    this.touch(id, sender, time, input, frame);
    ep[sender + E.lastWindow] = seg.window;

    if (flags & TCP_FLAG.SYN) {
      if (!ep[sender + E.synSeen] || ep[sender + E.isn] !== seg.seq) this.recordSyn(id, sender, seg.seq, time, input, frame, side, !(flags & TCP_FLAG.ACK));
      else ep[sender + E.synRetransmits]++;
      ep[sender + E.lastSynTime] = time;
      if (flags & TCP_FLAG.ACK && !ep[sender + E.synAckSeen]) {
        ep[sender + E.synAckSeen] = 1;
        this.noteListener(id, side);
        if (conn[c + C.roleReason] !== ROLE_SYN) {
          conn[c + C.clientSide] = side === 0 ? 1 : 0;
          conn[c + C.roleReason] = ROLE_SYN_ACK;
        }
      }
    }
    const dataStart = (seg.seq + (flags & TCP_FLAG.SYN ? 1 : 0)) >>> 0;
    if (!ep[sender + E.hasSeqBase]) {
      ep[sender + E.seqBase] = dataStart;
      ep[sender + E.hasSeqBase] = 1;
    }
    const end = seqDiff(dataStart + seg.payloadLength, ep[sender + E.seqBase]!);
    if (seg.payloadLength > 0 && end <= ep[sender + E.bytesSent]!) ep[sender + E.retransmittedBytes] += seg.payloadLength;
    // Only payload moves it: a bare ACK after our FIN carries seq FIN + 1, which is not a byte sent.
    if (seg.payloadLength > 0 && end > ep[sender + E.bytesSent]!) {
      if (ep[receiver + E.finSeen] && ep[sender + E.bytesSent]! > ep[sender + E.bytesSentAtPeerFin]!) this.noteDataGapAfterPeerFin(sender, time);
      ep[sender + E.bytesSent] = end;
      ep[sender + E.lastDataTime] = time;
    }

    if (flags & TCP_FLAG.ACK) this.onAck(sender, receiver, seg.ack, time, input, frame);
    if (flags & TCP_FLAG.FIN) this.onFin(sender, receiver, (dataStart + seg.payloadLength) >>> 0, time, input, frame);
    if (flags & TCP_FLAG.RST && !ep[sender + E.rstSeen]) {
      ep[sender + E.rstSeen] = 1;
      ep[sender + E.rstTime] = time;
      ep[sender + E.rstInput] = input;
      ep[sender + E.rstFrame] = frame;
    }
    // Only a FIN or a RST can finish a connection here (a takeover releases it at once).
    if (flags & (TCP_FLAG.FIN | TCP_FLAG.RST) && conn[c + C.closedTime]! < 0 && this.isFinished(id)) {
      conn[c + C.closedTime] = time;
      this.queueClosed(id);
    }
  }

  /** New data after earlier new data, both after the peer's FIN: the pace of a half-close in use. */
  private noteDataGapAfterPeerFin(sender: number, time: number): void {
    const ep = this.ep;
    const gap = time - ep[sender + E.lastDataTime]!;
    if (gap > ep[sender + E.maxDataGapAfterPeerFin]!) ep[sender + E.maxDataGapAfterPeerFin] = gap;
  }

  /**
   * The same plain SYN (or SYN-ACK) again within DUPLICATE_SYN_NANOS: the capture saw one packet twice
   * (tcpdump -i any on a host with bridges or veths, a mirror port), since no stack sends a SYN again
   * that soon. Counted as sent again, it read as a listener not answering.
   */
  private isDuplicateSyn(sender: number, seq: number, time: number): boolean {
    const ep = this.ep;
    return ep[sender + E.synSeen] === 1 && ep[sender + E.isn] === seq && ep[sender + E.lastSynTime]! >= 0 && time - ep[sender + E.lastSynTime]! < DUPLICATE_SYN_NANOS;
  }

  /** `pureSyn`: a SYN without ACK, whose sender is the client; a SYN-ACK's role is set by its caller. */
  private recordSyn(id: number, sender: number, isn: number, time: number, input: number, frame: number, side: 0 | 1, pureSyn: boolean): void {
    const ep = this.ep;
    ep[sender + E.synSeen] = 1;
    ep[sender + E.isn] = isn;
    ep[sender + E.synTime] = time;
    ep[sender + E.synInput] = input;
    ep[sender + E.synFrame] = frame;
    ep[sender + E.seqBase] = (isn + 1) >>> 0;
    ep[sender + E.hasSeqBase] = 1;
    ep[sender + E.bytesSent] = 0;
    const c = id * C.stride;
    const reason = this.conn[c + C.roleReason];
    // A SYN-ACK seen first (the SYN lost, or sent before the capture) must not make its sender the client.
    if (pureSyn && reason !== ROLE_SYN && reason !== ROLE_SYN_ACK) {
      this.conn[c + C.clientSide] = side;
      this.conn[c + C.roleReason] = ROLE_SYN;
    }
  }

  private onAck(sender: number, receiver: number, ack: number, time: number, input: number, frame: number): void {
    const ep = this.ep;
    if (!ep[receiver + E.hasSeqBase]) return;
    const acked = seqDiff(ack, ep[receiver + E.seqBase]!);
    if (acked > ep[sender + E.highestAck]!) {
      ep[sender + E.highestAck] = acked;
      ep[sender + E.highestAckTime] = time;
      ep[sender + E.highestAckInput] = input;
      ep[sender + E.highestAckFrame] = frame;
    }
    if (ep[receiver + E.finSeen] && !ep[receiver + E.finAcked] && seqDiff(ack, ep[receiver + E.finSeq]!) >= 1) {
      ep[receiver + E.finAcked] = 1;
      ep[receiver + E.finAckTime] = time;
      ep[receiver + E.finAckInput] = input;
      ep[receiver + E.finAckFrame] = frame;
    }
    // An ACK beyond anything the receiver was seen to send (and its FIN) means packets are missing.
    const visibleEnd = ep[receiver + E.bytesSent]! + (ep[receiver + E.finSeen] ? 1 : 0);
    if (acked > visibleEnd && acked < HALF_RANGE) ep[sender + E.ackedUnseen] = 1;
  }

  private onFin(sender: number, receiver: number, finSeq: number, time: number, input: number, frame: number): void {
    const ep = this.ep;
    if (ep[sender + E.finSeen]) {
      ep[sender + E.finRetransmits]++;
      return;
    }
    ep[sender + E.finSeen] = 1;
    ep[sender + E.finSeq] = finSeq;
    ep[receiver + E.bytesSentAtPeerFin] = ep[receiver + E.bytesSent]!;
    ep[sender + E.finTime] = time;
    ep[sender + E.finInput] = input;
    ep[sender + E.finFrame] = frame;
    // Its ACK captured first (reordered on the way to the capture, as -i any over several CPUs does):
    // the receiver's highest ACK already covers the FIN, and no later ACK may come from a stuck side.
    if (ep[receiver + E.highestAckTime]! >= 0 && ep[receiver + E.highestAck]! >= seqDiff(finSeq, ep[sender + E.seqBase]!) + 1) {
      ep[sender + E.finAcked] = 1;
      ep[sender + E.finAckTime] = ep[receiver + E.highestAckTime]!;
      ep[sender + E.finAckInput] = ep[receiver + E.highestAckInput]!;
      ep[sender + E.finAckFrame] = ep[receiver + E.highestAckFrame]!;
      // That ACK looked like one of data never seen; with the FIN, all it acknowledged is seen.
      if (ep[receiver + E.highestAck] === ep[sender + E.bytesSent]! + 1) ep[receiver + E.ackedUnseen] = 0;
    }
  }

  private touch(id: number, sender: number, time: number, input: number, frame: number): void {
    const ep = this.ep;
    if (ep[sender + E.packets] === 0) ep[sender + E.firstTime] = time;
    ep[sender + E.packets]++;
    ep[sender + E.lastTime] = time;
    this.touchConnection(id, time, input, frame);
  }

  private answersPendingSyn(seg: TcpSegment, id: number): boolean {
    const synAck = TCP_FLAG.SYN | TCP_FLAG.ACK;
    return (seg.flags & synAck) === synAck && seg.ack === ((this.conn[id * C.stride + C.pendingSynIsn]! + 1) >>> 0);
  }

  private release(id: number, reason: ReleaseReason): void {
    const connection = this.loadInto(this.releasing, id);
    this.roles.resolve(connection);
    this.options.onRelease(connection, reason);
    this.table.remove(id);
    this.conn[id * C.stride + C.inUse] = 0;
  }

  /** A new read model of connection `id`, built from the columns. */
  private materialise(id: number): Connection {
    return this.loadInto(Connection.blank(), id);
  }

  /** Overwrites `connection` with connection `id`, reusing its arrays and frame references. */
  private loadInto(connection: Connection, id: number): Connection {
    const conn = this.conn;
    const c = id * C.stride;
    const base = id * 8;
    connection.serial = conn[c + C.serial]!;
    connection.family = conn[c + C.family] as Family;
    copyWords(this.addresses, base, connection.addressA);
    connection.portA = conn[c + C.portA]!;
    copyWords(this.addresses, base + 4, connection.addressB);
    connection.portB = conn[c + C.portB]!;
    connection.firstTime = conn[c + C.firstTime]!;
    connection.firstFrame.input = conn[c + C.firstInput]!;
    connection.firstFrame.frame = conn[c + C.firstFrame]!;
    connection.clientSide = conn[c + C.clientSide] as -1 | 0 | 1;
    const reason = conn[c + C.roleReason];
    connection.roleReason = reason === ROLE_SYN ? 'syn' : reason === ROLE_SYN_ACK ? 'syn-ack' : (null as RoleReason | null);
    connection.lastTime = conn[c + C.lastTime]!;
    connection.lastInput = conn[c + C.lastInput]!;
    connection.lastFrameNumber = conn[c + C.lastFrame]!;
    connection.closedTime = conn[c + C.closedTime]!;
    connection.pendingSynIsn = conn[c + C.pendingSynIsn]!;
    connection.pendingSynTime = conn[c + C.pendingSynTime]!;
    connection.pendingSynFrame = frameRef(connection.pendingSynFrame, connection.pendingSynIsn >= 0, conn[c + C.pendingSynInput]!, conn[c + C.pendingSynFrame]!);
    connection.synsIntoOpen = conn[c + C.synsIntoOpen]!;
    connection.challengedSyns = conn[c + C.challengedSyns]!;
    connection.superseded = conn[c + C.superseded] === 1;
    connection.spansGap = conn[c + C.spansGap] === 1;
    this.fillEndpoint(connection.a, id * 2 * E.stride);
    this.fillEndpoint(connection.b, (id * 2 + 1) * E.stride);
    return connection;
  }

  private fillEndpoint(endpoint: Endpoint, e: number): void {
    const ep = this.ep;
    endpoint.packets = ep[e + E.packets]!;
    endpoint.seqBase = ep[e + E.seqBase]!;
    endpoint.hasSeqBase = ep[e + E.hasSeqBase] === 1;
    endpoint.bytesSent = ep[e + E.bytesSent]!;
    endpoint.retransmittedBytes = ep[e + E.retransmittedBytes]!;
    endpoint.synSeen = ep[e + E.synSeen] === 1;
    endpoint.isn = ep[e + E.isn]!;
    endpoint.synRetransmits = ep[e + E.synRetransmits]!;
    endpoint.synAckSeen = ep[e + E.synAckSeen] === 1;
    endpoint.synTime = ep[e + E.synTime]!;
    endpoint.synFrame = frameRef(endpoint.synFrame, endpoint.synSeen, ep[e + E.synInput]!, ep[e + E.synFrame]!);
    endpoint.finSeen = ep[e + E.finSeen] === 1;
    endpoint.finSeq = ep[e + E.finSeq]!;
    endpoint.finTime = ep[e + E.finTime]!;
    endpoint.finFrame = frameRef(endpoint.finFrame, endpoint.finSeen, ep[e + E.finInput]!, ep[e + E.finFrame]!);
    endpoint.finRetransmits = ep[e + E.finRetransmits]!;
    endpoint.finAcked = ep[e + E.finAcked] === 1;
    endpoint.finAckTime = ep[e + E.finAckTime]!;
    endpoint.finAckFrame = frameRef(endpoint.finAckFrame, endpoint.finAcked, ep[e + E.finAckInput]!, ep[e + E.finAckFrame]!);
    endpoint.rstSeen = ep[e + E.rstSeen] === 1;
    endpoint.rstTime = ep[e + E.rstTime]!;
    endpoint.rstFrame = frameRef(endpoint.rstFrame, endpoint.rstSeen, ep[e + E.rstInput]!, ep[e + E.rstFrame]!);
    endpoint.ackedUnseen = ep[e + E.ackedUnseen] === 1;
    endpoint.highestAck = ep[e + E.highestAck]!;
    endpoint.highestAckTime = ep[e + E.highestAckTime]!;
    endpoint.highestAckInput = ep[e + E.highestAckInput]!;
    endpoint.highestAckFrame = ep[e + E.highestAckFrame]!;
    endpoint.firstTime = ep[e + E.firstTime]!;
    endpoint.lastTime = ep[e + E.lastTime]!;
    endpoint.lastDataTime = ep[e + E.lastDataTime]!;
    endpoint.bytesSentAtPeerFin = ep[e + E.bytesSentAtPeerFin]!;
    endpoint.maxDataGapAfterPeerFin = ep[e + E.maxDataGapAfterPeerFin]!;
    endpoint.lastWindow = ep[e + E.lastWindow]!;
    endpoint.finInferred = false;
    endpoint.finAckInferred = false;
  }

  /**
   * Table full: release closed connections first, then open ones down to 90% of the cap: the idlest
   * first, but half-closed ones (a FIN one way) last. Those are what this tool looks for, and they are
   * silent: evicted, a stuck one is never seen again, while an idle open one that sends again comes back
   * (mid-stream), its FIN and the peer's silence still seen.
   */
  private evict(): void {
    const target = Math.floor(this.options.maxConnections * EVICT_TO_SHARE);
    for (let id = 0; id < this.capacity; id++) {
      if (this.conn[id * C.stride + C.inUse] && this.isFinished(id)) this.release(id, 'closed');
    }
    if (this.table.size <= target) return;
    const open: number[] = [];
    for (let id = 0; id < this.capacity; id++) if (this.conn[id * C.stride + C.inUse]) open.push(id);
    const conn = this.conn;
    const halfClosed = (id: number) => (this.ep[id * 2 * E.stride + E.finSeen] === 1) !== (this.ep[(id * 2 + 1) * E.stride + E.finSeen] === 1);
    open.sort((x, y) => Number(halfClosed(x)) - Number(halfClosed(y)) || conn[x * C.stride + C.lastTime]! - conn[y * C.stride + C.lastTime]!);
    for (const id of open.slice(0, this.table.size - target)) {
      this.evicted++;
      this.release(id, 'evicted');
    }
  }

  /**
   * Fills `this.key` with the direction-independent key: the lower (address, port) first.
   * Returns true when the segment's sender is that lower endpoint (side a).
   */
  private buildKey(seg: TcpSegment): boolean {
    const key = this.key;
    const senderFirst = compareEndpoints(seg.src, seg.srcPort, seg.dst, seg.dstPort) <= 0;
    const first = senderFirst ? seg.src : seg.dst;
    const second = senderFirst ? seg.dst : seg.src;
    key[0] = first[0]!;
    key[1] = first[1]!;
    key[2] = first[2]!;
    key[3] = first[3]!;
    key[4] = second[0]!;
    key[5] = second[1]!;
    key[6] = second[2]!;
    key[7] = second[3]!;
    key[8] = senderFirst ? ((seg.srcPort << 16) | seg.dstPort) >>> 0 : ((seg.dstPort << 16) | seg.srcPort) >>> 0;
    return senderFirst;
  }
}

/**
 * A SYN that belongs to the connection already on its tuple: a retransmission (same ISN), the first
 * packet of a side that has sent nothing yet (simultaneous open, split handshake), or a SYN reordered
 * after the packets that follow it (its ISN + 1 is where that side's data began).
 */
function isSameAttempt(ep: Float64Array, sender: number, seq: number): boolean {
  if (ep[sender + E.synSeen]) return ep[sender + E.isn] === seq;
  if (ep[sender + E.packets] === 0) return true;
  return ep[sender + E.hasSeqBase] === 1 && ep[sender + E.seqBase] === ((seq + 1) >>> 0);
}

/** Copies one address (four words) out of the address column: a subarray() view would be an object per call. */
function copyWords(from: Uint32Array, at: number, to: Uint32Array): void {
  to[0] = from[at]!;
  to[1] = from[at + 1]!;
  to[2] = from[at + 2]!;
  to[3] = from[at + 3]!;
}

/** A frame reference when `present`, else null; reuses `current` when there is one. */
function frameRef(current: FrameRef | null, present: boolean, input: number, frame: number): FrameRef | null {
  if (!present) return null;
  if (!current) return { input, frame };
  current.input = input;
  current.frame = frame;
  return current;
}

function compareEndpoints(addrX: Uint32Array, portX: number, addrY: Uint32Array, portY: number): number {
  for (let i = 0; i < 4; i++) {
    const diff = addrX[i]! - addrY[i]!;
    if (diff !== 0) return diff;
  }
  return portX - portY;
}
