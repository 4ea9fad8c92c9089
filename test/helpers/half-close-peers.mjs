#!/usr/bin/env node
// half-close-peers.mjs PORT COUNT INTERVAL_MS: a server that never closes what it accepts, and COUNT
// clients that connect, close at once and go, INTERVAL_MS apart, all on 127.0.0.1. Every connection ends
// in CLOSE_WAIT on the server side. Prints DONE when the last client has closed, then holds the sockets
// until killed (at most 30 s).
import net from 'node:net';

const [port, count, intervalMs] = process.argv.slice(2).map(Number);
setTimeout(() => process.exit(0), 30_000);
const held = [];
// allowHalfOpen: Node would otherwise end the socket itself when the client's FIN arrives.
const server = net.createServer({ allowHalfOpen: true }, (socket) => held.push(socket));
server.listen(port, '127.0.0.1', async () => {
  for (let i = 0; i < count; i++) {
    await new Promise((resolve, reject) => {
      const client = net.connect(port, '127.0.0.1', () => client.end(resolve));
      client.on('error', reject);
    });
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  process.stdout.write('DONE\n');
});
