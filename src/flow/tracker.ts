import { TCP_FLAG, type TcpSegment } from '../decode/segment.js';
import { Connection, Endpoint, type FrameRef } from './connection.js';
import { ConnectionTable, KEY_WORDS } from './table.js';
import { RoleResolver } from './roles.js';

/** Why a connection left the table before the end of the capture. */
export type ReleaseReason = 'closed' | 'evicted' | 'superseded';

export interface TrackerOptions {
  /** Most connections held at once; past it the idlest are evicted (and counted). */
  maxConnections: number;
  /** A closed connection stays this long (ns of capture time) to absorb late ACKs and retransmissions. */
  lingerNanos: number;
  /** Called when a connection leaves the table, so aggregates can take what they need first. */
  onRelease: (connection: Connection, reason: ReleaseReason) => void;
  /** When given, only connections with one of these ports are followed. */
  ports?: ReadonlySet<number>;
}

const HALF_RANGE = 0x80000000;
/** Listening endpoints remembered by number, so a SYN-ACK from a known listener builds no strings. */
const MAX_KNOWN_LISTENERS = 65_536;
/** How far back a closing connection is walked to keep the closed queue in time order. */
const MAX_CLOSED_QUEUE_WALK = 64;
const SWEEP_EVERY_NANOS = 5e9;
/** On overflow, evict down to this share of the cap so eviction runs rarely. */
const EVICT_TO_SHARE = 0.9;

/** a - b in sequence space, as a signed 32-bit distance. */
function seqDiff(a: number, b: number): number {
  return (a - b) | 0;
}

export class ConnectionTracker {
  private readonly table = new ConnectionTable();
  private readonly connections: (Connection | undefined)[] = [];
  private readonly key = new Uint32Array(KEY_WORDS);
  /**
   * Connections in the order they closed (kept sorted by closedTime), so a sweep releases from the
   * front instead of scanning every connection. Entries released otherwise since are skipped.
   */
  private closedQueue: (Connection | undefined)[] = [];
  private closedHead = 0;
  private readonly knownListeners = new ConnectionTable();
  private readonly listenerKey = new Uint32Array(KEY_WORDS);
  private serial = 0;
  private now = 0;
  private nextSweep = SWEEP_EVERY_NANOS;
  /** Connections seen (born) in all. */
  connectionsSeen = 0;
  /** Open connections (that could still have become stuck) released because the table was full. */
  evicted = 0;
  /** TCP packets whose ports matched no --port. */
  packetsFilteredOut = 0;

  readonly roles: RoleResolver;

  constructor(private readonly options: TrackerOptions) {
    this.roles = new RoleResolver(options.ports);
  }

  get liveConnections(): number {
    return this.table.size;
  }

  /** Connections still in the table, in no particular order. */
  *live(): Iterable<Connection> {
    for (const connection of this.connections) if (connection) yield connection;
  }

  /**
   * Follows one segment. `time` is ns since the analysis's first packet; `input`/`frame` locate it.
   * Allocates only when a connection is born or a rare event (SYN, FIN, RST) is recorded.
   */
  onSegment(seg: TcpSegment, time: number, input: number, frame: number): void {
    const ports = this.options.ports;
    if (ports && !ports.has(seg.srcPort) && !ports.has(seg.dstPort)) {
      this.packetsFilteredOut++;
      return;
    }
    if (time > this.now) this.now = time;
    const senderIsA = this.buildKey(seg);
    let id = this.table.find(this.key);
    let connection = id >= 0 ? this.connections[id]! : undefined;
    const isSyn = (seg.flags & (TCP_FLAG.SYN | TCP_FLAG.ACK | TCP_FLAG.RST)) === TCP_FLAG.SYN;

    if (connection && isSyn) {
      const sender = connection.endpoint(senderIsA ? 0 : 1);
      const sameAttempt = isSameAttempt(sender, seg.seq);
      const peerSilent = connection.endpoint(senderIsA ? 1 : 0).packets === 0;
      if (!sameAttempt && peerSilent) {
        // Nobody ever answered the old attempt: the client gave up on it and this SYN is a new connect().
        connection.superseded = true;
        this.release(id, connection, 'superseded');
        connection = undefined;
      } else if (connection.isFinished && !sameAttempt) {
        this.release(id, connection, connection.superseded ? 'superseded' : 'closed');
        connection = undefined;
      } else if (!sameAttempt) {
        // A new SYN on a tuple still open. Linux answers it with a challenge ACK; the client's RST then
        // ends the old connection and the SYN's retransmission starts the new one. Until the SYN is
        // answered, the packets belong to the old connection.
        if (connection.pendingSynIsn !== seg.seq) {
          connection.pendingSynIsn = seg.seq;
          connection.pendingSynTime = time;
          connection.pendingSynFrame = { input, frame };
          connection.synsIntoOpen++;
        }
        this.touch(connection, sender, time, input, frame);
        return;
      }
    } else if (connection && connection.pendingSynIsn >= 0 && this.answersPendingSyn(seg, connection)) {
      // The SYN was accepted: the old connection is gone from the hosts' view (not closed on the wire).
      const pending = connection;
      pending.superseded = true;
      this.release(id, pending, 'superseded');
      connection = this.born(seg, senderIsA, pending.pendingSynTime, pending.pendingSynFrame!);
      const client = connection.endpoint(senderIsA ? 1 : 0);
      this.recordSyn(connection, client, pending.pendingSynIsn >>> 0, pending.pendingSynTime, pending.pendingSynFrame!, senderIsA ? 1 : 0);
      client.packets++;
    }

    if (!connection) {
      connection = this.born(seg, senderIsA, time, { input, frame });
      if (!(seg.flags & TCP_FLAG.SYN)) this.roles.noteMidstream(connection);
    }
    this.follow(connection, seg, senderIsA ? 0 : 1, time, input, frame);
    if (time >= this.nextSweep) this.sweep();
  }

  /** Releases closed connections whose linger has passed, in id order. */
  private sweep(): void {
    this.nextSweep = this.now + SWEEP_EVERY_NANOS;
    const cutoff = this.now - this.options.lingerNanos;
    const queue = this.closedQueue;
    const due: number[] = [];
    while (this.closedHead < queue.length && queue[this.closedHead]!.closedTime < cutoff) {
      const connection = queue[this.closedHead]!;
      queue[this.closedHead++] = undefined;
      const id = this.idOf(connection);
      if (id >= 0) due.push(id);
    }
    if (this.closedHead > 1024 && this.closedHead * 2 > queue.length) {
      this.closedQueue = queue.slice(this.closedHead);
      this.closedHead = 0;
    }
    due.sort((x, y) => x - y);
    for (const id of due) this.release(id, this.connections[id]!, 'closed');
  }

  private queueClosed(connection: Connection): void {
    // Released otherwise (evicted, taken over by a new SYN), entries wait for a sweep to pass them; while
    // capture time stands still or runs back no sweep does, so drop them before they outnumber the table.
    if (this.closedQueue.length - this.closedHead > 2 * this.table.size + 1024) this.compactClosedQueue();
    const queue = this.closedQueue;
    let at = queue.length;
    // Capture time can step back (merged inputs, clock jumps): keep the queue in closedTime order, as far
    // as a short walk back goes. Time running backwards throughout would make the walk quadratic; an
    // entry placed early of its turn is only released late, when the entries before it are due.
    const stop = Math.max(this.closedHead, queue.length - MAX_CLOSED_QUEUE_WALK);
    while (at > stop && queue[at - 1]!.closedTime > connection.closedTime) at--;
    if (at === queue.length) queue.push(connection);
    else queue.splice(at, 0, connection);
  }

  private compactClosedQueue(): void {
    const live: Connection[] = [];
    for (let i = this.closedHead; i < this.closedQueue.length; i++) {
      const connection = this.closedQueue[i];
      if (connection && this.idOf(connection) >= 0) live.push(connection);
    }
    this.closedQueue = live;
    this.closedHead = 0;
  }

  /** The connection's id while it is in the table, else -1. */
  private idOf(connection: Connection): number {
    const key = this.key;
    const a = connection.addressA;
    const b = connection.addressB;
    key[0] = a[0]!;
    key[1] = a[1]!;
    key[2] = a[2]!;
    key[3] = a[3]!;
    key[4] = b[0]!;
    key[5] = b[1]!;
    key[6] = b[2]!;
    key[7] = b[3]!;
    key[8] = ((connection.portA << 16) | connection.portB) >>> 0;
    const id = this.table.find(key);
    return id >= 0 && this.connections[id] === connection ? id : -1;
  }

  /** Tells the role resolver about a listening endpoint once, not on every handshake it answers. */
  private noteListener(connection: Connection, side: 0 | 1): void {
    const key = this.listenerKey;
    const address = side === 0 ? connection.addressA : connection.addressB;
    key[0] = address[0]!;
    key[1] = address[1]!;
    key[2] = address[2]!;
    key[3] = address[3]!;
    key[4] = connection.family;
    key[8] = side === 0 ? connection.portA : connection.portB;
    if (this.knownListeners.find(key) >= 0) return;
    if (this.knownListeners.size < MAX_KNOWN_LISTENERS) this.knownListeners.insert(key);
    this.roles.noteListener(connection, side);
  }

  private born(seg: TcpSegment, senderIsA: boolean, time: number, frame: FrameRef): Connection {
    if (this.table.size >= this.options.maxConnections) this.evict();
    const addressA = new Uint32Array(senderIsA ? seg.src : seg.dst);
    const addressB = new Uint32Array(senderIsA ? seg.dst : seg.src);
    const connection = new Connection(
      this.serial++, seg.family, addressA, senderIsA ? seg.srcPort : seg.dstPort, addressB, senderIsA ? seg.dstPort : seg.srcPort, time, frame,
    );
    const id = this.table.insert(this.key);
    this.connections[id] = connection;
    this.connectionsSeen++;
    return connection;
  }

  private follow(connection: Connection, seg: TcpSegment, side: 0 | 1, time: number, input: number, frame: number): void {
    const sender = connection.endpoint(side);
    const receiver = connection.endpoint(side === 0 ? 1 : 0);
    const flags = seg.flags;
    this.touch(connection, sender, time, input, frame);

    if (flags & TCP_FLAG.SYN) {
      if (!sender.synSeen || sender.isn !== seg.seq) this.recordSyn(connection, sender, seg.seq, time, { input, frame }, side);
      else sender.synRetransmits++;
      if (flags & TCP_FLAG.ACK && !sender.synAckSeen) {
        sender.synAckSeen = true;
        this.noteListener(connection, side);
        if (connection.roleReason !== 'syn') {
          connection.clientSide = side === 0 ? 1 : 0;
          connection.roleReason = 'syn-ack';
        }
      }
    }
    const dataStart = (seg.seq + (flags & TCP_FLAG.SYN ? 1 : 0)) >>> 0;
    if (!sender.hasSeqBase) {
      sender.seqBase = dataStart;
      sender.hasSeqBase = true;
    }
    const end = seqDiff(dataStart + seg.payloadLength, sender.seqBase);
    if (seg.payloadLength > 0 && end <= sender.bytesSent) sender.retransmittedBytes += seg.payloadLength;
    // Only payload moves it: a bare ACK after our FIN carries seq FIN + 1, which is not a byte sent.
    if (seg.payloadLength > 0 && end > sender.bytesSent) sender.bytesSent = end;

    if (flags & TCP_FLAG.ACK) this.onAck(sender, receiver, seg.ack, time, input, frame);
    if (flags & TCP_FLAG.FIN) this.onFin(sender, (dataStart + seg.payloadLength) >>> 0, time, input, frame);
    if (flags & TCP_FLAG.RST && !sender.rstSeen) {
      sender.rstSeen = true;
      sender.rstTime = time;
      sender.rstFrame = { input, frame };
    }
    if (connection.closedTime < 0 && connection.isFinished) {
      connection.closedTime = time;
      this.queueClosed(connection);
    }
  }

  private recordSyn(connection: Connection, sender: Endpoint, isn: number, time: number, frame: FrameRef, side: 0 | 1): void {
    sender.synSeen = true;
    sender.isn = isn;
    sender.synTime = time;
    sender.synFrame = frame;
    sender.seqBase = (isn + 1) >>> 0;
    sender.hasSeqBase = true;
    sender.bytesSent = 0;
    if (connection.roleReason !== 'syn' && connection.roleReason !== 'syn-ack') {
      connection.clientSide = side;
      connection.roleReason = 'syn';
    }
  }

  private onAck(sender: Endpoint, receiver: Endpoint, ack: number, time: number, input: number, frame: number): void {
    if (!receiver.hasSeqBase) return;
    const acked = seqDiff(ack, receiver.seqBase);
    if (acked > sender.highestAck) {
      sender.highestAck = acked;
      sender.highestAckTime = time;
      sender.highestAckInput = input;
      sender.highestAckFrame = frame;
    }
    if (receiver.finSeen && !receiver.finAcked && seqDiff(ack, receiver.finSeq) >= 1) {
      receiver.finAcked = true;
      receiver.finAckTime = time;
      receiver.finAckFrame = { input, frame };
    }
    // An ACK beyond anything the receiver was seen to send (and its FIN) means packets are missing.
    const visibleEnd = receiver.bytesSent + (receiver.finSeen ? 1 : 0);
    if (acked > visibleEnd && acked < HALF_RANGE) sender.ackedUnseen = true;
  }

  private onFin(sender: Endpoint, finSeq: number, time: number, input: number, frame: number): void {
    if (sender.finSeen) {
      sender.finRetransmits++;
      return;
    }
    sender.finSeen = true;
    sender.finSeq = finSeq;
    sender.finTime = time;
    sender.finFrame = { input, frame };
  }

  private touch(connection: Connection, sender: Endpoint, time: number, input: number, frame: number): void {
    if (sender.packets === 0) sender.firstTime = time;
    sender.packets++;
    sender.lastTime = time;
    connection.lastTime = time;
    connection.lastInput = input;
    connection.lastFrameNumber = frame;
  }

  private answersPendingSyn(seg: TcpSegment, connection: Connection): boolean {
    const synAck = TCP_FLAG.SYN | TCP_FLAG.ACK;
    return (seg.flags & synAck) === synAck && seg.ack === ((connection.pendingSynIsn + 1) >>> 0);
  }

  private release(id: number, connection: Connection, reason: ReleaseReason): void {
    this.roles.resolve(connection);
    this.options.onRelease(connection, reason);
    this.table.remove(id);
    this.connections[id] = undefined;
  }

  /** Table full: release closed connections first, then the idlest open ones, down to 90% of the cap. */
  private evict(): void {
    const target = Math.floor(this.options.maxConnections * EVICT_TO_SHARE);
    for (let id = 0; id < this.connections.length; id++) {
      const connection = this.connections[id];
      if (connection?.isFinished) this.release(id, connection, 'closed');
    }
    if (this.table.size <= target) return;
    const open: number[] = [];
    for (let id = 0; id < this.connections.length; id++) if (this.connections[id]) open.push(id);
    open.sort((x, y) => this.connections[x]!.lastTime - this.connections[y]!.lastTime);
    for (const id of open.slice(0, this.table.size - target)) {
      this.evicted++;
      this.release(id, this.connections[id]!, 'evicted');
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
function isSameAttempt(sender: Endpoint, seq: number): boolean {
  if (sender.synSeen) return sender.isn === seq;
  if (sender.packets === 0) return true;
  return sender.hasSeqBase && sender.seqBase === ((seq + 1) >>> 0);
}

function compareEndpoints(addrX: Uint32Array, portX: number, addrY: Uint32Array, portY: number): number {
  for (let i = 0; i < 4; i++) {
    const diff = addrX[i]! - addrY[i]!;
    if (diff !== 0) return diff;
  }
  return portX - portY;
}
