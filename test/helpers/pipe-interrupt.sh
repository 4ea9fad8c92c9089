#!/bin/bash
# pipe-interrupt.sh OUT SIGNAL CLI: run inside `unshare -n` (a private network namespace, loopback only).
# Plays `tcpdump -i lo -w - | closewait analyze -` as a user would (--immediate-mode so tcpdump itself
# takes every packet at once; its output stays buffered, as without -U), with connections left in CLOSE_WAIT,
# then sends SIGNAL to the whole pipeline (what Ctrl-C does in a shell) and records:
#   OUT/report.json      closewait's report      OUT/closewait.rc   its exit code (none: still running
#                        10 s after the signal, then killed)
#   OUT/ss-close-wait    the kernel's CLOSE-WAIT sockets on the port, just before the signal
#   OUT/tcpdump.err      tcpdump's own count of packets captured
# Every wait is bounded; only processes started here are signalled.
set -u
OUT=$1 SIGNAL=$2 CLI=$3
PORT=20880
HERE=$(cd "$(dirname "$0")" && pwd)
ip link set lo up
# Each side writes its own PID before becoming the program (exec), so both can be signalled by PID.
sh -c 'echo $$ >"$1/tcpdump.pid"; exec tcpdump --immediate-mode -i lo -w - tcp port "$2" 2>"$1/tcpdump.err"' sh "$OUT" "$PORT" |
  { sh -c 'echo $$ >"$1/closewait.pid"; exec node "$2" analyze --format json - >"$1/report.json" 2>"$1/closewait.err"' sh "$OUT" "$CLI"; echo $? >"$OUT/closewait.rc"; } &
for _ in $(seq 100); do grep -q listening "$OUT/tcpdump.err" 2>/dev/null && break; sleep 0.05; done
TCPDUMP=$(cat "$OUT/tcpdump.pid")
CLOSEWAIT=$(cat "$OUT/closewait.pid")
node "$HERE/half-close-peers.mjs" $PORT 20 25 >"$OUT/peers.out" 2>"$OUT/peers.err" &
PEERS=$!
for _ in $(seq 200); do grep -q DONE "$OUT/peers.out" && break; sleep 0.05; done
sleep 0.2
ss -Htan state close-wait "sport = :$PORT" | wc -l >"$OUT/ss-close-wait"
# What Ctrl-C does in a shell: the signal reaches every process of the pipeline at once.
kill "-$SIGNAL" "$TCPDUMP" "$CLOSEWAIT"
for _ in $(seq 200); do [ -s "$OUT/closewait.rc" ] && break; sleep 0.05; done
# Still running 10 s later: a hang (the test fails on the missing exit code).
[ -s "$OUT/closewait.rc" ] || kill -KILL "$CLOSEWAIT" "$TCPDUMP" 2>/dev/null
kill "$PEERS" 2>/dev/null
wait
exit 0
