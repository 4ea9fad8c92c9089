import { describe, expect, it } from 'vitest';
import { missingRotations } from './continuity.js';

describe('missingRotations', () => {
  it('takes gzip\'d members of a tcpdump -C set for the files they were', () => {
    expect(missingRotations(['a/dump', 'a/dump1', 'a/dump2.gz', 'a/dump3', 'a/dump4.GZ', 'a/dump10.gz', 'a/dump5', 'a/dump6', 'a/dump7', 'a/dump8.gz', 'a/dump9'])).toEqual([]);
    expect(missingRotations(['x/cap.pcap.gz', 'x/cap.pcap1.gz', 'x/cap.pcap2'])).toEqual([]);
  });

  it('names a missing member whatever the others are compressed with', () => {
    expect(missingRotations(['dump', 'dump1.gz', 'dump3.gz', 'dump4'])).toEqual(['rotated set dump* lacks dump2']);
    expect(missingRotations(['cap.pcap1.gz', 'cap.pcap3'])).toEqual(['rotated set cap.pcap* lacks cap.pcap2']);
    expect(missingRotations(['cap.pcap1', 'cap.pcap2.gz'])).toEqual([]);
  });

  it('the first file, without a number, counts as number 0', () => {
    expect(missingRotations(['dump.gz', 'dump2'])).toEqual(['rotated set dump* lacks dump1']);
    expect(missingRotations(['dump1', 'dump2', 'dump3'])).toEqual([]);
  });

  it('leaves time-stamped (-G) names and unrelated files alone', () => {
    expect(missingRotations(['trace-20261126120000.pcap', 'trace-20261126130000.pcap'])).toEqual([]);
    expect(missingRotations(['dump-1700000000', 'dump-1700003600.gz'])).toEqual([]);
    expect(missingRotations(['a.pcap', 'b.pcap.gz', 'c.pcapng'])).toEqual([]);
  });

  it('lists at most ten missing numbers', () => {
    expect(missingRotations(['d', 'd40'])[0]).toBe('rotated set d* lacks d1, d2, d3, d4, d5, d6, d7, d8, d9, d10');
  });
});
