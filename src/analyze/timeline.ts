import { formatEndpoint } from '../flow/address.js';
import type { Finding, ServerSummary, TimelinePoint } from './model.js';
import { INVALID_TIME, type TimeBase } from './time.js';

/** Points per server: enough for a sparkline or a chart, few enough for a ticket. */
export const TIMELINE_BUCKETS = 60;
/** Servers drawn: the ones with the most stuck connections. */
export const TIMELINE_SERVERS = 8;

/**
 * Open CLOSE_WAIT connections per server over capture time. A stuck connection stays open from its
 * peer's FIN to the end of the capture, so the count at the end of each bucket is the number of stuck
 * connections whose peer FIN came before it. The capture is cut into at most TIMELINE_BUCKETS equal
 * buckets; each point is stamped with its bucket's end.
 */
export function buildTimeline(
  servers: readonly ServerSummary[],
  findingsByServer: ReadonlyMap<string, readonly Finding[]>,
  peerFinNanos: (finding: Finding) => number,
  time: TimeBase,
  captureStart: number,
  captureEnd: number,
): TimelinePoint[] {
  if (!(captureEnd >= captureStart)) return [];
  // A timeline needs both ends on the calendar: damaged timestamps past year 9999 have none.
  if (time.format(captureStart) === INVALID_TIME || time.format(captureEnd) === INVALID_TIME) return [];
  const drawn = servers.filter((s) => s.closeWait > 0 && s.ip !== '*').slice(0, TIMELINE_SERVERS);
  if (drawn.length === 0) return [];
  const span = captureEnd - captureStart;
  const buckets = span > 0 ? TIMELINE_BUCKETS : 1;
  const ends = Array.from({ length: buckets }, (_, i) => (i === buckets - 1 ? captureEnd : captureStart + (span * (i + 1)) / buckets));
  const points: TimelinePoint[] = [];
  for (const server of drawn) {
    const fins = (findingsByServer.get(formatEndpoint(server.ip, server.port)) ?? []).map(peerFinNanos).sort((x, y) => x - y);
    let open = 0;
    for (const end of ends) {
      while (open < fins.length && fins[open]! <= end) open++;
      points.push({ time: time.format(end), server: { ip: server.ip, port: server.port }, closeWait: open });
    }
  }
  return points;
}

/** The timeline regrouped per server, in the order the servers first appear. */
export function timelineByServer(points: readonly TimelinePoint[]): { server: { ip: string; port: number }; times: string[]; counts: number[] }[] {
  const series = new Map<string, { server: { ip: string; port: number }; times: string[]; counts: number[] }>();
  for (const point of points) {
    const key = formatEndpoint(point.server.ip, point.server.port);
    let entry = series.get(key);
    if (!entry) series.set(key, (entry = { server: point.server, times: [], counts: [] }));
    entry.times.push(point.time);
    entry.counts.push(point.closeWait);
  }
  return [...series.values()];
}
