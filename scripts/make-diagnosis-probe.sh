#!/usr/bin/env bash
# make-diagnosis-probe.sh: record fixtures/diagnosis-probe.pcap (or listen-backlog.pcap) and its truth file.
#
#   sudo bash scripts/make-diagnosis-probe.sh [--scenario diagnosis-probe|listen-backlog] [--out DIR]
#        [--seconds 30] [--probe-ms 250] [--leak-from 10] [--leak-to 20]
#
# A private network namespace (unshare -n, only lo up); scripts/SCENARIO-peers.mjs plays the
# scenario while tcpdump records ports 20880 and 20881; `ss -tan` is taken just before tcpdump stops. The truth
# (scripts/fixture-truth.mjs for the CLOSE_WAIT set and connection count, plus a "diagnosis" object
# from scripts/diagnosis-probe-truth.mjs: onset, leak window, stuck per minute, probe interval, the
# split by family) comes from the peers' own bookkeeping, never from the analyzer.
# Needs root, node >= 20, tcpdump, unshare, ip, ss. Every wait is bounded.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
log() { printf '[make-diagnosis-probe] %s\n' "$*" >&2; }
die() { printf '[make-diagnosis-probe] ERROR: %s\n' "$*" >&2; exit 1; }

wait_for() { # FILE REGEX TIMEOUT_S PID
  local deadline=$((SECONDS + $3))
  while ! grep -qE "$2" "$1" 2>/dev/null; do
    kill -0 "$4" 2>/dev/null || { grep -qE "$2" "$1" 2>/dev/null && return 0; return 2; }
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}
stop_pid() { # PID SIGNAL TIMEOUT_S
  local i
  kill -"$2" "$1" 2>/dev/null || true
  for ((i = 0; i < $3 * 20; i++)); do kill -0 "$1" 2>/dev/null || break; sleep 0.05; done
  kill -0 "$1" 2>/dev/null && kill -KILL "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

if [ "${1:-}" = --inner ]; then
  work=$2; scenario=$3; shift 3
  npid=""; tpid=""
  trap '[ -n "$tpid" ] && stop_pid "$tpid" INT 5; [ -n "$npid" ] && stop_pid "$npid" TERM 5; true' EXIT
  ip link set lo up
  node "$SCRIPT_DIR/$scenario-peers.mjs" --meta "$work/meta.json" "$@" >"$work/peers.out" 2>"$work/peers.err" &
  npid=$!
  wait_for "$work/peers.out" '^READY$' 20 "$npid" || { cat "$work/peers.err" >&2; die "peers did not get ready"; }
  tcpdump -i lo -Z root -U --immediate-mode -B 65536 -n -w "$work/capture.pcap" 'tcp port 20880 or tcp port 20881' 2>"$work/tcpdump.err" &
  tpid=$!
  wait_for "$work/tcpdump.err" 'listening on' 10 "$tpid" || { cat "$work/tcpdump.err" >&2; die "tcpdump did not start"; }
  kill -USR2 "$npid"
  wait_for "$work/peers.out" '^(DONE|FAILED)$' 160 "$npid" || { cat "$work/peers.err" >&2; die "scenario did not finish"; }
  grep -q '^DONE$' "$work/peers.out" || { cat "$work/peers.err" >&2; die "scenario failed"; }
  ss -tan >"$work/ss.txt"
  stop_pid "$tpid" INT 10; tpid=""
  stop_pid "$npid" TERM 10; npid=""
  cat "$work/peers.err" >&2
  dropped=$(sed -nE 's/^([0-9]+) packets dropped by kernel.*/\1/p' "$work/tcpdump.err")
  [ "${dropped:-0}" = 0 ] || die "tcpdump dropped $dropped packets"
  exit 0
fi

OUT="$REPO/fixtures"
SCENARIO=diagnosis-probe
PASS=()
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --scenario) SCENARIO=$2; shift 2 ;;
    --seconds|--probe-ms|--leak-from|--leak-to) PASS+=("$1" "$2"); shift 2 ;;
    -h|--help) sed -n '2,13p' "$SELF"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done
[ "$(id -u)" = 0 ] || die "must run as root (network namespace, tcpdump)"
mkdir -p "$OUT"
work=$(mktemp -d "${TMPDIR:-/tmp}/closewait-diagnosis-probe.XXXXXX")
log "work dir $work"
case "$SCENARIO" in diagnosis-probe|listen-backlog) ;; *) die "unknown scenario $SCENARIO" ;; esac
timeout -k 5 200 unshare -n -- bash "$SELF" --inner "$work" "$SCENARIO" "${PASS[@]}" || die "capture failed (work dir kept: $work)"
cp "$work/capture.pcap" "$OUT/$SCENARIO.pcap"
cp "$work/ss.txt" "$OUT/$SCENARIO.ss.txt"
extra=$(node "$SCRIPT_DIR/diagnosis-probe-truth.mjs" "$work/meta.json" "$work/ss.txt")
node "$SCRIPT_DIR/fixture-truth.mjs" --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/$SCENARIO.truth.json" \
  --extra "$extra" "$OUT/$SCENARIO.pcap"
rm -rf "$work"
log "wrote $OUT/$SCENARIO.pcap ($(stat -c %s "$OUT/$SCENARIO.pcap") bytes) and its truth"
