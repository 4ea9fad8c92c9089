import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ProgressLine } from './progress.js';

class Terminal extends Writable {
  text = '';
  constructor(readonly columns: number) {
    super();
  }
  override _write(chunk: Buffer, _encoding: string, callback: () => void): void {
    this.text += chunk.toString();
    callback();
  }
  /** What the terminal shows now: the text after the last carriage return and erase-line. */
  get shown(): string {
    const lines = this.text.split('\r\u001b[K');
    return lines[lines.length - 1]!;
  }
}

/** A progress line on a terminal of this width, with a clock the test moves. */
function setup(columns: number, totalBytes: number) {
  const terminal = new Terminal(columns);
  let now = 1_000_000;
  const line = new ProgressLine(terminal, totalBytes, () => now);
  return { terminal, line, advance: (ms: number) => (now += ms) };
}

describe('ProgressLine', () => {
  it('draws nothing in the first 200 ms, then bytes of the total, packets/s, time left and the file', () => {
    const { terminal, line, advance } = setup(200, 1e9);
    advance(100);
    line.update({ input: 0, path: 'a.pcap', bytesRead: 50e6, packets: 100_000 });
    expect(terminal.text).toBe('');
    advance(900);
    line.update({ input: 0, path: 'a.pcap', bytesRead: 250e6, packets: 500_000 });
    expect(terminal.shown).toBe('[#####---------------]  25% · 250.0 MB of 1.00 GB · 0.50 M pkt/s · 3 s left · a.pcap');
  });

  it('redraws at most every 200 ms', () => {
    const { terminal, line, advance } = setup(200, 1e9);
    for (let i = 1; i <= 100; i++) {
      advance(10);
      line.update({ input: 0, path: 'a.pcap', bytesRead: i * 1e6, packets: i * 1000 });
    }
    expect(terminal.text.split('\r').length - 1).toBe(5);
  });

  it('counts bytes per input and packets per job: one capture read input after input is one job', () => {
    const { terminal, line, advance } = setup(200, 400e6);
    line.update({ input: 0, path: 'dump.pcap', bytesRead: 100e6, packets: 200_000 });
    advance(1000);
    line.update({ input: 1, path: 'dump.pcap1', bytesRead: 100e6, packets: 400_000 });
    expect(terminal.shown).toBe('[##########----------]  50% · 200.0 MB of 400.0 MB · 0.40 M pkt/s · 1 s left · dump.pcap1');
  });

  it('--separate: jobs at once are summed, and the line says how many other files are being read', () => {
    const { terminal, line, advance } = setup(200, 4e9);
    line.update({ input: 0, path: 'a.pcap', bytesRead: 1e9, packets: 2e6 }, 0);
    advance(2000);
    line.update({ input: 1, path: 'b.pcap', bytesRead: 1e9, packets: 2e6 }, 1);
    expect(terminal.shown).toBe('[##########----------]  50% · 2.00 GB of 4.00 GB · 2.00 M pkt/s · 2 s left · b.pcap (+1 more)');
    line.jobDone(0);
    advance(1000);
    line.update({ input: 1, path: 'b.pcap', bytesRead: 2e9, packets: 4e6 }, 1);
    expect(terminal.shown).toBe('[###############-----]  75% · 3.00 GB of 4.00 GB · 2.00 M pkt/s · 1 s left · b.pcap');
  });

  it('a pipe has no size: no bar and no time left, what was read and for how long', () => {
    const { terminal, line, advance } = setup(200, 0);
    advance(90_500);
    line.update({ input: 0, path: '<stdin>', bytesRead: 12.5e6, packets: 9_050 });
    expect(terminal.shown).toBe('12.5 MB · 0.00 M pkt/s · 1 min 31 s · <stdin>');
  });

  it('never wider than the terminal (a wrapped line could not be overwritten): the bar goes first, then the path\'s start', () => {
    const path = '/var/captures/2026/11/26/service-20880/dump-2026-11-26T03:00:00.pcap.gz';
    for (const columns of [160, 100, 80, 60, 40, 20]) {
      const { terminal, line, advance } = setup(columns, 1e9);
      advance(1000);
      line.update({ input: 0, path, bytesRead: 5e8, packets: 1e6 });
      expect(terminal.shown.length).toBeLessThanOrEqual(columns - 1);
      if (columns >= 100) expect(terminal.shown).toContain('dump-2026-11-26T03:00:00.pcap.gz');
      if (columns >= 80) expect(terminal.shown).toMatch(/03:00:00\.pcap\.gz$/);
      if (columns === 160) expect(terminal.shown).toContain(`[##########----------]  50%`);
      if (columns === 80) expect(terminal.shown).toMatch(/^ 50% · .*…/);
    }
  });

  it('a terminal that gives no width (a pty without a size) counts as 80 columns', () => {
    const { terminal, line, advance } = setup(0, 1e9);
    advance(1000);
    line.update({ input: 0, path: 'a.pcap', bytesRead: 5e8, packets: 1e6 });
    expect(terminal.shown).toMatch(/50% .* a\.pcap$/);
    expect(terminal.shown.length).toBeLessThanOrEqual(79);
  });

  it('finish erases the line it drew, and writes nothing when it drew none', () => {
    const quiet = new Terminal(100);
    new ProgressLine(quiet, 1e9).finish();
    expect(quiet.text).toBe('');
    const { terminal, line, advance } = setup(100, 1e9);
    advance(1000);
    line.update({ input: 0, path: 'a.pcap', bytesRead: 5e8, packets: 1e6 });
    line.finish();
    expect(terminal.shown).toBe('');
  });
});
