#!/usr/bin/env node
// load-peers.mjs: many connections of mixed kinds on loopback, for scripts/load-check.sh (run inside
// the private network namespace it makes). Two services; each accepted socket gets a behaviour:
//   normal       answer the request, close after the client's FIN
//   close-first  answer, then close first (the client closes after)
//   reset        answer, then RST (SO_LINGER 0)
//   leak         never read, never close: after the client's FIN it sits in CLOSE_WAIT (server side)
// and each client connection is a probe (connect, FIN), a request (a line, an answer of 0.2-8 KB, FIN),
// or, for a few, a request whose client never closes after the server's FIN (client-side CLOSE_WAIT).
// Options: --connections N, --concurrency N, --answer-spread BYTES (answers are 200 + up to this), --deadline-ms.
// Clients come from many 127.x addresses so ephemeral ports and TIME_WAIT never run out.
// Prints READY, waits for SIGUSR2, plays, prints a JSON summary line and DONE, then waits for SIGTERM
// with every stuck socket still open.
import net from 'node:net';

const args = Object.fromEntries(process.argv.slice(2).map((a, i, all) => (a.startsWith('--') ? [a.slice(2), all[i + 1]] : null)).filter(Boolean));
const CONNECTIONS = Number(args.connections ?? 20000);
const CONCURRENCY = Number(args.concurrency ?? 200);
const DEADLINE_MS = Number(args['deadline-ms'] ?? 600_000);
/** Answers are 200 bytes to this many more. */
const ANSWER_SPREAD = Number(args['answer-spread'] ?? 8000);
const SERVICES = [{ host: '127.0.0.1', port: 20880 }, { host: '127.0.0.1', port: 8080 }];

const keep = new Set();
const counts = { attempted: 0, connected: 0, failed: 0, probes: 0, requests: 0, clientStuck: 0, serverLeaked: 0, serverReset: 0, serverClosedFirst: 0 };
// Deterministic choices: the same run plays the same mix.
let seed = 0x9e3779b9;
const random = () => ((seed = (Math.imul(seed ^ (seed >>> 15), 0x2c1b3c6d) + 0x6d2b79f5) >>> 0) / 2 ** 32);

function serverBehaviour() {
  const r = random();
  if (r < 0.025) return 'leak';
  if (r < 0.085) return 'reset';
  if (r < 0.185) return 'close-first';
  return 'normal';
}

function serve({ host, port }) {
  const server = net.createServer({ allowHalfOpen: true, pauseOnConnect: true }, (socket) => {
    keep.add(socket);
    socket.on('error', () => {});
    socket.on('close', () => keep.delete(socket));
    const mode = serverBehaviour();
    if (mode === 'leak') {
      counts.serverLeaked++;
      return;
    }
    let buffer = '';
    socket.on('data', (data) => {
      buffer += data.toString('latin1');
      const end = buffer.indexOf('\n');
      if (end < 0) return;
      const size = Number(/^REQ (\d+)/.exec(buffer.slice(0, end))?.[1] ?? 0);
      buffer = '';
      socket.write(Buffer.alloc(size, 0x61));
      if (mode === 'close-first') {
        counts.serverClosedFirst++;
        socket.end();
      } else if (mode === 'reset') {
        counts.serverReset++;
        setTimeout(() => socket.resetAndDestroy(), 5);
      }
    });
    socket.on('end', () => {
      if (!socket.writableEnded && !socket.destroyed) socket.end();
    });
    socket.resume();
  });
  return new Promise((resolve, reject) => {
    server.on('error', reject);
    server.listen({ host, port, backlog: 4096 }, () => resolve(server));
  });
}

function client(index) {
  counts.attempted++;
  const service = SERVICES[index % 7 === 3 ? 1 : 0];
  const localAddress = `127.${1 + ((index >> 16) & 63)}.${(index >> 8) & 255}.${1 + (index & 127)}`;
  const kind = random();
  return new Promise((resolve) => {
    const socket = net.connect({ ...service, localAddress, allowHalfOpen: true });
    keep.add(socket);
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      resolve();
    };
    socket.on('error', () => {
      if (!socket.remotePort) counts.failed++;
      done();
    });
    socket.on('close', () => {
      keep.delete(socket);
      done();
    });
    socket.setTimeout(3000, () => {
      // An answer that never comes (a leaking server): close our side and stop waiting.
      if (!socket.writableEnded) socket.end();
      setTimeout(() => {
        socket.destroy();
        done();
      }, 300);
    });
    socket.once('connect', () => {
      counts.connected++;
      if (kind < 0.3) {
        counts.probes++;
        socket.end();
        socket.resume();
        return;
      }
      counts.requests++;
      const stuck = kind > 0.995;
      const size = 200 + Math.floor(random() * ANSWER_SPREAD);
      socket.write(`REQ ${size}\n`);
      let got = 0;
      socket.on('data', (data) => {
        got += data.length;
        if (got >= size && !socket.writableEnded && !stuck) socket.end();
      });
      socket.on('end', () => {
        if (stuck) {
          // The server closed and this client never does: client-side CLOSE_WAIT, kept to the end.
          counts.clientStuck++;
          socket.setTimeout(0);
          done();
          return;
        }
        if (!socket.writableEnded) socket.end();
      });
    });
  });
}

const servers = await Promise.all(SERVICES.map(serve));
process.stdout.write('READY\n');
await new Promise((resolve) => process.once('SIGUSR2', resolve));
process.on('SIGTERM', () => process.exit(0));

const started = Date.now();
let next = 0;
let inFlight = 0;
await new Promise((resolve, reject) => {
  const pump = () => {
    if (Date.now() - started > DEADLINE_MS) return reject(new Error(`load-peers: not done after ${DEADLINE_MS} ms`));
    while (inFlight < CONCURRENCY && next < CONNECTIONS) {
      inFlight++;
      client(next++).then(() => {
        inFlight--;
        if (next === CONNECTIONS && inFlight === 0) resolve();
        else setImmediate(pump);
      });
    }
  };
  pump();
});
await new Promise((resolve) => setTimeout(resolve, 500)); // the last ACKs reach the wire
process.stdout.write(`${JSON.stringify({ ...counts, seconds: (Date.now() - started) / 1000 })}\nDONE\n`);
void servers;
setInterval(() => {}, 1 << 30); // stay, with every stuck socket open, until SIGTERM
