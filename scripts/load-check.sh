#!/usr/bin/env bash
# load-check.sh: closewait against the kernel's own view on a large real-kernel capture.
#
#   sudo bash scripts/load-check.sh [--connections 20000] [--answer-spread 8000] [--out bench-out/load]
#
# In a fresh network namespace (unshare -n, loopback only, MTU 1500, offloads off so frames are
# NIC-sized): scripts/load-peers.mjs plays N connections of mixed kinds against two services (probes,
# requests with 0.2-8 KB answers, server-first closes, resets, ~2.5% leaked by the server, a few clients
# that never close), tcpdump records them, and `ss -tan` is taken just before tcpdump stops. Then
# closewait analyses the capture and its stuck connections are compared, 4-tuple by 4-tuple and side by
# side, with the sockets the kernel holds in CLOSE_WAIT; connections with the connects attempted.
# Exit 0 when they agree exactly. Every wait is bounded; only processes started here are signalled.
#
# Needs: root, node >= 20, tcpdump, unshare, ip and ss (iproute2); `npm run build` done.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
CONNECTIONS=20000
ANSWER_SPREAD=8000
OUT="$REPO/bench-out/load"
INNER=0
while [ $# -gt 0 ]; do
  case "$1" in
    --connections) CONNECTIONS=$2; shift 2 ;;
    --answer-spread) ANSWER_SPREAD=$2; shift 2 ;;
    --out) OUT=$2; shift 2 ;;
    --inner) INNER=1; shift ;;
    *) echo "usage: sudo bash scripts/load-check.sh [--connections N] [--answer-spread BYTES] [--out DIR]" >&2; exit 2 ;;
  esac
done
log() { printf '[load-check] %s\n' "$*" >&2; }

wait_for() { # FILE REGEX TIMEOUT_S
  local deadline=$((SECONDS + $3))
  until grep -qE "$2" "$1" 2>/dev/null; do
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

if [ "$INNER" = 1 ]; then
  ip link set lo up
  ip link set lo mtu 1500
  ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || true
  ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
  node "$SCRIPT_DIR/load-peers.mjs" --connections "$CONNECTIONS" --answer-spread "$ANSWER_SPREAD" >"$OUT/peers.out" 2>"$OUT/peers.err" &
  peers=$!
  wait_for "$OUT/peers.out" '^READY$' 30 || { cat "$OUT/peers.err" >&2; exit 1; }
  tcpdump -i lo -n -U -s 262144 -B 65536 -w "$OUT/capture.pcap" 'tcp port 20880 or tcp port 8080' 2>"$OUT/tcpdump.err" &
  dump=$!
  wait_for "$OUT/tcpdump.err" 'listening on' 10 || { cat "$OUT/tcpdump.err" >&2; exit 1; }
  kill -USR2 "$peers"
  wait_for "$OUT/peers.out" '^(DONE)$' 900 || { log "peers did not finish"; cat "$OUT/peers.err" >&2; kill -TERM "$peers" "$dump"; exit 1; }
  ss -tan >"$OUT/ss.txt"
  kill -INT "$dump"
  wait "$dump" || true
  kill -TERM "$peers"
  wait "$peers" || true
  exit 0
fi

[ "$(id -u)" = 0 ] || { echo "load-check: needs root (unshare -n)" >&2; exit 2; }
[ -f "$REPO/dist/cli/main.js" ] || { echo "load-check: run npm run build first" >&2; exit 2; }
mkdir -p "$OUT"
rm -f "$OUT"/capture.pcap "$OUT"/ss.txt "$OUT"/peers.out "$OUT"/report.json
log "playing $CONNECTIONS connections in a private namespace"
timeout -k 5 1000 unshare -n -- bash "$0" --inner --connections "$CONNECTIONS" --answer-spread "$ANSWER_SPREAD" --out "$OUT"
log "capture: $(stat -c %s "$OUT/capture.pcap") bytes; peers: $(grep '^{' "$OUT/peers.out")"

started=$(date +%s.%N)
node "$REPO/dist/cli/main.js" analyze --format json "$OUT/capture.pcap" >"$OUT/report.json"
log "closewait took $(echo "$(date +%s.%N) - $started" | bc) s"

node --input-type=module - "$OUT" <<'EOF'
import { readFileSync } from 'node:fs';
const out = process.argv[2];
const report = JSON.parse(readFileSync(`${out}/report.json`, 'utf8'));
const peers = JSON.parse(readFileSync(`${out}/peers.out`, 'utf8').split('\n').find((l) => l.startsWith('{')));
const services = new Set(['20880', '8080']);
// ss -tan: State Recv-Q Send-Q Local Peer. A CLOSE-WAIT socket on a service port is the server's.
const truth = new Set();
for (const line of readFileSync(`${out}/ss.txt`, 'utf8').split('\n')) {
  const f = line.trim().split(/\s+/);
  if (f[0] !== 'CLOSE-WAIT') continue;
  const [local, peer] = [f[3], f[4]];
  const localPort = local.slice(local.lastIndexOf(':') + 1);
  const serverSide = services.has(localPort);
  truth.add(serverSide ? `${local}>${peer} server` : `${peer}>${local} client`);
}
const found = new Set(report.findings.map((f) => `${f.server.ip}:${f.server.port}>${f.client.ip}:${f.client.port} ${f.stuckSide}`));
const missing = [...truth].filter((k) => !found.has(k));
const extra = [...found].filter((k) => !truth.has(k));
const s = report.summary;
console.log(JSON.stringify({ packets: s.packets, connections: s.connections, connectsAttempted: peers.attempted, closeWait: s.closeWait, serverSide: s.closeWaitServerSide, clientSide: s.closeWaitClientSide, ssCloseWait: truth.size, missing: missing.length, extra: extra.length, reset: s.reset }, null, 1));
if (missing.length || extra.length) console.log('missing', missing.slice(0, 5), 'extra', extra.slice(0, 5));
process.exitCode = missing.length || extra.length || s.connections !== peers.attempted ? 1 : 0;
EOF
