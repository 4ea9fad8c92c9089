#!/usr/bin/env bash
# make-scale-capture.sh: a ~1 GB real-kernel capture (about 114k connections, 2.4 M packets) with the
# kernel's own list of CLOSE_WAIT sockets, and closewait's report checked against it.
#
#   sudo bash scripts/make-scale-capture.sh [--out DIR] [--name NAME] [--connections N] [--seconds S]
#        [--seed N] [--cli PATH] [--no-analyze] [--measure]
#
# Defaults: --out bench-out/scale, --connections 113905, --seconds 200, --seed 1, --name scale-N-sSEED,
# --cli dist/cli/main.js (build first: npm run build). A small trial: --connections 5000 --seconds 15.
#
# Inside a fresh network namespace (unshare -n; it dies with its last process) with only lo up, MTU
# 1500 and segmentation offloads off (frames are what an Ethernet NIC would carry), the peers
# (scripts/scale-peers.mjs: servers on 127.0.0.1:20880 and :8080, clients from 127.0.1.x / 127.0.2.x)
# get ready, tcpdump starts (-U -s 262144 -B 131072, filter on the two ports) and we wait until it says
# it is listening, the peers play every connection, `ss -tan` is taken just BEFORE tcpdump is stopped
# (SIGINT, by PID), then the peers get SIGTERM. The run fails if tcpdump reports dropped packets.
# Then scripts/scale-truth.mjs writes NAME.truth.json (ss's CLOSE-WAIT set, plus an independent look at
# the wire) and, unless --no-analyze, closewait analyzes the capture (peak RSS with /usr/bin/time) and
# NAME.compare.json says whether closewait agrees with the kernel. --measure adds wall times: closewait
# and `tcpdump -r FILE -w /dev/null`, the minimum of 3 runs each, page cache warm, and the same for a
# gzip -6 copy (NAME.pcap.gz, its report checked against the kernel too: NAME.gz.compare.json).
#
# Outputs in DIR: NAME.pcap, NAME.ss.txt, NAME.meta.json and NAME.conns.tsv (the peers' bookkeeping),
# NAME.tcpdump.log, NAME.sysctl.txt, NAME.truth.json, NAME.report.json, NAME.compare.json,
# NAME.timings.json. They are large and are never committed (bench-out/ is gitignored).
#
# Needs: root, bash, node >= 20, tcpdump, unshare (util-linux), ip and ss (iproute2), ethtool,
# GNU time (/usr/bin/time) for the RSS.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
FILTER='tcp port 20880 or tcp port 8080'

log() { printf '[make-scale-capture] %s\n' "$*" >&2; }
die() { printf '[make-scale-capture] ERROR: %s\n' "$*" >&2; exit 1; }

# wait_for FILE REGEX TIMEOUT_S [PID]: poll until FILE has a line matching REGEX.
wait_for() {
  local file=$1 re=$2 timeout=$3 pid=${4:-} deadline
  deadline=$((SECONDS + timeout))
  while ! grep -qE "$re" "$file" 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      grep -qE "$re" "$file" 2>/dev/null && return 0
      return 2
    fi
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.1
  done
}

# stop_pid PID SIGNAL TIMEOUT_S: signal a process we started, wait for it (bounded), KILL if needed.
stop_pid() {
  local pid=$1 sig=$2 timeout=$3 i
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 10; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIG$sig for ${timeout}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------------------
# inner: runs inside `unshare -n`. Args: PREFIX CONNECTIONS SECONDS SEED
npid=""
tpid=""
cleanup_inner() {
  if [ -n "$tpid" ] && kill -0 "$tpid" 2>/dev/null; then stop_pid "$tpid" INT 10; fi
  if [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then stop_pid "$npid" TERM 10; fi
  return 0
}
inner() {
  local prefix=$1 connections=$2 seconds=$3 seed=$4
  trap cleanup_inner EXIT
  trap 'exit 143' TERM INT

  ip link set lo up
  ip link set lo mtu 1500
  # without this the kernel hands tcpdump 64 KB super-segments on lo; a NIC's wire never carries those
  ethtool -K lo tso off gso off gro off >/dev/null 2>&1 || die "ethtool -K lo tso off gso off gro off failed"
  ulimit -n "$(ulimit -Hn)"
  {
    echo "uname: $(uname -r)"
    echo "nofile: $(ulimit -n)"
    sysctl net.ipv4.ip_local_port_range net.ipv4.tcp_fin_timeout net.ipv4.tcp_tw_reuse net.ipv4.tcp_max_tw_buckets \
      net.core.somaxconn net.ipv4.tcp_max_syn_backlog net.ipv4.tcp_syncookies net.ipv4.tcp_timestamps
    ip link show lo | head -1
    ethtool -k lo | grep -E '^(tcp-segmentation-offload|generic-segmentation-offload|generic-receive-offload):'
  } >"$prefix.sysctl.txt" 2>&1

  node "$SCRIPT_DIR/scale-peers.mjs" --meta "$prefix.meta.json" --conns "$prefix.conns.tsv" \
    --connections "$connections" --seconds "$seconds" --seed "$seed" >"$prefix.peers.out" 2>"$prefix.peers.err" &
  npid=$!
  wait_for "$prefix.peers.out" '^READY$' 30 "$npid" || { cat "$prefix.peers.err" >&2; die "peers did not get ready"; }

  tcpdump -i lo -Z root -U -n -s 262144 -B 131072 -w "$prefix.pcap" "$FILTER" 2>"$prefix.tcpdump.log" &
  tpid=$!
  wait_for "$prefix.tcpdump.log" 'listening on' 20 "$tpid" || { cat "$prefix.tcpdump.log" >&2; die "tcpdump did not start"; }
  kill -USR2 "$npid"

  local rc=0
  wait_for "$prefix.peers.out" '^(DONE|FAILED)$' $((seconds * 3 + 150)) "$npid" || rc=$?
  if [ "$rc" != 0 ] || grep -q '^FAILED$' "$prefix.peers.out"; then
    cat "$prefix.peers.err" >&2
    die "the peers failed (rc=$rc)"
  fi
  # the kernel's view, just before the capture stops
  ss -tan >"$prefix.ss.txt"
  stop_pid "$tpid" INT 30
  tpid=""
  stop_pid "$npid" TERM 20
  npid=""
  cat "$prefix.peers.err" >&2
  grep -E 'packets (captured|received|dropped)' "$prefix.tcpdump.log" >&2 || true
  local dropped
  dropped=$(sed -nE 's/^([0-9]+) packets dropped by kernel.*/\1/p' "$prefix.tcpdump.log")
  [ "${dropped:-0}" = 0 ] || die "tcpdump reports $dropped packets dropped by the kernel"
}

if [ "${1:-}" = --inner ]; then
  shift
  inner "$@"
  exit 0
fi

# ------------------------------------------------------------------------------------------------
# outer

OUT="$REPO/bench-out/scale"
NAME=""
CONNECTIONS=113905
SECONDS_TARGET=200
SEED=1
CLI="$REPO/dist/cli/main.js"
ANALYZE=1
MEASURE=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --name) NAME=$2; shift 2 ;;
    --connections) CONNECTIONS=$2; shift 2 ;;
    --seconds) SECONDS_TARGET=$2; shift 2 ;;
    --seed) SEED=$2; shift 2 ;;
    --cli) CLI=$2; shift 2 ;;
    --no-analyze) ANALYZE=0; shift ;;
    --measure) MEASURE=1; shift ;;
    -h | --help) sed -n '2,30p' "$SELF" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done
[[ "$CONNECTIONS" =~ ^[1-9][0-9]*$ ]] || die "--connections wants a positive integer"
[[ "$SECONDS_TARGET" =~ ^[1-9][0-9]*$ ]] || die "--seconds wants a positive integer"
[[ "$SEED" =~ ^[1-9][0-9]*$ ]] || die "--seed wants a positive integer"
[ "$(id -u)" = 0 ] || die "needs root (network namespace, tcpdump)"
for tool in node tcpdump unshare ip ss ethtool timeout; do
  command -v "$tool" >/dev/null 2>&1 || die "$tool is not installed"
done
[ -n "$NAME" ] || NAME="scale-$CONNECTIONS-s$SEED"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
PREFIX="$OUT/$NAME"
rm -f "$PREFIX".{pcap,pcap.gz,ss.txt,meta.json,conns.tsv,peers.out,peers.err,tcpdump.log,sysctl.txt,truth.json,report.json,gz.report.json,compare.json,gz.compare.json,timings.json,rss.txt}

log "playing $CONNECTIONS connections over ~${SECONDS_TARGET} s (seed $SEED) into $PREFIX.pcap"
started=$SECONDS
timeout -k 10 $((SECONDS_TARGET * 3 + 300)) unshare -n -- bash "$SELF" --inner "$PREFIX" "$CONNECTIONS" "$SECONDS_TARGET" "$SEED" \
  || die "the capture run failed"
log "capture done in $((SECONDS - started)) s: $(stat -c %s "$PREFIX.pcap") bytes"

node "$SCRIPT_DIR/scale-truth.mjs" --meta "$PREFIX.meta.json" --ss "$PREFIX.ss.txt" --capture "$PREFIX.pcap" --out "$PREFIX.truth.json"

[ "$ANALYZE" = 1 ] || exit 0
[ -f "$CLI" ] || die "$CLI does not exist: build first (npm run build) or pass --cli"
TIME_BIN=/usr/bin/time
[ -x "$TIME_BIN" ] || die "/usr/bin/time (GNU time) is needed for the peak RSS"
log "closewait: $CLI analyze --format json $PREFIX.pcap"
"$TIME_BIN" -f '%e %M' -o "$PREFIX.rss.txt" node "$CLI" analyze --format json "$PREFIX.pcap" >"$PREFIX.report.json"
read -r first_wall peak_kb <"$PREFIX.rss.txt"
log "closewait took ${first_wall} s, peak RSS ${peak_kb} KB"
compare_rc=0
node "$SCRIPT_DIR/scale-truth.mjs" --meta "$PREFIX.meta.json" --ss "$PREFIX.ss.txt" --capture "$PREFIX.pcap" --out "$PREFIX.truth.json" \
  --report "$PREFIX.report.json" --compare-out "$PREFIX.compare.json" || compare_rc=$?

if [ "$MEASURE" = 1 ]; then
  # min of 3 wall times each, after one warm-up read so the file is in the page cache
  cat "$PREFIX.pcap" >/dev/null
  min_wall() {
    local best="" i t
    for i in 1 2 3; do
      "$TIME_BIN" -f '%e %M' -o "$PREFIX.rss.txt" "$@" >/dev/null 2>&1
      read -r t _ <"$PREFIX.rss.txt"
      if [ -z "$best" ] || awk -v a="$t" -v b="$best" 'BEGIN { exit !(a < b) }'; then best=$t; fi
    done
    echo "$best"
  }
  cw=$(min_wall node "$CLI" analyze --format json "$PREFIX.pcap")
  td=$(min_wall tcpdump -r "$PREFIX.pcap" -w /dev/null)
  # The same capture gzip'd as logrotate would (-6): the report must be the same, and the time is compared
  # with the uncompressed run's.
  log "gzip -6 of the capture, for the gzip'd run"
  gzip -6 -c "$PREFIX.pcap" >"$PREFIX.pcap.gz"
  cat "$PREFIX.pcap.gz" >/dev/null
  "$TIME_BIN" -f '%e %M' -o "$PREFIX.rss.txt" node "$CLI" analyze --format json "$PREFIX.pcap.gz" >"$PREFIX.gz.report.json"
  read -r _ gz_peak_kb <"$PREFIX.rss.txt"
  node "$SCRIPT_DIR/scale-truth.mjs" --meta "$PREFIX.meta.json" --ss "$PREFIX.ss.txt" --capture "$PREFIX.pcap" --out "$PREFIX.truth.json" \
    --report "$PREFIX.gz.report.json" --compare-out "$PREFIX.gz.compare.json" || compare_rc=$?
  gz=$(min_wall node "$CLI" analyze --format json "$PREFIX.pcap.gz")
  printf '{ "closewaitSeconds": %s, "tcpdumpReadSeconds": %s, "closewaitPeakRssKB": %s, "gzipBytes": %s, "closewaitGzipSeconds": %s, "closewaitGzipPeakRssKB": %s, "runs": 3, "what": "min wall time of 3 runs, page cache warm; gzip -6 copy" }\n' \
    "$cw" "$td" "$peak_kb" "$(stat -c %s "$PREFIX.pcap.gz")" "$gz" "$gz_peak_kb" >"$PREFIX.timings.json"
  log "timings: closewait ${cw} s, tcpdump -r ${td} s, closewait on the .gz ${gz} s (min of 3); peak RSS ${peak_kb} KB, ${gz_peak_kb} KB on the .gz"
fi
rm -f "$PREFIX.rss.txt"
exit "$compare_rc"
