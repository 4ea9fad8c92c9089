import type { Family } from './connection.js';

/** An address as text: IPv4 dotted, IPv6 per RFC 5952 (lower case, longest zero run as "::"). */
export function formatAddress(words: Uint32Array, family: Family): string {
  if (family === 4) {
    const v4 = words[3]!;
    return `${v4 >>> 24}.${(v4 >>> 16) & 0xff}.${(v4 >>> 8) & 0xff}.${v4 & 0xff}`;
  }
  const groups: number[] = [];
  for (let i = 0; i < 4; i++) groups.push(words[i]! >>> 16, words[i]! & 0xffff);
  let bestStart = -1;
  let bestLength = 1; // RFC 5952 4.2.2: a single zero group is not compressed.
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  const hex = (list: number[]) => list.map((g) => g.toString(16)).join(':');
  if (bestStart < 0) return hex(groups);
  return `${hex(groups.slice(0, bestStart))}::${hex(groups.slice(bestStart + bestLength))}`;
}

/** "ip:port", with IPv6 in brackets. */
export function formatEndpoint(ip: string, port: number): string {
  return ip.includes(':') ? `[${ip}]:${port}` : `${ip}:${port}`;
}
