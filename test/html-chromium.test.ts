import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import { analyze } from '../src/analyze/run.js';
import { renderHtml } from '../src/report/html.js';
import { decodePng } from './helpers/png.js';

/**
 * The HTML report in a real browser: Debian's headless Chromium (never a downloaded one) loads it
 * from a file, with the report's own Content-Security-Policy forbidding anything external, and must
 * log nothing to the console and draw the timeline chart.
 */
const run = promisify(execFile);
const CHROMIUM = ['/usr/bin/chromium', '/usr/bin/chromium-browser'].find((path) => existsSync(path));
const scratch = mkdtempSync(join(tmpdir(), 'closewait-html-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

async function chromium(args: string[]): Promise<{ stdout: string; stderr: string }> {
  const profile = mkdtempSync(join(scratch, 'profile-'));
  return run(
    CHROMIUM!,
    ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run',
      '--hide-scrollbars', `--user-data-dir=${profile}`, '--enable-logging=stderr', '--v=0', ...args],
    { timeout: 60_000, maxBuffer: 32 * 1024 * 1024 },
  );
}

/** Console messages (errors, CSP violations, failed loads) as Chromium logs them with --enable-logging. */
const consoleLines = (stderr: string) => stderr.split('\n').filter((line) => /:CONSOLE[:(]/.test(line));

/** Pixels within a small distance of an RGB colour. */
function countColour(png: Buffer, [r, g, b]: [number, number, number]): number {
  const image = decodePng(png);
  let n = 0;
  for (let i = 0; i < image.pixels.length; i += 4) {
    if (Math.abs(image.pixels[i]! - r) + Math.abs(image.pixels[i + 1]! - g) + Math.abs(image.pixels[i + 2]! - b) < 20) n++;
  }
  return n;
}

if (!CHROMIUM) {
  console.warn('html-chromium.test.ts: SKIPPED: no chromium at /usr/bin/chromium (apt-get install chromium) — the HTML report was not checked in a browser');
}

describe.skipIf(!CHROMIUM)('the HTML report in headless Chromium', async () => {
  const report = await analyze(['fixtures/incident.pcap'], { command: 'closewait analyze --format html fixtures/incident.pcap' });
  const file = join(scratch, 'incident.html');
  writeFileSync(file, renderHtml(report));

  it('renders without a console message and shows the chart', async () => {
    const { stdout, stderr } = await chromium(['--dump-dom', `file://${file}`]);
    expect(consoleLines(stderr)).toEqual([]);
    expect(stdout).toContain('<svg class="chart"');
    expect(stdout).toMatch(/<path class="series" data-server="127\.0\.0\.1:20880" d="M[\d.,LM ]+"/);
    expect(stdout).toContain('26 connections stuck in CLOSE_WAIT on 127.0.0.1:20880');
  });

  it('the console check itself catches a page that loads something external or logs an error', async () => {
    const broken = join(scratch, 'broken.html');
    writeFileSync(broken, renderHtml(report).replace('</main>', '<img src="http://192.0.2.1/x.png"></main>'));
    const { stderr } = await chromium(['--dump-dom', `file://${broken}`]);
    expect(consoleLines(stderr).join('\n')).toMatch(/Content Security Policy/);
  });

  it.each([
    ['desktop', '1100,1400', 300],
    ['phone', '390,2000', 80],
  ])('draws the timeline line in a %s screenshot', async (_name, size, least) => {
    const png = join(scratch, `shot-${size.replace(',', 'x')}.png`);
    await chromium([`--window-size=${size}`, `--screenshot=${png}`, `file://${file}`]);
    // The chart's first series is drawn in #c62828; the page uses that red nowhere else that large.
    expect(countColour(readFileSync(png), [0xc6, 0x28, 0x28])).toBeGreaterThan(least);
  });

  it('and the same screenshot without the chart has no such line (the pixel check can fail)', async () => {
    const chartless = join(scratch, 'chartless.html');
    writeFileSync(chartless, renderHtml(report).replace(/<figure>[\s\S]*?<\/figure>/, ''));
    const png = join(scratch, 'chartless.png');
    await chromium(['--window-size=1100,1400', `--screenshot=${png}`, `file://${chartless}`]);
    expect(countColour(readFileSync(png), [0xc6, 0x28, 0x28])).toBeLessThan(50);
  });
});
