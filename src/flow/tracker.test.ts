import { describe, expect, it } from 'vitest';
import { TCP_FLAG, newTcpSegment } from '../decode/segment.js';
import { STILL_SENDING_NANOS, closeWaitSide, endpointState, isStillSending } from '../analyze/verdict.js';
import type { Connection } from './connection.js';
import { ConnectionTracker, type ReleaseReason } from './tracker.js';

const CLIENT = { ip: 0x7f000002, port: 40000 };
const SERVER = { ip: 0x7f000001, port: 20880 };
const { SYN, ACK, FIN, RST, PSH } = TCP_FLAG;

/** One packet of a scripted exchange: who sends, flags, seq, ack, payload bytes, time in ms. */
type Step = [from: 'c' | 's', flags: number, seq: number, ack: number, length?: number, atMs?: number, clientPort?: number, window?: number];

function run(steps: Step[], options: { ports?: number[]; clientPort?: number } = {}) {
  const released: [Connection, ReleaseReason][] = [];
  const tracker = new ConnectionTracker({
    maxConnections: 1000,
    lingerNanos: 120e9,
    ports: options.ports ? new Set(options.ports) : undefined,
    // The tracker reuses one instance for every release: keep copies.
    onRelease: (connection, reason) => released.push([connection.clone(), reason]),
  });
  const seg = newTcpSegment();
  const clientPort = options.clientPort ?? CLIENT.port;
  steps.forEach(([from, flags, seq, ack, length = 0, atMs, port = clientPort, window = 512], index) => {
    const [src, dst] = from === 'c' ? [{ ...CLIENT, port }, SERVER] : [SERVER, { ...CLIENT, port }];
    seg.src.set([0, 0, 0xffff, src.ip]);
    seg.dst.set([0, 0, 0xffff, dst.ip]);
    seg.srcPort = src.port;
    seg.dstPort = dst.port;
    seg.flags = flags;
    seg.seq = seq >>> 0;
    seg.ack = ack >>> 0;
    seg.payloadLength = length;
    seg.window = window;
    tracker.onSegment(seg, (atMs ?? index) * 1e6, 0, index + 1);
  });
  const live = [...tracker.live()];
  for (const connection of live) tracker.roles.resolve(connection);
  return { tracker, live, released };
}

/** Side (0/1) of the server endpoint: SERVER has the lower address, so it is always side a. */
const serverSide = 0;

const handshake: Step[] = [
  ['c', SYN, 1000, 0],
  ['s', SYN | ACK, 5000, 1001],
  ['c', ACK, 1001, 5001],
];

describe('close-wait verdict on scripted exchanges', () => {
  const cases: { name: string; steps: Step[]; stuck: 'server' | 'client' | null; states?: [string, string] }[] = [
    {
      name: 'client closes, server acks and never closes',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002]],
      stuck: 'server',
      states: ['CLOSE_WAIT', 'FIN_WAIT_2'],
    },
    {
      name: 'both close: no one stuck',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], ['s', FIN | ACK, 5001, 1002], ['c', ACK, 1002, 5002]],
      stuck: null,
      states: ['CLOSED', 'TIME_WAIT'],
    },
    {
      name: 'FIN not acked yet: not stuck (FIN in flight)',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001]],
      stuck: null,
      states: ['ESTABLISHED', 'FIN_WAIT_1'],
    },
    {
      name: 'an ACK that does not cover FIN+1 does not acknowledge the FIN',
      steps: [...handshake, ['c', PSH | ACK, 1001, 5001, 100], ['c', FIN | ACK, 1101, 5001], ['s', ACK, 5001, 1101]],
      stuck: null,
    },
    {
      name: 'request acked but never answered, then client FIN acked',
      steps: [...handshake, ['c', PSH | ACK, 1001, 5001, 100], ['s', ACK, 5001, 1101], ['c', FIN | ACK, 1101, 5001], ['s', ACK, 5001, 1102]],
      stuck: 'server',
    },
    {
      name: 'RST from the stuck side after the FIN ends it',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], ['s', RST | ACK, 5001, 1002]],
      stuck: null,
      states: ['CLOSED', 'CLOSED'],
    },
    {
      name: 'RST from the peer ends it too',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], ['c', RST, 1002, 0]],
      stuck: null,
    },
    {
      name: 'retransmitted FIN changes nothing',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002]],
      stuck: 'server',
    },
    {
      name: 'server closes first, client never does: client stuck',
      steps: [...handshake, ['s', FIN | ACK, 5001, 1001], ['c', ACK, 1001, 5002]],
      stuck: 'client',
      states: ['FIN_WAIT_2', 'CLOSE_WAIT'],
    },
    {
      name: 'simultaneous close',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', FIN | ACK, 5001, 1001], ['c', ACK, 1002, 5002], ['s', ACK, 5002, 1002]],
      stuck: null,
    },
    {
      name: 'the server may keep sending after the peer FIN: still CLOSE_WAIT',
      steps: [...handshake, ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], ['s', PSH | ACK, 5001, 1002, 300], ['c', ACK, 1002, 5301]],
      stuck: 'server',
    },
    {
      name: 'sequence numbers wrapping past 2^32',
      steps: [
        ['c', SYN, 0xfffffff0, 0], ['s', SYN | ACK, 0xffffff00, 0xfffffff1], ['c', ACK, 0xfffffff1, 0xffffff01],
        ['c', PSH | ACK, 0xfffffff1, 0xffffff01, 100], ['s', ACK, 0xffffff01, 0x55], ['c', FIN | ACK, 0x55, 0xffffff01], ['s', ACK, 0xffffff01, 0x56],
      ],
      stuck: 'server',
    },
  ];
  for (const testCase of cases) {
    it(testCase.name, () => {
      const { live, tracker } = run(testCase.steps);
      expect(tracker.connectionsSeen).toBe(1);
      const connection = live[0]!;
      const stuck = closeWaitSide(connection);
      const expected = testCase.stuck === null ? -1 : testCase.stuck === 'server' ? serverSide : 1 - serverSide;
      expect(stuck).toBe(expected);
      expect(connection.clientSide).toBe(1);
      if (testCase.states) {
        expect([endpointState(connection, 0), endpointState(connection, 1)]).toEqual(testCase.states);
      }
    });
  }
});

describe('connections on one 4-tuple', () => {
  it('a new SYN after a clean close starts a second connection', () => {
    const close: Step[] = [['c', FIN | ACK, 1001, 5001], ['s', FIN | ACK, 5001, 1002], ['c', ACK, 1002, 5002]];
    const { tracker, live, released } = run([...handshake, ...close, ['c', SYN, 9000, 0], ['s', SYN | ACK, 7000, 9001], ['c', ACK, 9001, 7001]]);
    expect(tracker.connectionsSeen).toBe(2);
    expect(released.map(([, reason]) => reason)).toEqual(['closed']);
    expect(live).toHaveLength(1);
    expect(live[0]!.endpoint(1).isn).toBe(9000);
  });

  it('each released connection carries only its own fields, though one instance is reused for every release', () => {
    const close: Step[] = [['c', FIN | ACK, 1001, 5001], ['s', FIN | ACK, 5001, 1002], ['c', ACK, 1002, 5002]];
    const { released } = run([
      ...handshake, ...close,
      ['c', SYN, 9000, 0], ['s', SYN | ACK, 7000, 9001], ['c', ACK, 9001, 7001], ['s', RST, 7001, 0],
      ['c', SYN, 12000, 0], ['s', SYN | ACK, 15000, 12001],
    ]);
    expect(released.map(([, reason]) => reason)).toEqual(['closed', 'closed']);
    const [[first], [second]] = released as [[Connection, ReleaseReason], [Connection, ReleaseReason]];
    expect(first.endpoint(1).finFrame).toEqual({ input: 0, frame: 4 });
    expect(first.endpoint(0).finFrame).toEqual({ input: 0, frame: 5 });
    expect(first.endpoint(0).rstFrame).toBeNull();
    expect(second.endpoint(1).isn).toBe(9000);
    expect(second.endpoint(1).finSeen).toBe(false);
    expect(second.endpoint(1).finFrame).toBeNull();
    expect(second.endpoint(0).finFrame).toBeNull();
    expect(second.endpoint(0).rstFrame).toEqual({ input: 0, frame: 10 });
    expect(second.firstFrame).toEqual({ input: 0, frame: 7 });
  });

  it('a SYN into CLOSE_WAIT: challenge ACK, client RST, SYN again — the old one ends by RST, the new one is clean', () => {
    const { tracker, live, released } = run([
      ...handshake,
      ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002], // server now in CLOSE_WAIT
      ['c', SYN, 9000, 0, 0, 1000], // client reuses its port
      ['s', ACK, 5001, 1002, 0, 1000], // Linux's challenge ACK, from the old connection
      ['c', RST, 1002, 0, 0, 1000], // the client's RST kills the CLOSE_WAIT socket
      ['c', SYN, 9000, 0, 0, 2000], // the SYN again
      ['s', SYN | ACK, 7000, 9001, 0, 2000],
      ['c', ACK, 9001, 7001, 0, 2000],
    ]);
    expect(tracker.connectionsSeen).toBe(2);
    expect(released).toHaveLength(1);
    const [old] = released[0]!;
    expect(old.synsIntoOpen).toBe(1);
    expect(closeWaitSide(old)).toBe(-1);
    expect(old.endpoint(1).rstSeen).toBe(true);
    expect(live).toHaveLength(1);
    expect(closeWaitSide(live[0]!)).toBe(-1);
    expect(endpointState(live[0]!, 0)).toBe('ESTABLISHED');
  });

  it('the same, with the CLOSE_WAIT connection never in the capture: the new one is neither reset nor hidden', () => {
    // The capture began after the earlier connection went silent in CLOSE_WAIT: only its challenge ACK
    // and the client's RST to it are seen, and they are not this connection's.
    const { tracker, live, released } = run([
      ['c', SYN, 9000, 0, 0, 1000],
      ['s', ACK, 5001, 1002, 0, 1000], // the challenge ACK: the earlier connection's numbers, not 9001
      ['c', RST, 1002, 0, 0, 1000], // seq = that ACK's ack: the RST ends the earlier connection
      ['c', SYN, 9000, 0, 0, 1010],
      ['s', SYN | ACK, 7000, 9001, 0, 1010],
      ['c', ACK, 9001, 7001, 0, 1010],
      ['c', PSH | ACK, 9001, 7001, 100, 1020],
      ['s', PSH | ACK, 7001, 9101, 50, 1020],
      ['c', FIN | ACK, 9101, 7051, 0, 1030],
      ['s', ACK, 7051, 9102, 0, 1030], // and this server never closes it either
    ]);
    expect(tracker.connectionsSeen).toBe(1);
    expect(released).toEqual([]);
    const connection = live[0]!;
    expect(connection.challengedSyns).toBe(1);
    expect(connection.endpoint(1).rstSeen).toBe(false);
    expect(connection.endpoint(0).packets).toBe(3); // the SYN-ACK, the response, the ACK of the FIN
    expect(connection.endpoint(0).highestAck).toBe(101);
    expect(connection.endpoint(0).ackedUnseen).toBe(false);
    expect(closeWaitSide(connection)).toBe(serverSide);
  });

  it('the SYN-ACK lost from the capture: the server\'s first packet, after the client\'s ACK and FIN, is no challenge', () => {
    const { live } = run([
      ['c', SYN, 9000, 0],
      ['c', ACK, 9001, 7001],
      ['c', FIN | ACK, 9001, 7001],
      ['s', ACK, 7001, 9002], // acknowledges the FIN: this server sits in CLOSE_WAIT
    ]);
    expect(live[0]!.challengedSyns).toBe(0);
    expect(closeWaitSide(live[0]!)).toBe(serverSide);
  });

  it('a SYN-ACK seen before any SYN (the SYN lost) still makes its sender the server', () => {
    const { live } = run([
      ['s', SYN | ACK, 5000, 1001],
      ['c', ACK, 1001, 5001],
      ['c', FIN | ACK, 1001, 5001],
      ['s', ACK, 5001, 1002],
    ]);
    expect(live[0]!.clientSide).toBe(1);
    expect(live[0]!.roleReason).toBe('syn-ack');
    expect(closeWaitSide(live[0]!)).toBe(serverSide);
  });

  it('an ACK that answers the SYN itself is not taken for a challenge ACK', () => {
    // The SYN-ACK is missing from the capture; the server's next packet acknowledges the SYN (ISN + 1).
    const { live } = run([['c', SYN, 9000, 0], ['s', ACK, 7001, 9001], ['c', ACK, 9001, 7001]]);
    expect(live[0]!.challengedSyns).toBe(0);
    expect(live[0]!.endpoint(0).packets).toBe(1);
  });

  it('a RST that is not the answer to a challenge ACK still resets the connection', () => {
    const { live, released } = run([['c', SYN, 9000, 0], ['s', ACK, 5001, 1002], ['c', RST, 4444, 0]]);
    expect([...live, ...released.map(([c]) => c)].some((c) => c.endpoint(1).rstSeen)).toBe(true);
  });

  it('a SYN answered by SYN-ACK while the old connection looked open takes the tuple over', () => {
    const { tracker, live, released } = run([
      ...handshake,
      ['c', FIN | ACK, 1001, 5001], ['s', ACK, 5001, 1002],
      ['c', SYN, 9000, 0], ['s', SYN | ACK, 7000, 9001], ['c', ACK, 9001, 7001],
    ]);
    expect(tracker.connectionsSeen).toBe(2);
    expect(released.map(([c, reason]) => [c.superseded, reason])).toEqual([[true, 'superseded']]);
    expect(live[0]!.endpoint(1).synSeen).toBe(true);
    expect(live[0]!.roleReason).toBe('syn');
  });

  it('SYNs with new ISNs that nobody answers are separate connect() attempts', () => {
    const { tracker } = run([['c', SYN, 1000, 0], ['c', SYN, 2000, 0], ['c', SYN, 3000, 0], ...handshake.slice(1).map((s): Step => [s[0], s[1], s[2], s[3] + 2000])]);
    expect(tracker.connectionsSeen).toBe(3);
  });

  it('a split handshake (SYN answered by a bare SYN, then SYN-ACK) is one connection', () => {
    const { tracker, live } = run([['c', SYN, 1000, 0], ['s', SYN, 5000, 0], ['c', SYN | ACK, 1000, 5001], ['s', ACK, 5001, 1001]]);
    expect(tracker.connectionsSeen).toBe(1);
    expect(live[0]!.clientSide).toBe(1);
  });

  it('a SYN reordered after its own handshake stays in the connection', () => {
    const { tracker, live } = run([['s', SYN | ACK, 5000, 1001], ['c', ACK, 1001, 5001], ['c', SYN, 1000, 0]]);
    expect(tracker.connectionsSeen).toBe(1);
    expect(live[0]!.synsIntoOpen).toBe(0);
  });

  it('the same SYN twice within microseconds is one packet seen twice, not a SYN sent again', () => {
    const { live } = run([
      ['c', SYN, 1000, 0, 0, 0],
      ['c', SYN, 1000, 0, 0, 0.005], // tcpdump -i any: the packet on the veth, then on the bridge
      ['c', SYN, 1000, 0, 0, 1000], // sent again after Linux's 1 s timeout
      ['c', SYN, 1000, 0, 0, 1000.005],
    ]);
    expect(live[0]!.endpoint(1).synRetransmits).toBe(1);
    expect(live[0]!.endpoint(1).packets).toBe(2);
  });

  it('a retransmitted SYN (same ISN) stays one connection', () => {
    const { tracker } = run([['c', SYN, 1000, 0], ['c', SYN, 1000, 0], ...handshake.slice(1)]);
    expect(tracker.connectionsSeen).toBe(1);
  });
});

describe('roles without a handshake', () => {
  const midstream: Step[] = [['s', PSH | ACK, 5001, 1001, 10], ['c', FIN | ACK, 1001, 5011], ['s', ACK, 5011, 1002]];

  it('--port decides', () => {
    const { live } = run(midstream, { ports: [20880] });
    expect(live[0]!.roleReason).toBe('port');
    expect(live[0]!.clientSide).toBe(1);
  });

  it('else the lower port, recorded as such', () => {
    const { live } = run(midstream);
    expect(live[0]!.roleReason).toBe('lower-port');
    expect(live[0]!.clientSide).toBe(1);
    expect(closeWaitSide(live[0]!)).toBe(0);
  });

  it('a side seen accepting connections elsewhere is the server even with the higher port', () => {
    // The client's port 80 is lower than the server's 20880: only the listener rule gets this right.
    const { live } = run([['c', SYN, 1, 0, 0, 0, 40000], ['s', SYN | ACK, 1, 2, 0, 0, 40000], ...midstream], { clientPort: 80 });
    const midstreamConnection = live.find((c) => c.portB === 80)!;
    expect(midstreamConnection.roleReason).toBe('listener');
    expect(midstreamConnection.clientSide).toBe(1);
  });

  it('idle for minutes stays one connection', () => {
    const { tracker } = run([...handshake, ['c', PSH | ACK, 1001, 5001, 10, 10], ['s', ACK, 5001, 1011, 0, 600_000], ['c', FIN | ACK, 1011, 5001, 0, 900_000], ['s', ACK, 5001, 1012, 0, 900_001]]);
    expect(tracker.connectionsSeen).toBe(1);
    expect(closeWaitSide([...tracker.live()][0]!)).toBe(0);
  });
});

describe('bounded memory', () => {
  it('evicts the idlest open connections beyond the cap and counts them', () => {
    const tracker = new ConnectionTracker({ maxConnections: 100, lingerNanos: 1e9, onRelease: () => undefined });
    const seg = newTcpSegment();
    for (let i = 0; i < 1000; i++) {
      seg.src.set([0, 0, 0xffff, 0x0a000000 + i]);
      seg.dst.set([0, 0, 0xffff, SERVER.ip]);
      seg.srcPort = 1024 + (i % 60000);
      seg.dstPort = SERVER.port;
      seg.flags = SYN;
      seg.seq = i;
      tracker.onSegment(seg, i * 1e3, 0, i + 1);
    }
    expect(tracker.connectionsSeen).toBe(1000);
    expect(tracker.liveConnections).toBeLessThanOrEqual(100);
    expect(tracker.evicted).toBeGreaterThanOrEqual(900);
  });

  it('evicts half-closed connections last: they are silent, and what the report is for', () => {
    const tracker = new ConnectionTracker({ maxConnections: 100, lingerNanos: 120e9, onRelease: () => undefined });
    const seg = newTcpSegment();
    const send = (client: number, flags: number, seq: number, ack: number, atMs: number, fromServer = false) => {
      const address = [0, 0, 0xffff, 0x0a000000 + client];
      seg.src.set(fromServer ? [0, 0, 0xffff, SERVER.ip] : address);
      seg.dst.set(fromServer ? address : [0, 0, 0xffff, SERVER.ip]);
      seg.srcPort = fromServer ? SERVER.port : 40000;
      seg.dstPort = fromServer ? 40000 : SERVER.port;
      seg.flags = flags;
      seg.seq = seq;
      seg.ack = ack;
      tracker.onSegment(seg, atMs * 1e6, 0, 1);
    };
    // 30 connections stuck early (the client's FIN acknowledged, the server silent since)...
    for (let i = 0; i < 30; i++) {
      send(i, SYN, 1000, 0, i);
      send(i, SYN | ACK, 5000, 1001, i, true);
      send(i, FIN | ACK, 1001, 5001, i + 1);
      send(i, ACK, 5001, 1002, i + 1, true);
    }
    // ...then 500 connections that stay open, more recent than every stuck one.
    for (let i = 30; i < 530; i++) {
      send(i, SYN, 1000, 0, 1000 + i);
      send(i, SYN | ACK, 5000, 1001, 1000 + i, true);
    }
    expect(tracker.evicted).toBeGreaterThanOrEqual(430);
    const live = [...tracker.live()];
    expect(live.filter((c) => closeWaitSide(c) !== -1)).toHaveLength(30);
  });

  it('closed connections leave the table after their linger', () => {
    const released: ReleaseReason[] = [];
    const tracker = new ConnectionTracker({ maxConnections: 1000, lingerNanos: 1e9, onRelease: (_c, reason) => released.push(reason) });
    const seg = newTcpSegment();
    const send = (port: number, flags: number, t: number) => {
      seg.src.set([0, 0, 0xffff, CLIENT.ip]);
      seg.dst.set([0, 0, 0xffff, SERVER.ip]);
      seg.srcPort = port;
      seg.dstPort = SERVER.port;
      seg.flags = flags;
      tracker.onSegment(seg, t, 0, 1);
    };
    send(1, RST, 0);
    for (let t = 1; t <= 20; t++) send(100 + t, SYN, t * 1e9);
    expect(released).toContain('closed');
    expect(tracker.liveConnections).toBe(20);
  });

  it('in a busy table (over 16,384 connections) closed connections linger 5 s, not the full linger', () => {
    const run = (connectionsPerSecond: number) => {
      const tracker = new ConnectionTracker({ maxConnections: 1_000_000, lingerNanos: 120e9, onRelease: () => undefined });
      const seg = newTcpSegment();
      let most = 0;
      // 60 s of connections, each reset as soon as it starts (closed at birth).
      for (let i = 0; i < connectionsPerSecond * 60; i++) {
        seg.src.set([0, 0, 0xffff, 0x0a000000 + (i >> 14)]);
        seg.dst.set([0, 0, 0xffff, SERVER.ip]);
        seg.srcPort = 1024 + (i & 0x3fff);
        seg.dstPort = SERVER.port;
        seg.flags = RST;
        seg.seq = i;
        tracker.onSegment(seg, (i / connectionsPerSecond) * 1e9, 0, i + 1);
        most = Math.max(most, tracker.liveConnections);
      }
      return most;
    };
    // 100/s: 6,000 connections in all, never busy: every one is still lingering after 60 s.
    expect(run(100)).toBe(6_000);
    // 2,000/s: busy past 16,384; from then on ~5 s of closed connections (plus a sweep interval) stay.
    const busy = run(2_000);
    expect(busy).toBeGreaterThan(16_384);
    expect(busy).toBeLessThan(16_384 + 2_000 * 11);
  });
});

describe('attempts nobody answered', () => {
  // Another connection's packets move capture time on (sweeps run on capture time).
  const clock = (atMs: number, seq: number): Step => ['c', ACK, seq, 1, 0, atMs, 50000];
  const reasons = (released: [Connection, ReleaseReason][], port: number) =>
    released.filter(([c]) => c.portA === port || c.portB === port).map(([, reason]) => reason);

  it('are released as unanswered once silent for 3 minutes (by the next scan, every 60 s of capture time)', () => {
    const steps: Step[] = [['c', SYN, 1000, 0, 0, 0], ['c', SYN, 1000, 0, 0, 1_000], ['c', SYN, 1000, 0, 0, 3_000], clock(180_000, 1), clock(182_000, 2)];
    // Last heard at 3 s: at 182 s not yet 3 minutes silent; the scan at 240 s gives it up.
    expect(reasons(run(steps).released, CLIENT.port)).toEqual([]);
    const later = run([...steps, clock(240_000, 3)]);
    expect(reasons(later.released, CLIENT.port)).toEqual(['unanswered']);
    expect(later.live.some((c) => c.portA === CLIENT.port || c.portB === CLIENT.port)).toBe(false);
  });

  it('a SYN answered (even by a RST) is never given up; one sent again is, 3 minutes after the last', () => {
    const steps: Step[] = [
      ['c', SYN, 1000, 0, 0, 0, 40001],
      ['s', SYN | ACK, 5000, 1001, 0, 1, 40001],
      ['c', SYN, 2000, 0, 0, 0, 40002],
      ['s', RST | ACK, 0, 2001, 0, 1, 40002],
      ['c', SYN, 3000, 0, 0, 0, 40003],
      ['c', SYN, 3000, 0, 0, 100_000, 40003],
      clock(200_000, 1),
      clock(270_000, 2),
    ];
    const { released, live } = run(steps);
    expect(reasons(released, 40001)).toEqual([]);
    expect(reasons(released, 40002)).toEqual(['closed']);
    expect(reasons(released, 40003)).toEqual([]);
    expect(live.filter((c) => [40001, 40003].includes(c.portA) || [40001, 40003].includes(c.portB))).toHaveLength(2);
    const later = run([...steps, clock(330_000, 3)]);
    expect(reasons(later.released, 40003)).toEqual(['unanswered']);
    expect(reasons(later.released, 40001)).toEqual([]);
  });
});

describe('a CLOSE_WAIT side still sending', () => {
  // The client sends its request and half-closes; the server answers after the FIN (or not).
  const halfClosed: Step[] = [...handshake, ['c', PSH | ACK, 1001, 5001, 10, 10], ['c', FIN | ACK, 1011, 5001, 0, 11], ['s', ACK, 5001, 1012, 0, 12]];
  const stillSending = (steps: Step[], endMs: number) => {
    const { live } = run(steps);
    expect(closeWaitSide(live[0]!)).toBe(serverSide);
    return isStillSending(live[0]!, serverSide, endMs * 1e6);
  };
  const windowMs = STILL_SENDING_NANOS / 1e6;

  it('is in use while its new data is recent, stuck once it has been silent for the window', () => {
    const answered: Step[] = [...halfClosed, ['s', PSH | ACK, 5001, 1012, 1000, 100], ['s', PSH | ACK, 6001, 1012, 1000, 200]];
    expect(stillSending(answered, 200 + windowMs - 1)).toBe(true);
    expect(stillSending(answered, 200 + windowMs)).toBe(false);
    const { live } = run(answered);
    expect(live[0]!.a.bytesSent - live[0]!.a.bytesSentAtPeerFin).toBe(2000);
  });

  it('at its own pace: writes every 30 s after the FIN are in use up to twice that after the last', () => {
    const heartbeats: Step[] = [...halfClosed, ['s', PSH | ACK, 5001, 1012, 10, 1_000], ['s', PSH | ACK, 5011, 1012, 10, 31_000], ['s', PSH | ACK, 5021, 1012, 10, 61_000]];
    expect(stillSending(heartbeats, 61_000 + 59_999)).toBe(true);
    expect(stillSending(heartbeats, 61_000 + 60_000)).toBe(false);
  });

  it('data sent before the FIN, or sent again after it, is not sending after the FIN', () => {
    const before: Step[] = [...handshake, ['s', PSH | ACK, 5001, 1001, 1000, 5], ['c', FIN | ACK, 1001, 6001, 0, 10], ['s', ACK, 6001, 1002, 0, 11]];
    expect(stillSending(before, 12)).toBe(false);
    const resent: Step[] = [...before, ['s', PSH | ACK, 5001, 1002, 1000, 12]];
    expect(stillSending(resent, 13)).toBe(false);
  });

  it('a silent stuck side is never still sending', () => {
    expect(stillSending(halfClosed, 13)).toBe(false);
  });

  it('held by the peer closing its receive window, however long ago its last data', () => {
    const filled: Step[] = [...halfClosed, ['s', PSH | ACK, 5001, 1012, 1000, 100], ['c', ACK, 1012, 6001, 0, 101, undefined, 0]];
    expect(stillSending(filled, 100 + 10 * windowMs)).toBe(true);
    const reopened: Step[] = [...filled, ['c', ACK, 1012, 6001, 0, 200, undefined, 512]];
    expect(stillSending(reopened, 100 + 10 * windowMs)).toBe(false);
  });
});
