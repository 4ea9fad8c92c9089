#!/usr/bin/env node
// diagnosis-probe-truth.mjs META.json SS.txt: prints the "diagnosis" truth of the diagnosis-probe
// fixture as JSON ({"diagnosis": {...}}, for fixture-truth.mjs --extra), computed from the peers'
// bookkeeping (scripts/diagnosis-probe-peers.mjs) and cross-checked against `ss -tan`: every forgotten
// socket must be in CLOSE-WAIT, the never-read ones with the request bytes + FIN still queued
// (Recv-Q), the answered ones with nothing queued. Exits 1 when they disagree.
import fs from 'node:fs';

const [metaPath, ssPath] = process.argv.slice(2);
const meta = JSON.parse(fs.readFileSync(metaPath, 'utf8'));
const ss = fs.readFileSync(ssPath, 'utf8').split('\n').map((l) => l.trim().split(/\s+/)).filter((f) => f[0] === 'CLOSE-WAIT');
const rfc3339 = (epoch) => new Date(Math.floor(epoch * 1000)).toISOString().slice(0, 19) + '.' + String(Math.round((epoch % 1) * 1e6)).padStart(6, '0').slice(0, 6) + 'Z';
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
const problems = [];

if (meta.scenario === 'listen-backlog') {
  // The listener's Recv-Q is its accept queue: connections the kernel completed and nobody accepted.
  const rows = fs.readFileSync(ssPath, 'utf8').split('\n').map((l) => l.trim().split(/\s+/));
  const listen = rows.find((f) => f[0] === 'LISTEN' && f[3] === '127.0.0.1:20881');
  if (!listen) problems.push('no LISTEN row for 127.0.0.1:20881 in ss');
  const queuedCloseWait = ss.filter((f) => f[3] === '127.0.0.1:20881').length;
  const connected = meta.clients.filter((c) => c.connected).length;
  if (listen && Number(listen[1]) < queuedCloseWait) problems.push(`listener Recv-Q ${listen[1]} is below the ${queuedCloseWait} CLOSE-WAIT sockets never accepted`);
  if (queuedCloseWait === 0) problems.push('no queued socket reached CLOSE-WAIT: the scenario did not fill the accept queue');
  if (connected === meta.clients.length) problems.push('every client connected: the accept queue never overflowed');
  if (problems.length) {
    for (const p of problems) console.error(`diagnosis-probe-truth: ${p}`);
    process.exit(1);
  }
  process.stdout.write(JSON.stringify({
    diagnosis: {
      server: '127.0.0.1:20881',
      listener: { recvQ: Number(listen[1]), backlog: Number(listen[2]) },
      queuedNeverAccepted: queuedCloseWait,
      clientsConnected: connected,
      clientsNeverConnected: meta.clients.length - connected,
      howMeasured: 'listener = the LISTEN row of ss -tan taken before the capture stopped (Recv-Q: connections in the accept queue, Send-Q: its backlog); queuedNeverAccepted = CLOSE-WAIT sockets on the listener\'s port (the program never called accept()); clients* from the clients\' own connect events.',
    },
  }));
  process.exit(0);
}

const family = (c) => (c.server === 'answer-then-keep' ? 'answered-not-closed' : c.bytesSent > 0 ? 'unanswered-request' : 'probe');
// A forgotten socket whose client port is used again later (the client's orphan FIN_WAIT_2 expired
// after tcp_fin_timeout) is hit by the new SYN: challenge ACK, client RST, the CLOSE_WAIT socket dies.
const reusedLater = (c) => meta.clients.some((o) => o !== c && o.localAddress === c.localAddress && o.localPort === c.localPort && o.connectTime > c.connectTime);
const allForgotten = meta.clients.filter((c) => c.server !== 'normal');
const forgotten = allForgotten.filter((c) => !reusedLater(c));
const killedByReuse = allForgotten.filter(reusedLater);
for (const c of forgotten) {
  const row = ss.find((f) => f[3] === '127.0.0.1:20880' && f[4] === `${c.localAddress}:${c.localPort}`);
  if (!row) { problems.push(`${c.localAddress}:${c.localPort} was forgotten but is not CLOSE-WAIT in ss`); continue; }
  const recvQ = Number(row[1]);
  const expected = family(c) === 'answered-not-closed' ? 0 : c.bytesSent + 1;
  if (recvQ !== expected) problems.push(`${c.localAddress}:${c.localPort}: Recv-Q ${recvQ}, expected ${expected} (${family(c)})`);
}
if (ss.length !== forgotten.length) problems.push(`ss lists ${ss.length} CLOSE-WAIT sockets, the scenario forgot ${forgotten.length}`);

const fins = allForgotten.map((c) => c.finTime).sort((a, b) => a - b);
const probes = meta.clients.filter((c) => c.localAddress === '127.0.0.2').sort((a, b) => a.connectTime - b.connectTime);
const gaps = probes.slice(1).map((c, i) => c.connectTime - probes[i].connectTime);
const count = (name) => forgotten.filter((c) => family(c) === name).length;
const bytes = (name) => forgotten.filter((c) => family(c) === name).reduce((sum, c) => sum + c.bytesSent, 0);
const diagnosis = {
  server: '127.0.0.1:20880',
  captureClockStart: meta.start,
  leakModeFrom: meta.leakStart,
  leakModeTo: meta.leakEnd,
  onsetTime: rfc3339(fins[0]),
  onsetEpoch: fins[0],
  leakWindow: [rfc3339(fins[0]), rfc3339(fins[fins.length - 1])],
  leakWindowEpoch: [fins[0], fins[fins.length - 1]],
  stuck: forgotten.length,
  stuckPerMinute: (allForgotten.length / (meta.leakEnd - meta.leakStart)) * 60,
  forgotten: allForgotten.length,
  reconnectsIntoCloseWait: killedByReuse.length,
  probe: {
    client: '127.0.0.2',
    plannedIntervalSeconds: meta.plan.probeMs / 1000,
    measuredMedianGapSeconds: median(gaps),
    connections: probes.length,
    stuck: count('probe'),
  },
  families: { probe: count('probe'), 'unanswered-request': count('unanswered-request'), 'answered-not-closed': count('answered-not-closed') },
  unansweredRequestClientBytes: bytes('unanswered-request'),
  answeredNotClosedClientBytes: bytes('answered-not-closed'),
  howMeasured: 'Forgotten sockets whose client port was used again later were killed by that SYN (challenge ACK, client RST): they count in forgotten and reconnectsIntoCloseWait, not in stuck or families. Times are the peers\' wall clock (performance.timeOrigin + now(), the clock tcpdump stamps with) at connect() and at end() (the client FIN); '
    + 'onset and leak window are the first and last client FIN of a forgotten socket; stuck per minute is the forgotten sockets over the leak mode\'s duration (leakModeFrom..leakModeTo).',
};
if (problems.length) {
  for (const p of problems) console.error(`diagnosis-probe-truth: ${p}`);
  process.exit(1);
}
process.stdout.write(JSON.stringify({ diagnosis }));
