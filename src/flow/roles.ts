import { formatAddress, formatEndpoint } from './address.js';
import type { Connection, RoleReason } from './connection.js';

/**
 * Decides which side accepted the connection when no handshake said so, in the order the house
 * plan gives: --port, a side known to accept connections elsewhere in the capture, a side that talks
 * to many peers, else the lower port.
 */
const MAX_MIDSTREAM_ENDPOINTS = 200_000;

/** What the resolver needs to name a connection's two endpoints. */
export type ConnectionEnds = Pick<Connection, 'family' | 'addressA' | 'portA' | 'addressB' | 'portB'>;

export class RoleResolver {
  /** Endpoints seen answering a SYN: they listen. */
  private readonly listeners = new Set<string>();
  /** For connections first seen mid-stream: how many such connections each endpoint is part of. */
  private readonly midstreamPeers = new Map<string, number>();

  constructor(private readonly ports?: ReadonlySet<number>) {}

  noteListener(connection: ConnectionEnds, side: 0 | 1): void {
    this.listeners.add(endpointKey(connection, side));
  }

  noteMidstream(connection: ConnectionEnds): void {
    // A flood of mid-stream junk must not grow this without bound: past the cap, stop counting.
    if (this.midstreamPeers.size >= MAX_MIDSTREAM_ENDPOINTS) return;
    for (const side of [0, 1] as const) {
      const key = endpointKey(connection, side);
      this.midstreamPeers.set(key, (this.midstreamPeers.get(key) ?? 0) + 1);
    }
  }

  /** Fills in clientSide and roleReason if the handshake did not. */
  resolve(connection: Connection): void {
    if (connection.clientSide >= 0) return;
    const [server, reason] = this.serverSide(connection);
    connection.clientSide = server === 0 ? 1 : 0;
    connection.roleReason = reason;
  }

  private serverSide(connection: Connection): [0 | 1, RoleReason] {
    const { portA, portB } = connection;
    if (this.ports) {
      const aListed = this.ports.has(portA);
      const bListed = this.ports.has(portB);
      if (aListed !== bListed) return [aListed ? 0 : 1, 'port'];
    }
    const aListens = this.listeners.has(endpointKey(connection, 0));
    const bListens = this.listeners.has(endpointKey(connection, 1));
    if (aListens !== bListens) return [aListens ? 0 : 1, 'listener'];
    const aPeers = this.midstreamPeers.get(endpointKey(connection, 0)) ?? 0;
    const bPeers = this.midstreamPeers.get(endpointKey(connection, 1)) ?? 0;
    if (Math.max(aPeers, bPeers) > 1 && aPeers !== bPeers) return [aPeers > bPeers ? 0 : 1, 'many-peers'];
    return [portA <= portB ? 0 : 1, 'lower-port'];
  }
}

export function endpointKey(connection: ConnectionEnds, side: 0 | 1): string {
  return side === 0
    ? formatEndpoint(formatAddress(connection.addressA, connection.family), connection.portA)
    : formatEndpoint(formatAddress(connection.addressB, connection.family), connection.portB);
}
