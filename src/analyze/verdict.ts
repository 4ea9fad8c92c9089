import type { Connection, Endpoint } from '../flow/connection.js';
import type { TcpState } from './model.js';

/**
 * The side stuck in CLOSE_WAIT, or -1. The rule, in one line: the peer sent FIN, this side
 * acknowledged it, and neither this side's FIN nor a RST from either side followed by the end of the
 * capture. A tuple taken over by a new connection is not stuck (its hosts moved on).
 */
export function closeWaitSide(connection: Connection): -1 | 0 | 1 {
  if (connection.superseded || connection.a.rstSeen || connection.b.rstSeen) return -1;
  if (isStuck(connection.a, connection.b)) return 0;
  if (isStuck(connection.b, connection.a)) return 1;
  return -1;
}

function isStuck(self: Endpoint, peer: Endpoint): boolean {
  return peer.finSeen && peer.finAcked && !self.finSeen;
}

/**
 * Each endpoint's TCP state at the end of the capture, inferred from what both sides sent
 * (RFC 9293 names). A table over (FINs and their ACKs, RSTs, handshake), not a replay.
 *
 * | self FIN | peer FIN | self                                      |
 * |----------|----------|-------------------------------------------|
 * | -        | -        | SYN_SENT / SYN_RECEIVED / ESTABLISHED     |
 * | sent     | -        | FIN_WAIT_1 (unacked) / FIN_WAIT_2 (acked) |
 * | -        | sent     | CLOSE_WAIT (acked) / ESTABLISHED          |
 * | first    | sent     | CLOSING (unacked) / TIME_WAIT (acked)     |
 * | second   | sent     | LAST_ACK (unacked) / CLOSED (acked)       |
 * Any RST: CLOSED.
 */
export function endpointState(connection: Connection, side: 0 | 1): TcpState {
  const self = connection.endpoint(side);
  const peer = connection.endpoint(side === 0 ? 1 : 0);
  if (self.rstSeen || peer.rstSeen || connection.superseded) return 'CLOSED';
  if (self.finSeen && peer.finSeen) {
    const closedFirst = self.finTime <= peer.finTime;
    if (closedFirst) return self.finAcked ? 'TIME_WAIT' : 'CLOSING';
    return self.finAcked ? 'CLOSED' : 'LAST_ACK';
  }
  if (self.finSeen) return self.finAcked ? 'FIN_WAIT_2' : 'FIN_WAIT_1';
  if (peer.finSeen) return peer.finAcked ? 'CLOSE_WAIT' : 'ESTABLISHED';
  if (self.synSeen && !self.synAckSeen && !peer.synAckSeen) return 'SYN_SENT';
  if (self.synAckSeen && self.packets === 1 && peer.packets <= 1) return 'SYN_RECEIVED';
  if (self.packets === 0 && !self.synSeen) return 'UNKNOWN';
  return 'ESTABLISHED';
}

/**
 * At the end of the capture: a side whose last sequence number was acknowledged one past everything
 * it was seen to send, and that neither sent a FIN nor a RST in the capture, most likely sent a FIN
 * the capture lost (a FIN takes exactly one sequence number). Recorded as an inferred FIN, sent and
 * acknowledged when that ACK was, so the verdict can see the half-close; the finding says it was
 * inferred. Whether or not the peer had sent its FIN first: when it had, this side was not stuck but
 * closed, and a capture that lost its FIN (tcpdump drops packets under load) made a false finding of
 * it: with one packet in 20 dropped from a real-kernel capture, 4,996 false findings of 7,604, 115 now.
 * Returns true when it inferred one.
 */
export function inferMissingFin(connection: Connection): boolean {
  if (connection.superseded || connection.a.rstSeen || connection.b.rstSeen) return false;
  for (const side of [0, 1] as const) {
    const self = connection.endpoint(side);
    const peer = connection.endpoint(side === 0 ? 1 : 0);
    if (self.finSeen || !self.hasSeqBase || peer.highestAckTime < 0) continue;
    if (peer.highestAck !== self.bytesSent + 1) continue;
    const frame = { input: peer.highestAckInput, frame: peer.highestAckFrame };
    self.finSeen = true;
    self.finInferred = true;
    // What the peer sent before that FIN is not known: none of it is taken for sent after it.
    peer.bytesSentAtPeerFin = peer.bytesSent;
    self.finSeq = (self.seqBase + self.bytesSent) >>> 0;
    self.finTime = peer.highestAckTime;
    self.finFrame = frame;
    self.finAcked = true;
    self.finAckTime = peer.highestAckTime;
    self.finAckFrame = frame;
    // The ACK that told us is not "data never seen" any more: it is the FIN's.
    peer.ackedUnseen = false;
    return true;
  }
  return false;
}

/**
 * A FIN is sent again until it is acknowledged, after the sender's retransmission timeout: 200 ms at
 * least on Linux (300 ms on Windows), the round trip plus its variance above that; and the ACK of a FIN
 * is sent at once. A FIN neither acknowledged nor sent again for a second was acknowledged, whether or
 * not the capture holds that ACK, on any path with a round trip well under a second.
 */
const FIN_RETRANSMIT_WINDOW_NANOS = 1e9;

/**
 * At the end of the capture: a FIN never seen acknowledged and never sent again, from a peer whose
 * other side the capture does see (so not a one-way capture), was acknowledged by an ACK the capture
 * lost (tcpdump drops packets under load, the very load of an incident). Recorded as acknowledged at
 * the FIN, so the verdict can see the half-close; the finding says it was inferred. Returns true when
 * it inferred one.
 */
export function inferMissingFinAck(connection: Connection, endTime: number): boolean {
  if (connection.superseded || connection.a.rstSeen || connection.b.rstSeen) return false;
  for (const side of [0, 1] as const) {
    const self = connection.endpoint(side);
    const peer = connection.endpoint(side === 0 ? 1 : 0);
    // The peer acknowledging more than this side was seen to send means packets of this side are
    // missing, its FIN perhaps among them (FIN and ACK in one packet, lost): no inference then.
    if (!peer.finSeen || peer.finAcked || self.finSeen || self.packets === 0 || peer.highestAck > self.bytesSent) continue;
    if (peer.finRetransmits > 0 || endTime - peer.finTime < FIN_RETRANSMIT_WINDOW_NANOS) continue;
    peer.finAcked = true;
    peer.finAckInferred = true;
    peer.finAckTime = peer.finTime;
    peer.finAckFrame = peer.finFrame ? { ...peer.finFrame } : null;
    return true;
  }
  return false;
}

/**
 * A side in CLOSE_WAIT that sent new data this recently was still being used by its application: the
 * peer half-closed (shutdown(SHUT_WR): `nc -N`, a client that sends its request and then its FIN) and
 * is being answered. Such a stream pauses for less than this (the peer reads as it arrives, and a
 * retransmission timeout is under a second); a leaked socket is silent from the FIN on, or from its
 * last answer. Taken for stuck, a download in progress was "the server never closed them".
 */
export const STILL_SENDING_NANOS = 5e9;

/**
 * The CLOSE_WAIT side sent new data after its peer's FIN, the last less than STILL_SENDING_NANOS before
 * the end, or less than twice its own longest pause since the FIN: an application that writes every
 * 30 s (a heartbeat) is using its socket whether the capture ends 4 or 40 s after its last write.
 */
export function isStillSending(connection: Connection, side: 0 | 1, endTime: number): boolean {
  const self = connection.endpoint(side);
  if (isBlockedByPeerWindow(connection, side)) return true;
  if (self.bytesSent <= self.bytesSentAtPeerFin || self.lastDataTime < 0) return false;
  return endTime - self.lastDataTime < Math.max(STILL_SENDING_NANOS, 2 * self.maxDataGapAfterPeerFin);
}

/**
 * The peer's latest packet closed its receive window: it half-closed and then stopped reading, so this
 * side cannot send what its application wrote, nor a FIN queued behind it (an application that did
 * close() shows LAST-ACK in `ss`, with the same packets on the wire). Silent for that, not forgotten.
 */
export function isBlockedByPeerWindow(connection: Connection, side: 0 | 1): boolean {
  return connection.endpoint(side === 0 ? 1 : 0).lastWindow === 0;
}

/** Why a close-wait verdict might be wrong, from gaps the capture shows; null when it is solid. */
export function uncertainty(connection: Connection, stuck: 0 | 1): string | null {
  const self = connection.endpoint(stuck);
  const peer = connection.endpoint(stuck === 0 ? 1 : 0);
  const reasons: string[] = [];
  if (peer.finInferred) reasons.push("the peer's FIN is not in the capture: it is inferred from the ACK number that acknowledged it");
  if (peer.finAckInferred) reasons.push("the ACK of the peer's FIN is not in the capture: inferred because the FIN was never sent again (packets missing; the evidence points at the FIN)");
  if (self.ackedUnseen || peer.ackedUnseen) reasons.push('an ACK covers data the capture never showed (packets missing)');
  if (connection.spansGap) reasons.push('the inputs have a gap in time while this connection was open');
  // Mid-stream, a side silent until the peer's FIN may have sent its own FIN before the capture began:
  // then the peer's FIN was the second one and this side is in TIME_WAIT. The wire looks the same.
  if (!connection.a.synSeen && !connection.b.synSeen && !(self.packets > 0 && self.firstTime < peer.finTime)) {
    reasons.push('the capture started mid-connection and this side sent nothing before the peer\'s FIN: it may have closed before the capture began');
  }
  return reasons.length ? reasons.join('; ') : null;
}
