import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync } from 'node:fs';
import { createConnection, createServer, type Socket } from 'node:net';
import { dirname, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { exchangeCount, requestBytes, responseBytes, thinkTime } from './generate.js';
import { Random } from './random.js';
import { measureShape, type Shape } from './shape.js';

/**
 * A real-kernel capture of the generator's application traffic, to check its TCP shape against: Linux
 * sockets on the loopback of a private network namespace (MTU 1500, segmentation offloads off, so
 * frames are what an Ethernet NIC would carry), the same request/response sizes, exchanges and
 * pauses as the generator draws, recorded by tcpdump. Needs root, unshare, ip, tcpdump.
 */
const SERVICE_PORT = 20880;
const HEADER_BYTES = 9;
const FLAG_SERVER_CLOSES = 1;
/** Pauses are cut to this so the run takes seconds, not an hour; the delayed-ACK and quick-ACK thresholds (40, 200 ms) stay inside. */
const MAX_THINK_MICROS = 1_500_000;
const CONCURRENCY = 150;
const RUN_TIMEOUT_MS = 180_000;

export interface RealCaptureOptions {
  out: string;
  connections: number;
  seed: number;
}

/** Plays the traffic in a fresh namespace and returns the capture's shape. */
export async function captureReal(options: RealCaptureOptions): Promise<Shape> {
  mkdirSync(dirname(resolve(options.out)), { recursive: true });
  rmSync(options.out, { force: true });
  const self = fileURLToPath(import.meta.url);
  const out = resolve(options.out);
  const log = `${out}.tcpdump.log`;
  const script = [
    'set -e',
    'ip link set lo up',
    'ip link set lo mtu 1500',
    // Without this the kernel hands tcpdump 64 KB super-segments on lo; a NIC's wire never carries those.
    'ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true',
    `tcpdump -i lo -U -s 262144 -w ${shellQuote(out)} 'tcp port ${SERVICE_PORT}' 2> ${shellQuote(log)} &`,
    'dump=$!',
    `for i in $(seq 1 100); do grep -q listening ${shellQuote(log)} && break; sleep 0.05; done`,
    `${shellQuote(process.execPath)} ${shellQuote(self)} --peers --connections ${options.connections} --seed ${options.seed}`,
    'sleep 0.5',
    'kill -INT $dump',
    'wait $dump || true',
  ].join('\n');
  await new Promise<void>((resolvePromise, reject) => {
    const child = spawn('unshare', ['-n', 'bash', '-c', script], { stdio: ['ignore', 'inherit', 'inherit'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_TIMEOUT_MS);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolvePromise();
      else reject(new Error(`real capture failed (${signal ?? `exit ${code}`}); tcpdump said: ${existsSync(log) ? readFileSync(log, 'utf8').trim() : 'nothing'}`));
    });
  });
  const dropped = /(\d+) packets dropped by kernel/.exec(readFileSync(log, 'utf8'));
  if (dropped && Number(dropped[1]) > 0) throw new Error(`tcpdump dropped ${dropped[1]} packets: the comparison would be skewed`);
  return measureShape(out);
}

/** Inside the namespace: one server, clients playing the generator's exchanges. */
async function playPeers(connections: number, seed: number): Promise<void> {
  const server = createServer((socket) => serve(socket));
  await new Promise<void>((done) => server.listen(SERVICE_PORT, '127.0.0.1', done));
  const random = new Random(seed);
  let started = 0;
  const worker = async () => {
    while (started < connections) {
      started++;
      await playConnection(random);
    }
  };
  await Promise.all(Array.from({ length: Math.min(CONCURRENCY, connections) }, worker));
  await new Promise<void>((done) => server.close(() => done()));
}

function serve(socket: Socket): void {
  socket.setNoDelay(true);
  let pending: Buffer = Buffer.alloc(0);
  let requestLeft = -1;
  let response = 0;
  let closeAfter = false;
  socket.on('data', (chunk: Buffer) => {
    pending = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    for (;;) {
      if (requestLeft < 0) {
        if (pending.length < HEADER_BYTES) return;
        requestLeft = pending.readUInt32BE(0);
        response = pending.readUInt32BE(4);
        closeAfter = (pending[8]! & FLAG_SERVER_CLOSES) !== 0;
      }
      if (pending.length < requestLeft) return;
      pending = pending.subarray(requestLeft);
      requestLeft = -1;
      socket.write(Buffer.alloc(response, 0x61));
      if (closeAfter) socket.end();
    }
  });
  socket.on('end', () => socket.end());
  socket.on('error', () => socket.destroy());
}

async function playConnection(random: Random): Promise<void> {
  const exchanges = exchangeCount(random);
  const serverCloses = random.chance(0.3);
  const socket = createConnection({ host: '127.0.0.1', port: SERVICE_PORT, localAddress: '127.0.0.2' });
  socket.setNoDelay(true);
  await new Promise<void>((done, fail) => {
    socket.once('connect', () => done());
    socket.once('error', fail);
  });
  let received = 0;
  let waiting: { bytes: number; done: () => void } | null = null;
  socket.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (waiting && received >= waiting.bytes) {
      const { done } = waiting;
      waiting = null;
      done();
    }
  });
  const ended = new Promise<void>((done) => socket.once('close', () => done()));
  for (let i = 0; i < exchanges; i++) {
    const request = Math.max(HEADER_BYTES, requestBytes(random));
    const response = responseBytes(random, false);
    const last = i === exchanges - 1;
    const header = Buffer.alloc(request, 0x62);
    header.writeUInt32BE(request, 0);
    header.writeUInt32BE(response, 4);
    header[8] = last && serverCloses ? FLAG_SERVER_CLOSES : 0;
    received = 0;
    const answered = new Promise<void>((done) => {
      waiting = { bytes: response, done };
    });
    socket.write(header);
    await answered;
    const pause = Math.min(MAX_THINK_MICROS, last && random.chance(0.5) ? random.between(50, 2_000) : thinkTime(random));
    await new Promise((done) => setTimeout(done, pause / 1000));
  }
  if (!serverCloses) socket.end();
  else socket.on('end', () => socket.end());
  await ended;
}

function shellQuote(text: string): string {
  return `'${text.replaceAll("'", "'\\''")}'`;
}

async function main(argv: string[]): Promise<void> {
  const value = (name: string, fallback: string) => {
    const at = argv.indexOf(name);
    return at >= 0 && argv[at + 1] !== undefined ? argv[at + 1]! : fallback;
  };
  const connections = Number(value('--connections', '1500'));
  const seed = Number(value('--seed', '1'));
  if (argv.includes('--peers')) {
    await playPeers(connections, seed);
    return;
  }
  const out = value('--out', 'bench-out/real-loopback.pcap');
  const shape = await captureReal({ out, connections, seed });
  process.stdout.write(`${JSON.stringify(shape, null, 2)}\n`);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).catch((error: unknown) => {
    process.stderr.write(`real-capture: ${(error as Error).message}\n`);
    process.exitCode = 1;
  });
}
