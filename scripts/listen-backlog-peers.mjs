#!/usr/bin/env node
// listen-backlog-peers.mjs: the scenario behind fixtures/listen-backlog.pcap, played on loopback by
// scripts/make-diagnosis-probe.sh --scenario listen-backlog inside a private network namespace.
//
//   node scripts/listen-backlog-peers.mjs --meta META.json
//
// A listener on 127.0.0.1:20881 with backlog 1 that never calls accept() (a Python socket: Node
// always accepts), so its accept queue holds two connections and overflows. Eight clients from
// 127.0.0.2 connect 10 ms apart: the ones the kernel queued complete their handshake and, 300 ms
// later, send FIN: the queued, never-accepted server sockets go to CLOSE_WAIT. The others see their
// SYNs dropped or their handshake's last ACK dropped (SYN / SYN-ACK retransmissions) until they give
// up after 4.5 s. Same driver protocol as diagnosis-probe-peers.mjs (READY, SIGUSR2, DONE).

import net from 'node:net';
import fs from 'node:fs';
import { spawn } from 'node:child_process';
import { performance } from 'node:perf_hooks';

setTimeout(() => {
  process.stderr.write('listen-backlog-peers: hard time limit reached\n');
  process.exit(3);
}, 60_000).unref();

const args = process.argv.slice(2);
const metaPath = args[args.indexOf('--meta') + 1];
if (!args.includes('--meta') || !metaPath) {
  process.stderr.write('usage: listen-backlog-peers.mjs --meta FILE\n');
  process.exit(2);
}
const CLIENTS = 8;
const now = () => (performance.timeOrigin + performance.now()) / 1000;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
const keep = new Set();

const listener = spawn('python3', ['-c', [
  'import socket, time',
  's = socket.socket()',
  's.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)',
  "s.bind(('127.0.0.1', 20881))",
  's.listen(1)',
  "print('LISTENING', flush=True)",
  'time.sleep(120)',
].join('\n')], { stdio: ['ignore', 'pipe', 'inherit'] });
process.on('exit', () => listener.kill('SIGKILL'));
process.on('SIGTERM', () => process.exit(0));

function client(index) {
  return new Promise((resolve) => {
    const record = { index, localPort: 0, connectTime: now(), connected: false, finTime: null };
    const sock = net.connect({ host: '127.0.0.1', port: 20881, localAddress: '127.0.0.2' });
    keep.add(sock);
    sock.on('error', () => {});
    const giveUp = setTimeout(() => {
      if (!record.connected) sock.destroy();
      resolve(record);
    }, 4500);
    sock.once('connect', async () => {
      record.connected = true;
      record.localPort = sock.localPort;
      await sleep(300);
      record.finTime = now();
      sock.end();
      clearTimeout(giveUp);
      resolve(record);
    });
  });
}

async function main() {
  await new Promise((resolve, reject) => {
    listener.stdout.on('data', (d) => (String(d).includes('LISTENING') ? resolve() : null));
    listener.once('exit', () => reject(new Error('the python listener exited')));
  });
  const go = new Promise((resolve) => process.once('SIGUSR2', resolve));
  process.stdout.write('READY\n');
  await go;
  const start = now();
  const pending = [];
  for (let i = 0; i < CLIENTS; i++) {
    pending.push(client(i));
    await sleep(10);
  }
  const clients = await Promise.all(pending);
  await sleep(300);
  const meta = {
    scenario: 'listen-backlog',
    description:
      'A listener on 127.0.0.1:20881 with backlog 1 that never calls accept() (its accept queue holds two connections). Eight clients from 127.0.0.2 connect 10 ms apart: ' +
      'the queued ones complete the handshake and send FIN 300 ms later, so the never-accepted server sockets sit in CLOSE_WAIT; the others see SYNs dropped or the ' +
      "handshake's last ACK dropped (SYN and SYN-ACK retransmissions) and give up after 4.5 s.",
    servicePorts: [20881],
    connections: clients.length,
    notes: 'Packets cannot tell these never-accepted CLOSE_WAIT sockets from accepted-and-leaked ones; the listener\'s Recv-Q in ss (see "diagnosis.listener") can.',
    start,
    clients,
  };
  fs.writeFileSync(metaPath, `${JSON.stringify(meta, null, 2)}\n`);
  process.stdout.write('DONE\n');
}

main().catch((error) => {
  process.stderr.write(`listen-backlog-peers: ${error?.stack ?? error}\n`);
  process.stdout.write('FAILED\n');
  process.exit(1);
});
