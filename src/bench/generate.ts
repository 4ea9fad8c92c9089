import { closeSync, openSync, renameSync, writeFileSync, writeSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Random } from './random.js';
import { ShapeCounter, type Shape } from './shape.js';
import { STILL_SENDING_NANOS } from '../analyze/verdict.js';

/**
 * A seeded synthetic capture for benchmarks: classic pcap (µs, Ethernet/IPv4/TCP), written as a
 * stream, with a truth file saying what an exact analysis must find. Traffic is seen from a capture
 * point beside the servers: clients arrive at random (Poisson), talk request/response with real
 * sequence and acknowledgement numbers (slow start, delayed and quick ACKs, a few retransmissions),
 * and end the ways real connections end: FINs both ways (either side first, some slowly), RSTs, a
 * refused SYN, a SYN nobody answers, 4-tuples reused soon after, and a share stuck half-closed on
 * either side (peer FIN acknowledged, no FIN back), until a restart or a reaper closes them. Some
 * connections are already open when the capture starts, as many pooled long-lived ones as the traffic
 * keeps open, so the number of live connections is steady from the start and a capture twice as long
 * holds the same number (what the benchmark's memory-scaling row needs). Memory stays bounded by the
 * connections in flight: each one plans only its next phase of packets, and a heap on the next
 * packet's time interleaves them.
 *
 * The truth is taken from what was written, not from what was planned: writing stops when the file
 * reaches its size, wherever each connection happens to be.
 */
/** Part of the cached file names: bump when the same seed would give other bytes or another truth. */
export const GENERATOR_VERSION = 4;

export interface GenerateOptions {
  /** Writing stops at the first packet that brings the file to this size. */
  sizeBytes: number;
  seed: number;
  /** Path of the pcap; the truth is written to truthPathFor(out). */
  out: string;
  /** New connections per second of capture time; with their lifetimes this sets how many are open at once. */
  connectionsPerSecond?: number;
  /**
   * Only what the real-kernel comparison (real-capture.ts) plays: orderly closes (30% by the server),
   * TCP timestamps on, nothing open before the capture. For checking the TCP shape, not for benchmarks.
   */
  comparableToReal?: boolean;
}

export interface StuckConnection {
  server: string;
  client: string;
  stuckSide: 'server' | 'client';
}

export interface GeneratorTruth {
  generator: { version: number; seed: number; sizeBytes: number; connectionsPerSecond: number };
  file: { bytes: number; packets: number; captureSeconds: number };
  /** As closewait counts them: a 4-tuple reused by a new handshake counts once per handshake. */
  connections: number;
  closeWait: number;
  closeWaitServerSide: number;
  closeWaitClientSide: number;
  /** Connections that saw a RST from either side. */
  reset: number;
  /** FINs both ways, no RST. */
  closed: number;
  /** Neither ended nor stuck at the end of the capture. */
  openAtEnd: number;
  /** Of openAtEnd: half-closed, and the side that did not close sent data less than STILL_SENDING_NANOS before the end. */
  stillSending: number;
  /** Attempts that got no answer (SYNs only) and were silent for 3 minutes at the end. */
  unanswered: number;
  /** Sorted by "server>client". */
  stuck: StuckConnection[];
  /** How the connections were planned (a stuck plan cut short by the end of the file is not stuck). */
  plans: Record<string, number>;
  /** peakInFlight: most connections with packets still to send at once (stuck ones that went quiet not counted). */
  events: { midstreamAtStart: number; tupleReuses: number; challengeAckReuses: number; leaksClosed: number; retransmissions: number; peakInFlight: number };
  shape: Shape;
}

export function truthPathFor(capturePath: string): string {
  return `${capturePath.replace(/\.pcap$/, '')}.truth.json`;
}

const DEFAULT_CONNECTIONS_PER_SECOND = 30;
const CAPTURE_START_SECONDS = 1_767_225_600; // 2026-01-01T00:00:00Z

const FIN = 0x01;
const SYN = 0x02;
const RST = 0x04;
const PSH = 0x08;
const ACK = 0x10;

const ETHERNET_HEADER = 14;
const IPV4_HEADER = 20;
const TCP_HEADER = 20;
const TCP_TIMESTAMP_OPTIONS = 12;
const SYN_OPTIONS_WITH_TIMESTAMPS = 20;
const SYN_OPTIONS_PLAIN = 12;
const MIN_FRAME = 60;
const PCAP_RECORD_HEADER = 16;
const PCAP_FILE_HEADER = 24;
const WRITE_BUFFER_BYTES = 4 * 1024 * 1024;

/** All times are µs since the capture started. */
const DELAYED_ACK = 40_000;
const SERVER_TURNAROUND_MIN = 15;
const SERVER_TURNAROUND_MAX = 60;
const QUICK_ACKS = 16;
/** An idle gap longer than the RTO re-arms Linux's quick-ACK mode. */
const QUICK_ACK_REARM_GAP = 200_000;
const INITIAL_CWND = 10;
const MAX_CWND = 256;
/** Serialisation of one full frame at 1 Gbit/s. */
const FULL_FRAME_MICROS = 12;
/** Linux drops an orphaned FIN_WAIT_2 socket after tcp_fin_timeout (60 s): later data gets a RST. */
const FIN_WAIT_2_TIMEOUT = 60_000_000;

interface Service {
  ip: number;
  port: number;
  weight: number;
}

const SERVICES: readonly Service[] = [
  { ip: ipv4(10, 0, 0, 10), port: 443, weight: 40 },
  { ip: ipv4(10, 0, 0, 11), port: 443, weight: 20 },
  { ip: ipv4(10, 0, 0, 20), port: 80, weight: 10 },
  { ip: ipv4(10, 0, 0, 30), port: 5432, weight: 8 },
  { ip: ipv4(10, 0, 0, 31), port: 6379, weight: 8 },
  { ip: ipv4(10, 0, 0, 40), port: 20880, weight: 8 },
  { ip: ipv4(10, 0, 0, 50), port: 8080, weight: 6 },
];
const SERVICE_WEIGHTS = SERVICES.map((s) => s.weight);
const SERVICE_WEIGHT_TOTAL = SERVICE_WEIGHTS.reduce((x, y) => x + y, 0);
const CLIENT_HOSTS = 2000;
const EPHEMERAL_LOW = 32768;
const EPHEMERAL_HIGH = 60999;
/** Share of new connections that take a 4-tuple a recent connection just finished with. */
const TUPLE_REUSE_SHARE = 0.05;
const RECENT_TUPLES_PER_SERVICE = 32;

/** How a connection is meant to go. Shares of new connections; the rest of the mass is 'client-closes'. */
const PLANS = {
  'server-closes': 0.24,
  'long-lived': 0.02,
  'reset-by-server': 0.035,
  'reset-by-client': 0.035,
  'fin-then-rst': 0.02,
  'slow-close': 0.03,
  'stuck-server': 0.024,
  'stuck-client': 0.012,
  refused: 0.01,
  unanswered: 0.004,
} as const;
type Plan = keyof typeof PLANS | 'client-closes';
const PLAN_NAMES = [...(Object.keys(PLANS) as (keyof typeof PLANS)[]), 'client-closes'] as const;
const PLAN_WEIGHTS = [...Object.values(PLANS), 1 - Object.values(PLANS).reduce((x, y) => x + y, 0)];
/** Connections already open when the capture starts, in seconds of arrivals. */
const MIDSTREAM_SECONDS_OF_ARRIVALS = 20;
/** A pooled connection's exchanges and the pause before each (µs). */
const LONG_LIVED_EXCHANGES_MIN = 10;
const LONG_LIVED_EXCHANGES_MAX = 60;
const LONG_LIVED_THINK_MIN = 5_000_000;
const LONG_LIVED_THINK_MAX = 60_000_000;
/** Mean life of a pooled connection (s): its exchanges times the mean pause. */
const LONG_LIVED_MEAN_SECONDS =
  (((LONG_LIVED_EXCHANGES_MIN + LONG_LIVED_EXCHANGES_MAX) / 2) * ((LONG_LIVED_THINK_MIN + LONG_LIVED_THINK_MAX) / 2)) / 1e6;
/**
 * How long a leaked half-closed socket lasts before something closes it (µs): a restart, a finalizer,
 * an idle reaper. Leaks that lasted for ever would make a longer capture hold ever more live
 * connections; with these, the number stuck at any time is steady once the capture is longer than the
 * longest (40 min; the default 1 GiB capture spans ~57 min).
 */
const LEAK_LIFETIME_MIN = 10 * 60_000_000;
const LEAK_LIFETIME_MAX = 40 * 60_000_000;
/** What closewait reports as an attempt given up rather than open: SYNs only, silent this long (µs). */
const UNANSWERED_GIVE_UP = 180_000_000;

/**
 * What the applications do, apart from TCP: request and response sizes, exchanges per connection,
 * pauses. Exported so the real-kernel comparison (real-capture.ts) drives real sockets with the same draws.
 */
export function requestBytes(random: Random): number {
  return Math.round(random.chance(0.92) ? clamp(random.logNormal(350, 0.7), 20, 1400) : clamp(random.logNormal(3_000, 1.0), 1401, 500_000));
}

/** Pooled long-lived connections carry small queries; short ones fetch pages and files too. */
export function responseBytes(random: Random, longLived: boolean): number {
  const kind = longLived ? random.next() * 0.9 : random.next();
  if (kind < 0.45) return Math.round(clamp(random.logNormal(300, 0.8), 1, 1400));
  if (kind < 0.94) return Math.round(clamp(random.logNormal(1_700, 1.0), 200, 4_000_000));
  return Math.round(clamp(random.logNormal(18_000, 1.0), 1_000, 4_000_000));
}

export function exchangeCount(random: Random): number {
  let n = 1;
  while (n < 50 && random.chance(0.45)) n++;
  return n;
}

/** µs between a response and the client's next move: half at once, half after a human-scale pause. */
export function thinkTime(random: Random): number {
  const think = random.chance(0.5) ? random.logNormal(5_000, 1.0) : random.logNormal(500_000, 1.5);
  return Math.round(clamp(think, 100, 30_000_000));
}

/** One planned packet. seq/ack are fixed when planned: a connection's packets are planned in sequence order. */
class Packet {
  constructor(
    readonly time: number,
    readonly fromServer: boolean,
    readonly flags: number,
    readonly seq: number,
    readonly ack: number,
    readonly length: number,
  ) {}
}

class Side {
  /** Next sequence number this side will send. */
  next = 0;
  ipId = 0;
  tsBase = 0;
  window = 0;
  ttl = 64;
  quickAcks = QUICK_ACKS;
  /**
   * Linux's interactive ("pingpong") mode: this side answered data within the delayed-ACK time, so it
   * now delays ACKs hoping to carry them on its answer; it ends when the delayed-ACK timer fires.
   */
  pingpong = false;
  cwnd = INITIAL_CWND;
  // What the capture has shown so far (the truth is taken from these).
  finSent = false;
  finSeq = 0;
  finAcked = false;
  rstSent = false;
  /** When this side last sent payload after the other side's FIN (µs), or -1. */
  dataAfterPeerFinAt = -1;

  constructor(
    readonly ip: number,
    readonly port: number,
    readonly mac: number,
    readonly isn: number,
  ) {
    this.next = isn;
  }
}

class Connection {
  readonly queue: Packet[] = [];
  position = 0;
  packetsWritten = 0;
  /** Time of the last packet written (µs). */
  lastWritten = 0;
  /** Only the client's SYNs written so far: an attempt nobody answered, if it stays so. */
  onlySyns = true;
  /** Stage of the plan: 0 handshake, 1 exchanges, 2 close, 3 done. */
  stage = 0;
  exchangesLeft = 0;
  /** Time of the last packet planned. */
  clock = 0;
  exchanges = 0;
  /** Time of the last response segment, and the pause the client takes after it before its next move. */
  lastResponse = 0;
  gap = 0;
  /** A tuple to hand to the connection that reuses it when this one is done (challenge-ACK reuse). */
  successorIsn = -1;
  successorTime = 0;

  constructor(
    readonly tupleKey: number,
    readonly service: number,
    readonly client: Side,
    readonly server: Side,
    readonly plan: Plan,
    readonly timestamps: boolean,
    readonly mss: number,
    readonly rtt: number,
    readonly encrypted: boolean,
    readonly midstream: boolean,
  ) {}

  get nextTime(): number {
    return this.queue[this.position]!.time;
  }
}

/**
 * Writes the capture and returns its truth (also written beside it). The pcap is written to a
 * temporary name and renamed at the end, so an interrupted run never leaves a file that looks done.
 */
export function generateCapture(options: GenerateOptions): GeneratorTruth {
  const generator = new Generator(options);
  return generator.run();
}

class Generator {
  private readonly random: Random;
  private readonly rate: number;
  private readonly writer: PcapWriter;
  private readonly heap: Connection[] = [];
  private readonly inUse = new Set<number>();
  private readonly recentTuples: number[][] = SERVICES.map(() => []);
  private readonly clientPorts: Int32Array;
  private readonly shape = new ShapeCounter();
  private readonly randomPayload: Buffer;
  private readonly textPayload: Buffer;
  private readonly stuck: StuckConnection[] = [];
  /** Per entry of `stuck`: when its stuck side last sent data after its peer's FIN (µs), or -1. */
  private readonly stuckDataAfterFinAt: number[] = [];
  private readonly plans: Record<string, number> = Object.fromEntries(PLAN_NAMES.map((name) => [name, 0]));
  private readonly events = { midstreamAtStart: 0, tupleReuses: 0, challengeAckReuses: 0, leaksClosed: 0, retransmissions: 0, peakInFlight: 0 };
  private readonly counts = { connections: 0, closeWaitServerSide: 0, closeWaitClientSide: 0, reset: 0, closed: 0, openAtEnd: 0, stillSending: 0, unanswered: 0 };
  /** When each attempt that got no answer was last heard from (µs): given up or open, by the capture's end. */
  private readonly attemptsLastHeard: number[] = [];
  private lastTime = 0;

  constructor(private readonly options: GenerateOptions) {
    this.random = new Random(options.seed);
    this.rate = options.connectionsPerSecond ?? DEFAULT_CONNECTIONS_PER_SECOND;
    this.writer = new PcapWriter(`${options.out}.partial`);
    this.clientPorts = new Int32Array(CLIENT_HOSTS);
    for (let i = 0; i < CLIENT_HOSTS; i++) this.clientPorts[i] = this.random.between(EPHEMERAL_LOW, EPHEMERAL_HIGH);
    // TLS payload is incompressible, plain-text protocols are not: gzip'd archives see both.
    this.randomPayload = Buffer.alloc(1 << 20);
    for (let i = 0; i < this.randomPayload.length; i += 4) this.randomPayload.writeUInt32LE(this.random.uint32(), i);
    const text = 'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-cache\r\n\r\n{"id":12345,"status":"ok","items":[{"name":"alpha","value":1},{"name":"beta","value":2}]}\n';
    this.textPayload = Buffer.from(text.repeat(Math.ceil((256 * 1024) / text.length)));
  }

  run(): GeneratorTruth {
    const perArrival = 1e6 / this.rate;
    const midstream = this.options.comparableToReal ? 0 : Math.round(this.rate * MIDSTREAM_SECONDS_OF_ARRIVALS);
    for (let i = 0; i < midstream; i++) this.spawn(this.random.int(2_000_000), true, -1, -1);
    // The pool as the traffic keeps it (arrivals x mean life), each connection somewhere in its life.
    const pooled = this.options.comparableToReal ? 0 : Math.round(this.rate * PLANS['long-lived'] * LONG_LIVED_MEAN_SECONDS);
    for (let i = 0; i < pooled; i++) this.spawn(this.random.int(2_000_000), true, -1, -1, 'long-lived');
    this.events.midstreamAtStart = midstream + pooled;
    let nextArrival = this.random.exponential(perArrival);
    const target = this.options.sizeBytes;
    while (this.writer.bytes < target) {
      const top = this.heap[0];
      if (!top || nextArrival <= top.nextTime) {
        this.spawn(nextArrival, false, -1, -1);
        nextArrival += this.random.exponential(perArrival);
        continue;
      }
      this.write(top, top.queue[top.position++]!);
      if (top.position === top.queue.length) {
        top.queue.length = 0;
        top.position = 0;
        if (!this.planNext(top)) {
          this.heapPop();
          this.finish(top);
          continue;
        }
      }
      this.heapSiftDown(0);
    }
    // The capture ends here: whatever each open connection showed so far is what it is.
    for (const connection of this.heap) this.finish(connection);
    this.settleStillSending();
    for (const lastHeard of this.attemptsLastHeard) {
      if (lastHeard < this.lastTime - UNANSWERED_GIVE_UP) this.counts.unanswered++;
      else this.counts.openAtEnd++;
    }
    this.writer.close();
    renameSync(`${this.options.out}.partial`, this.options.out);
    const truth: GeneratorTruth = {
      generator: { version: GENERATOR_VERSION, seed: this.options.seed, sizeBytes: this.options.sizeBytes, connectionsPerSecond: this.rate },
      file: { bytes: this.writer.bytes, packets: this.writer.packets, captureSeconds: this.lastTime / 1e6 },
      connections: this.counts.connections,
      closeWait: this.stuck.length,
      closeWaitServerSide: this.counts.closeWaitServerSide,
      closeWaitClientSide: this.counts.closeWaitClientSide,
      reset: this.counts.reset,
      closed: this.counts.closed,
      openAtEnd: this.counts.openAtEnd,
      stillSending: this.counts.stillSending,
      unanswered: this.counts.unanswered,
      stuck: this.stuck.sort((x, y) => compareStrings(`${x.server}>${x.client}`, `${y.server}>${y.client}`)),
      plans: this.plans,
      events: this.events,
      shape: this.shape.result(),
    };
    writeFileSync(truthPathFor(this.options.out), `${JSON.stringify(truth, null, 2)}\n`);
    return truth;
  }

  /**
   * A new connection. `isn` >= 0 with a tuple: the retry of a port reused into a stuck connection.
   * `pooled`: a long-lived connection open before the capture, somewhere in its life.
   */
  private spawn(time: number, midstream: boolean, reusedTuple: number, isn: number, pooled?: 'long-lived'): void {
    const random = this.random;
    let tupleKey = reusedTuple;
    let plan: Plan;
    if (pooled) {
      plan = pooled;
      tupleKey = this.pickTuple(true);
    } else if (tupleKey >= 0 || this.options.comparableToReal) {
      plan = random.chance(0.3) ? 'server-closes' : 'client-closes';
      if (tupleKey < 0) tupleKey = this.pickTuple(midstream);
    } else {
      plan = PLAN_NAMES[random.weighted(PLAN_WEIGHTS, 1)]!;
      if (midstream && (plan === 'refused' || plan === 'unanswered')) plan = 'client-closes';
      tupleKey = this.pickTuple(midstream);
    }
    this.plans[plan]!++;
    const service = tupleKey % SERVICES.length;
    const clientHost = Math.floor(tupleKey / SERVICES.length / 65536);
    const clientPort = Math.floor(tupleKey / SERVICES.length) % 65536;
    const { ip: serverIp, port: serverPort } = SERVICES[service]!;
    const timestamps = this.options.comparableToReal || random.chance(0.7);
    const wan = random.chance(0.4);
    const rtt = Math.round(wan ? clamp(random.logNormal(30_000, 0.6), 5_000, 300_000) : clamp(random.logNormal(250, 0.5), 60, 2_000));
    const client = new Side(clientIp(clientHost), clientPort, 0x02_00_00_00_00_01, isn >= 0 ? isn : random.uint32());
    const server = new Side(serverIp, serverPort, 0x02_00_0a_00_00_00 + service, random.uint32());
    for (const side of [client, server]) {
      side.ipId = random.int(65536);
      side.tsBase = random.uint32();
      side.window = random.between(200, 4000);
    }
    client.ttl = wan ? random.between(44, 56) : random.between(60, 63);
    const mss = timestamps ? 1448 : 1460;
    const connection = new Connection(tupleKey, service, client, server, plan, timestamps, mss, rtt, random.chance(0.7), midstream);
    connection.clock = time;
    connection.exchangesLeft = pooled
      ? random.between(1, LONG_LIVED_EXCHANGES_MAX)
      : plan === 'long-lived'
        ? random.between(LONG_LIVED_EXCHANGES_MIN, LONG_LIVED_EXCHANGES_MAX)
        : exchangeCount(random);
    if (midstream) {
      // Already established before the capture began: no handshake, quick-ACK mode long over.
      client.quickAcks = 0;
      server.quickAcks = 0;
      client.cwnd = server.cwnd = 64;
      connection.stage = 1;
    }
    this.inUse.add(tupleKey);
    this.planNext(connection);
    this.heapPush(connection);
    if (this.heap.length > this.events.peakInFlight) this.events.peakInFlight = this.heap.length;
  }


  /** tupleKey = ((clientHost * 65536) + clientPort) * services + service. */
  private pickTuple(midstream: boolean): number {
    const random = this.random;
    const service = random.weighted(SERVICE_WEIGHTS, SERVICE_WEIGHT_TOTAL);
    const recent = this.recentTuples[service]!;
    if (!midstream && recent.length > 0 && random.chance(TUPLE_REUSE_SHARE)) {
      const at = random.int(recent.length);
      const tuple = recent[at]!;
      recent[at] = recent[recent.length - 1]!;
      recent.pop();
      if (!this.inUse.has(tuple)) {
        this.events.tupleReuses++;
        return tuple;
      }
    }
    for (;;) {
      const host = random.int(CLIENT_HOSTS);
      let port = this.clientPorts[host]! + 1 + random.int(8);
      if (port > EPHEMERAL_HIGH) port = EPHEMERAL_LOW + (port - EPHEMERAL_HIGH);
      this.clientPorts[host] = port;
      const tuple = (host * 65536 + port) * SERVICES.length + service;
      if (!this.inUse.has(tuple)) return tuple;
    }
  }

  /** Plans the connection's next phase; false when it has nothing more to send. */
  private planNext(c: Connection): boolean {
    for (;;) {
      switch (c.stage) {
        case 0:
          c.stage = 1;
          this.planHandshake(c);
          return true;
        case 1: {
          if (c.exchangesLeft === 0) {
            c.stage = 2;
            continue;
          }
          c.exchangesLeft--;
          this.planExchange(c, this.nextStart(c));
          return true;
        }
        case 2:
          c.stage = 3;
          this.planClose(c, this.nextStart(c));
          if (c.queue.length > 0) return true;
          continue;
        default:
          return false;
      }
    }
  }

  /** When the next exchange or the close begins. */
  private nextStart(c: Connection): number {
    // Requests follow the handshake's ACK at once; a connection open before the capture starts where it was spawned.
    if (c.exchanges === 0) return c.midstream ? c.clock : c.clock + this.random.between(5, 300);
    return Math.max(c.clock, c.lastResponse + c.rtt + c.gap);
  }

  private thinkTime(c: Connection): number {
    return c.plan === 'long-lived' ? this.random.between(LONG_LIVED_THINK_MIN, LONG_LIVED_THINK_MAX) : thinkTime(this.random);
  }

  private planHandshake(c: Connection): void {
    const t = c.clock;
    this.send(c, t, false, SYN, 0);
    if (c.plan === 'unanswered') {
      // Linux retries the SYN after 1, 3, 7, 15 s with the same ISN.
      for (const at of [1, 3, 7, 15]) c.queue.push(new Packet(t + at * 1_000_000, false, SYN, c.client.isn, 0, 0));
      this.sortQueue(c);
      c.stage = 3;
      return;
    }
    const answer = t + this.serverTurnaround();
    if (c.plan === 'refused') {
      c.queue.push(new Packet(answer, true, RST | ACK, 0, c.client.next, 0));
      c.clock = answer;
      c.stage = 3;
      return;
    }
    this.send(c, answer, true, SYN | ACK, 0);
    this.send(c, answer + c.rtt, false, ACK, 0);
  }

  private planExchange(c: Connection, start: number): void {
    const random = this.random;
    const request = requestBytes(random);
    const response = responseBytes(random, c.plan === 'long-lived');
    const processing = Math.round(clamp(random.logNormal(2_000, 1.2), SERVER_TURNAROUND_MAX + 10, 2_000_000));
    if (c.exchanges > 0 && c.gap > QUICK_ACK_REARM_GAP) {
      c.server.quickAcks = Math.max(c.server.quickAcks, QUICK_ACKS);
      c.client.quickAcks = Math.max(c.client.quickAcks, QUICK_ACKS);
    }
    c.exchanges++;
    // Decided now: a client that moves again within the delayed-ACK time carries the ACK on that packet.
    c.gap = c.exchangesLeft === 0 && random.chance(0.5) ? random.between(50, 2_000) : this.thinkTime(c);
    const requestEnd = this.transfer(c, false, request, start, processing);
    const responseEnd = this.transfer(c, true, response, requestEnd + processing, c.gap);
    c.lastResponse = responseEnd;
    if (random.chance(0.005)) {
      // A spurious retransmission of the response's last segment, and the client's duplicate ACK.
      const length = Math.min(response, c.mss);
      const seq = (c.server.next - length) >>> 0;
      const at = responseEnd + random.between(200_000, 400_000); // the retransmission timeout
      c.queue.push(new Packet(at, true, ACK | PSH, seq, c.client.next, length));
      c.queue.push(new Packet(at + c.rtt, false, ACK, c.client.next, c.server.next, 0));
      this.events.retransmissions++;
    }
    this.sortQueue(c);
  }

  /**
   * A bulk transfer with slow start, as seen beside the server, with the receiver's ACKs (quick ACKs
   * first, then one per two segments; a lone last segment waits for the delayed-ACK timer unless the
   * receiver's own next packet, `replyAfter` later, carries the ACK). Returns the last segment's time.
   */
  private transfer(c: Connection, fromServer: boolean, bytes: number, start: number, replyAfter: number): number {
    const sender = fromServer ? c.server : c.client;
    const receiver = fromServer ? c.client : c.server;
    const ackLag = fromServer ? c.rtt : this.serverTurnaround();
    let time = start;
    let sent = 0;
    let unacked = 0;
    let last = start;
    while (sent < bytes) {
      const burstStart = time;
      for (let k = 0; k < sender.cwnd && sent < bytes; k++) {
        const length = Math.min(c.mss, bytes - sent);
        sent += length;
        this.send(c, time, fromServer, sent === bytes ? ACK | PSH : ACK, length);
        last = time;
        unacked++;
        if (receiver.quickAcks > 0 && !receiver.pingpong) {
          receiver.quickAcks--;
          this.send(c, time + ackLag, !fromServer, ACK, 0);
          unacked = 0;
        } else if (unacked >= 2) {
          this.send(c, time + ackLag, !fromServer, ACK, 0);
          unacked = 0;
        }
        time += Math.max(1, Math.round((FULL_FRAME_MICROS * length) / c.mss));
      }
      sender.cwnd = Math.min(sender.cwnd * 2, MAX_CWND);
      time = Math.max(burstStart + c.rtt, time);
    }
    if (replyAfter < DELAYED_ACK) {
      receiver.pingpong = true;
    } else if (unacked > 0) {
      this.send(c, last + ackLag + DELAYED_ACK, !fromServer, ACK, 0);
      receiver.pingpong = false;
    }
    return last;
  }

  private planClose(c: Connection, start: number): void {
    const random = this.random;
    switch (c.plan) {
      case 'client-closes':
      case 'long-lived':
        this.closeBoth(c, start, c.plan === 'long-lived' ? random.chance(0.5) : false, 0);
        break;
      case 'server-closes':
        this.closeBoth(c, start, true, 0);
        break;
      case 'slow-close':
        this.closeBoth(c, start, random.chance(0.5), random.between(5_000_000, 90_000_000));
        break;
      case 'reset-by-server':
      case 'reset-by-client': {
        const fromServer = c.plan === 'reset-by-server';
        this.send(c, start, fromServer, RST | ACK, 0);
        break;
      }
      case 'fin-then-rst': {
        const serverFirst = random.chance(0.5);
        const acked = this.finAndAck(c, start, serverFirst);
        this.send(c, acked + random.between(1_000, 30_000_000), !serverFirst, RST | ACK, 0);
        break;
      }
      case 'stuck-server':
        this.stuckServer(c, start);
        break;
      case 'stuck-client':
        this.stuckClient(c, start);
        break;
      default:
        break;
    }
    this.sortQueue(c);
  }

  /**
   * First side's FIN; the other side's FIN, carrying its ACK when its application closes within the
   * delayed-ACK time (a FIN puts Linux in pingpong mode), else a lone ACK first (`lingerFin` forces
   * a slow close); the first side's last ACK.
   */
  private closeBoth(c: Connection, start: number, serverFirst: boolean, lingerFin: number): void {
    const random = this.random;
    const first = serverFirst;
    const second = !serverFirst;
    this.send(c, start, first, FIN | ACK, 0);
    const answer = start + this.lag(c, second);
    const appClose = lingerFin > 0 ? lingerFin : random.chance(0.9) ? random.between(30, 5_000) : Math.round(clamp(random.logNormal(200_000, 1.0), DELAYED_ACK + 1, 5_000_000));
    if (appClose > DELAYED_ACK) this.send(c, answer + DELAYED_ACK, second, ACK, 0);
    const secondFinAt = answer + appClose;
    this.send(c, secondFinAt, second, FIN | ACK, 0);
    this.send(c, secondFinAt + this.lag(c, first), first, ACK, 0);
  }

  /** `fromServer` sends FIN; the other side's delayed ACK answers it alone. Returns the ACK's time. */
  private finAndAck(c: Connection, start: number, fromServer: boolean): number {
    this.send(c, start, fromServer, FIN | ACK, 0);
    const acked = start + this.lag(c, !fromServer) + DELAYED_ACK;
    this.send(c, acked, !fromServer, ACK, 0);
    return acked;
  }

  /** The client closes; the server acknowledges and never closes. Sometimes something happens later. */
  private stuckServer(c: Connection, start: number): void {
    const random = this.random;
    const acked = this.finAndAck(c, start, false);
    const later = random.next();
    if (later < 0.1) {
      // The server still writes (half-close is legal); the client in FIN_WAIT_2 acknowledges.
      const at = acked + random.between(1_000_000, FIN_WAIT_2_TIMEOUT - 5_000_000);
      this.send(c, at, true, ACK | PSH, random.between(20, 1400));
      this.send(c, at + c.rtt, false, ACK, 0);
      this.closeLeaked(c, acked, true);
    } else if (later < 0.2) {
      // Too late: the client's socket timed out of FIN_WAIT_2 and answers with a RST.
      const at = acked + random.between(FIN_WAIT_2_TIMEOUT + 1_000_000, 300_000_000);
      this.send(c, at, true, ACK | PSH, random.between(20, 1400));
      c.queue.push(new Packet(at + c.rtt, false, RST, c.client.next, 0, 0));
    } else if (later < 0.3) {
      // The client reuses its port: its SYN hits the server's CLOSE_WAIT socket, the server sends a
      // challenge ACK, the client resets the old connection and its retried SYN starts a new one.
      const at = acked + random.between(FIN_WAIT_2_TIMEOUT + 1_000_000, 300_000_000);
      let isn = random.uint32();
      if (isn === c.client.isn) isn = (isn + 1) >>> 0;
      c.queue.push(new Packet(at, false, SYN, isn, 0, 0));
      this.send(c, at + this.serverTurnaround(), true, ACK, 0);
      c.queue.push(new Packet(at + this.serverTurnaround() + c.rtt, false, RST, c.client.next, 0, 0));
      c.successorIsn = isn;
      c.successorTime = at + 1_000_000;
    } else {
      this.closeLeaked(c, acked, true);
    }
  }

  /** The server closes; the client acknowledges and never closes. */
  private stuckClient(c: Connection, start: number): void {
    const random = this.random;
    const acked = this.finAndAck(c, start, true);
    const later = random.next();
    if (later < 0.15) {
      const at = acked + random.between(1_000_000, FIN_WAIT_2_TIMEOUT - 5_000_000);
      this.send(c, at, false, ACK | PSH, random.between(20, 1400));
      this.send(c, at + this.serverTurnaround(), true, ACK, 0);
      this.closeLeaked(c, acked, false);
    } else if (later < 0.3) {
      const at = acked + random.between(FIN_WAIT_2_TIMEOUT + 1_000_000, 300_000_000);
      this.send(c, at, false, ACK | PSH, random.between(20, 1400));
      c.queue.push(new Packet(at + this.serverTurnaround(), true, RST, c.server.next, 0, 0));
    } else {
      this.closeLeaked(c, acked, false);
    }
  }

  /**
   * The leaked side closes at last, long after its peer's FIN (LEAK_LIFETIME_*): the peer's FIN_WAIT_2
   * socket timed out long before, so its kernel answers the FIN with a RST.
   */
  private closeLeaked(c: Connection, peerFinAcked: number, serverLeaked: boolean): void {
    const at = peerFinAcked + this.random.between(LEAK_LIFETIME_MIN, LEAK_LIFETIME_MAX);
    this.send(c, at, serverLeaked, FIN | ACK, 0);
    const peer = serverLeaked ? c.client : c.server;
    c.queue.push(new Packet(at + this.lag(c, !serverLeaked), !serverLeaked, RST, peer.next, 0, 0));
  }

  /** Time from a packet of the other side (as captured) to `responder`'s answer (as captured). */
  private lag(c: Connection, responderIsServer: boolean): number {
    return responderIsServer ? this.serverTurnaround() : c.rtt;
  }

  private serverTurnaround(): number {
    return this.random.between(SERVER_TURNAROUND_MIN, SERVER_TURNAROUND_MAX);
  }

  /** Plans a packet from the side's next sequence number, acknowledging all the other side has sent. */
  private send(c: Connection, time: number, fromServer: boolean, flags: number, length: number, ack?: number): void {
    const side = fromServer ? c.server : c.client;
    const other = fromServer ? c.client : c.server;
    c.queue.push(new Packet(time, fromServer, flags, side.next, flags & ACK ? (ack ?? other.next) : 0, length));
    side.next = (side.next + length + (flags & SYN ? 1 : 0) + (flags & FIN ? 1 : 0)) >>> 0;
    if (time > c.clock) c.clock = time;
  }

  private sortQueue(c: Connection): void {
    // Stable: packets planned for the same µs keep their planned (sequence) order.
    c.queue.sort((x, y) => x.time - y.time);
    c.clock = Math.max(c.clock, c.queue[c.queue.length - 1]?.time ?? c.clock);
  }

  private write(c: Connection, p: Packet): void {
    const side = p.fromServer ? c.server : c.client;
    const other = p.fromServer ? c.client : c.server;
    const syn = (p.flags & SYN) !== 0;
    const options = syn ? (c.timestamps ? SYN_OPTIONS_WITH_TIMESTAMPS : SYN_OPTIONS_PLAIN) : p.flags & RST ? 0 : c.timestamps ? TCP_TIMESTAMP_OPTIONS : 0;
    const tcpLength = TCP_HEADER + options;
    const ipLength = IPV4_HEADER + tcpLength + p.length;
    const frameLength = Math.max(MIN_FRAME, ETHERNET_HEADER + ipLength);
    const time = Math.max(p.time, this.lastTime);
    this.lastTime = time;
    const buf = this.writer.record(time, frameLength);
    let at = this.writer.position;
    // Ethernet: clients are behind a router; the capture point sees the router's MAC for them.
    writeMac(buf, at, p.fromServer ? 0x02_00_00_00_00_01 : c.server.mac);
    writeMac(buf, at + 6, side.mac);
    buf.writeUInt16BE(0x0800, at + 12);
    at += ETHERNET_HEADER;
    const ipStart = at;
    buf[at] = 0x45;
    buf[at + 1] = 0;
    buf.writeUInt16BE(ipLength, at + 2);
    buf.writeUInt16BE(side.ipId, at + 4);
    side.ipId = (side.ipId + 1) & 0xffff;
    buf.writeUInt16BE(0x4000, at + 6); // don't fragment
    buf[at + 8] = side.ttl;
    buf[at + 9] = 6;
    buf.writeUInt16BE(0, at + 10);
    buf.writeUInt32BE(side.ip, at + 12);
    buf.writeUInt32BE(other.ip, at + 16);
    buf.writeUInt16BE(ipChecksum(buf, ipStart), at + 10);
    at += IPV4_HEADER;
    buf.writeUInt16BE(side.port, at);
    buf.writeUInt16BE(other.port, at + 2);
    buf.writeUInt32BE(p.seq, at + 4);
    buf.writeUInt32BE(p.ack, at + 8);
    buf[at + 12] = (tcpLength / 4) << 4;
    buf[at + 13] = p.flags;
    buf.writeUInt16BE(syn ? 64240 : side.window, at + 14);
    // The TCP checksum is left zero, as in captures taken on a host with checksum offload.
    buf.writeUInt32BE(0, at + 16);
    at += TCP_HEADER;
    const tsVal = (side.tsBase + Math.floor(time / 1000)) >>> 0;
    const tsEcr = p.flags & ACK ? (other.tsBase + Math.floor(Math.max(0, time - c.rtt) / 1000)) >>> 0 : 0;
    if (syn) {
      buf.writeUInt32BE(0x020405b4, at); // MSS 1460
      if (c.timestamps) {
        buf.writeUInt16BE(0x0402, at + 4); // SACK permitted
        buf[at + 6] = 8;
        buf[at + 7] = 10;
        buf.writeUInt32BE(tsVal, at + 8);
        buf.writeUInt32BE(tsEcr, at + 12);
        buf.writeUInt32BE(0x01030307, at + 16); // NOP, window scale 7
      } else {
        buf.writeUInt32BE(0x01030307, at + 4);
        buf.writeUInt32BE(0x01010402, at + 8); // NOP, NOP, SACK permitted
      }
    } else if (options > 0) {
      buf.writeUInt16BE(0x0101, at);
      buf[at + 2] = 8;
      buf[at + 3] = 10;
      buf.writeUInt32BE(tsVal, at + 4);
      buf.writeUInt32BE(tsEcr, at + 8);
    }
    at += options;
    if (p.length > 0) {
      const pool = c.encrypted ? this.randomPayload : this.textPayload;
      const from = p.seq % (pool.length - p.length);
      pool.copy(buf, at, from, from + p.length);
      at += p.length;
    }
    if (at < this.writer.position + frameLength) buf.fill(0, at, this.writer.position + frameLength);
    this.writer.advance(frameLength);
    this.shape.frame(frameLength, p.flags, p.length);
    c.packetsWritten++;
    c.lastWritten = time;
    if (p.fromServer || p.flags !== SYN) c.onlySyns = false;
    noteOnWire(side, other, p, time);
  }

  /** The connection sends nothing more (or the capture ended): count it as the capture shows it. */
  private finish(c: Connection): void {
    if (c.successorIsn >= 0 && this.writer.bytes < this.options.sizeBytes) {
      this.events.challengeAckReuses++;
      this.spawn(c.successorTime, false, c.tupleKey, c.successorIsn);
    }
    if (c.packetsWritten === 0) {
      this.inUse.delete(c.tupleKey);
      return;
    }
    this.counts.connections++;
    this.shape.connection(c.packetsWritten);
    const { client, server } = c;
    const ended = client.rstSent || server.rstSent || (client.finSent && server.finSent);
    // A stuck plan with FINs both ways on the wire: the leaked side was closed at last (closeLeaked).
    if (c.plan.startsWith('stuck-') && client.finSent && server.finSent) this.events.leaksClosed++;
    if (client.rstSent || server.rstSent) this.counts.reset++;
    else if (client.finSent && server.finSent) this.counts.closed++;
    else if (client.finSent && client.finAcked && !server.finSent) this.addStuck(c, 'server');
    else if (server.finSent && server.finAcked && !client.finSent) this.addStuck(c, 'client');
    else if (c.onlySyns) this.attemptsLastHeard.push(c.lastWritten);
    else this.counts.openAtEnd++;
    if (ended && c.successorIsn < 0) {
      this.inUse.delete(c.tupleKey);
      const recent = this.recentTuples[c.service]!;
      if (recent.length < RECENT_TUPLES_PER_SERVICE) recent.push(c.tupleKey);
      else recent[this.random.int(RECENT_TUPLES_PER_SERVICE)] = c.tupleKey;
    }
  }

  private addStuck(c: Connection, stuckSide: 'server' | 'client'): void {
    if (stuckSide === 'server') this.counts.closeWaitServerSide++;
    else this.counts.closeWaitClientSide++;
    this.stuck.push({ server: endpointText(c.server), client: endpointText(c.client), stuckSide });
    this.stuckDataAfterFinAt.push((stuckSide === 'server' ? c.server : c.client).dataAfterPeerFinAt);
  }

  /**
   * At the end of the capture: a stuck side that wrote after its peer's FIN less than
   * STILL_SENDING_NANOS before the end is, as closewait counts it, a half-close still in use: open.
   * (A stuck side writes at most once after the FIN here, so isStillSending's pace never comes in.)
   */
  private settleStillSending(): void {
    const window = STILL_SENDING_NANOS / 1e3;
    const kept: StuckConnection[] = [];
    this.stuck.forEach((entry, index) => {
      const at = this.stuckDataAfterFinAt[index]!;
      if (at < 0 || this.lastTime - at >= window) return void kept.push(entry);
      if (entry.stuckSide === 'server') this.counts.closeWaitServerSide--;
      else this.counts.closeWaitClientSide--;
      this.counts.openAtEnd++;
      this.counts.stillSending++;
    });
    this.stuck.length = 0;
    for (const entry of kept) this.stuck.push(entry);
  }

  private heapPush(c: Connection): void {
    this.heap.push(c);
    let i = this.heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (this.heap[parent]!.nextTime <= c.nextTime) break;
      this.heap[i] = this.heap[parent]!;
      i = parent;
    }
    this.heap[i] = c;
  }

  private heapPop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    this.heapSiftDown(0);
  }

  private heapSiftDown(start: number): void {
    const heap = this.heap;
    const item = heap[start]!;
    const key = item.nextTime;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && heap[right]!.nextTime < heap[left]!.nextTime ? right : left;
      if (heap[child]!.nextTime >= key) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = item;
  }
}

/** Buffers records and writes them with plain synchronous writes: the disk sets the pace, memory stays flat. */
class PcapWriter {
  private readonly fd: number;
  private readonly buffer = Buffer.allocUnsafe(WRITE_BUFFER_BYTES);
  private used = 0;
  /** Where the current record's frame starts in the buffer. */
  position = 0;
  bytes = 0;
  packets = 0;

  constructor(path: string) {
    this.fd = openSync(path, 'w');
    const header = Buffer.alloc(PCAP_FILE_HEADER);
    header.writeUInt32LE(0xa1b2c3d4, 0);
    header.writeUInt16LE(2, 4);
    header.writeUInt16LE(4, 6);
    header.writeUInt32LE(262_144, 16);
    header.writeUInt32LE(1, 20); // LINKTYPE_ETHERNET
    header.copy(this.buffer, 0);
    this.used = PCAP_FILE_HEADER;
    this.bytes = PCAP_FILE_HEADER;
  }

  /** Writes a record header for a frame of `length` bytes and returns the buffer to put it in at `position`. */
  record(timeMicros: number, length: number): Buffer {
    if (this.used + PCAP_RECORD_HEADER + length > this.buffer.length) this.flush();
    const seconds = Math.floor(timeMicros / 1e6);
    const buf = this.buffer;
    buf.writeUInt32LE(CAPTURE_START_SECONDS + seconds, this.used);
    buf.writeUInt32LE(Math.floor(timeMicros - seconds * 1e6), this.used + 4);
    buf.writeUInt32LE(length, this.used + 8);
    buf.writeUInt32LE(length, this.used + 12);
    this.position = this.used + PCAP_RECORD_HEADER;
    return buf;
  }

  advance(frameLength: number): void {
    this.used = this.position + frameLength;
    this.bytes += PCAP_RECORD_HEADER + frameLength;
    this.packets++;
  }

  close(): void {
    this.flush();
    closeSync(this.fd);
  }

  private flush(): void {
    let done = 0;
    while (done < this.used) done += writeSync(this.fd, this.buffer, done, this.used - done);
    this.used = 0;
  }
}

/** Keeps what the capture has shown of each side's FIN and RST: the truth is made of this. */
function noteOnWire(side: Side, other: Side, p: Packet, time: number): void {
    if (p.flags & RST) side.rstSent = true;
    if (p.length > 0 && other.finSent) side.dataAfterPeerFinAt = time;
    if (p.flags & FIN && !side.finSent) {
      side.finSent = true;
      side.finSeq = (p.seq + p.length) >>> 0;
    }
    if (p.flags & ACK && other.finSent && !other.finAcked && ((p.ack - other.finSeq) | 0) >= 1) other.finAcked = true;
}

function ipChecksum(buf: Buffer, at: number): number {
  let sum = 0;
  for (let i = 0; i < IPV4_HEADER; i += 2) sum += buf.readUInt16BE(at + i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function writeMac(buf: Buffer, at: number, mac: number): void {
  buf.writeUInt16BE(Math.floor(mac / 2 ** 32), at);
  buf.writeUInt32BE(mac % 2 ** 32, at + 2);
}

function ipv4(a: number, b: number, c: number, d: number): number {
  return ((a << 24) | (b << 16) | (c << 8) | d) >>> 0;
}

function clientIp(host: number): number {
  return ipv4(10, 1, Math.floor(host / 250), 1 + (host % 250));
}

function endpointText(side: Side): string {
  const ip = side.ip;
  return `${ip >>> 24}.${(ip >>> 16) & 0xff}.${(ip >>> 8) & 0xff}.${ip & 0xff}:${side.port}`;
}

function clamp(value: number, low: number, high: number): number {
  return Math.min(high, Math.max(low, value));
}

function compareStrings(x: string, y: string): number {
  return x < y ? -1 : x > y ? 1 : 0;
}

/** "1G", "512M", "64k", "1000000": binary multiples. */
export function parseSize(text: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(text.trim());
  if (!match) throw new Error(`not a size: ${text} (try 1G, 512M, 64k)`);
  const power = { '': 0, k: 1, m: 2, g: 3, t: 4 }[match[2]!.toLowerCase() as '' | 'k' | 'm' | 'g' | 't'];
  return Math.round(Number(match[1]) * 1024 ** power);
}

function main(argv: string[]): void {
  let size = parseSize('1G');
  let seed = 1;
  let out = '';
  let rate: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const value = () => {
      const next = argv[++i];
      if (next === undefined) throw new Error(`${arg} needs a value`);
      return next;
    };
    if (arg === '--size') size = parseSize(value());
    else if (arg === '--seed') seed = Number(value());
    else if (arg === '--out') out = value();
    else if (arg === '--rate') rate = Number(value());
    else throw new Error(`unknown option ${arg} (usage: generate --size 1G --seed 1 --out FILE [--rate CONNECTIONS_PER_SECOND])`);
  }
  if (!out) throw new Error('--out FILE is required');
  if (!Number.isInteger(seed)) throw new Error('--seed must be an integer');
  const started = process.hrtime.bigint();
  const truth = generateCapture({ sizeBytes: size, seed, out, connectionsPerSecond: rate });
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  process.stdout.write(
    `${out}: ${truth.file.bytes.toLocaleString('en-US')} bytes, ${truth.file.packets.toLocaleString('en-US')} packets, ` +
      `${truth.connections.toLocaleString('en-US')} connections, ${truth.closeWait} stuck (${truth.closeWaitServerSide} server side, ${truth.closeWaitClientSide} client side), ` +
      `${truth.file.captureSeconds.toFixed(0)} s of traffic; written in ${seconds.toFixed(1)} s\ntruth: ${truthPathFor(out)}\n`,
  );
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  try {
    main(process.argv.slice(2));
  } catch (error) {
    process.stderr.write(`generate: ${(error as Error).message}\n`);
    process.exitCode = 2;
  }
}
