#!/usr/bin/env bash
# make-fixtures.sh: regenerate the real-kernel capture fixtures under fixtures/.
#
#   sudo bash scripts/make-fixtures.sh [--out DIR] [--only NAME[,NAME...]] [--quick] [--keep-work]
#
# For each scenario: a fresh network namespace (unshare -n) with only lo up; the peers
# (scripts/fixture-peers.mjs) set up their servers (and any pre-capture connections); tcpdump
# starts (-U --immediate-mode, BPF filter on the scenario's ports) and we wait until it says it is
# listening; the scenario plays; `ss -tan` is taken just BEFORE tcpdump is stopped (SIGINT, by PID);
# then the peers are told to exit. Outputs per fixture: NAME.pcap (or .pcapng / .pcap.gz /
# rotated set), NAME.ss.txt (raw `ss -tan`), NAME.truth.json (scripts/fixture-truth.mjs).
#
# All traffic stays on loopback inside the private namespace. Every wait is bounded; a scenario
# that fails is retried once; the whole run takes about a minute and a half.
#
# Needs: root, bash, node >= 20, tcpdump, unshare (util-linux), ip and ss (iproute2), gzip.
# Optional: editcap (Debian package wireshark-common) for variant-pcapng; without it the
# pcapng file is written by scripts/convert-capture.mjs.

set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(dirname "$SCRIPT_DIR")
SELF="$SCRIPT_DIR/$(basename "${BASH_SOURCE[0]}")"
ALL=(incident two-services client-stuck slow-close client-slow-close half-close-sending mid-stream port-reuse ipv6 rst-after-close any variants rotated probes-2000)

log() { printf '[make-fixtures] %s\n' "$*" >&2; }
die() { printf '[make-fixtures] ERROR: %s\n' "$*" >&2; exit 1; }

ports_of() {
  case "$1" in
    two-services) echo "20880 8080" ;;
    *) echo "20880" ;;
  esac
}

bpf_of() {
  local f="" p
  for p in $(ports_of "$1"); do f="${f:+$f or }tcp port $p"; done
  echo "$f"
}

# wait_for FILE REGEX TIMEOUT_S [PID]: poll until FILE has a line matching REGEX.
# Returns 1 on timeout, 2 if PID died first.
wait_for() {
  local file=$1 re=$2 timeout=$3 pid=${4:-} deadline
  deadline=$((SECONDS + timeout))
  while ! grep -qE "$re" "$file" 2>/dev/null; do
    if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
      grep -qE "$re" "$file" 2>/dev/null && return 0
      return 2
    fi
    [ "$SECONDS" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# stop_pid PID SIGNAL TIMEOUT_S: signal a process we started, wait for it (bounded), KILL if needed.
stop_pid() {
  local pid=$1 sig=$2 timeout=$3 i
  kill -"$sig" "$pid" 2>/dev/null || true
  for ((i = 0; i < timeout * 20; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.05
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "pid $pid ignored SIG$sig for ${timeout}s, sending KILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  wait "$pid" 2>/dev/null || true
}

# ------------------------------------------------------------------------------------------------
# inner: runs inside `unshare -n`. Args: NAME WORKDIR QUICK(0|1)
npid=""
tpid=""
cleanup_inner() {
  if [ -n "$tpid" ] && kill -0 "$tpid" 2>/dev/null; then stop_pid "$tpid" INT 5; fi
  if [ -n "$npid" ] && kill -0 "$npid" 2>/dev/null; then stop_pid "$npid" TERM 5; fi
  return 0
}
inner() {
  local name=$1 work=$2 quick=$3
  trap cleanup_inner EXIT
  trap 'exit 143' TERM INT

  ip link set lo up
  export FIXTURE_NETNS=1

  local qflag=()
  [ "$quick" = 1 ] && qflag=(--quick)
  node "$SCRIPT_DIR/fixture-peers.mjs" "$name" --meta "$work/meta.json" --ctl "$work/ctl.json" "${qflag[@]}" \
    >"$work/peers.out" 2>"$work/peers.err" &
  npid=$!
  wait_for "$work/peers.out" '^READY$' 30 "$npid" || { cat "$work/peers.err" >&2; die "$name: peers did not get ready"; }

  local iface=lo filter
  filter=$(bpf_of "$name")
  local targs=(-Z root -U --immediate-mode -B 65536 -n)
  case "$name" in
    any) iface=any; targs+=(-y LINUX_SLL2) ;;
    variants) targs+=(--time-stamp-precision=nano) ;;
  esac
  local start_second=0
  if [ "$name" = rotated ]; then
    # one file per wall-clock second (tcpdump compares time(NULL) seconds): start tcpdump just after
    # a second boundary so the peers can place one phase in each second
    local now_ns frac wait_ns
    now_ns=$(date +%s%N)
    frac=$((10#${now_ns: -9}))
    wait_ns=$((1000000000 - frac + 20000000))
    sleep "$(printf '%d.%09d' $((wait_ns / 1000000000)) $((wait_ns % 1000000000)))"
    start_second=$(date +%s)
    targs+=(-G 1 -w "$work/rot-%s.pcap")
  else
    targs+=(-w "$work/capture.pcap")
  fi
  tcpdump -i "$iface" "${targs[@]}" "$filter" 2>"$work/tcpdump.err" &
  tpid=$!
  wait_for "$work/tcpdump.err" 'listening on' 10 "$tpid" || { cat "$work/tcpdump.err" >&2; die "$name: tcpdump did not start"; }
  printf '{"startSecond": %s}\n' "$start_second" >"$work/ctl.json"
  kill -USR2 "$npid"

  local rc=0
  wait_for "$work/peers.out" '^(DONE|FAILED)$' 150 "$npid" || rc=$?
  if [ "$rc" != 0 ] || grep -q '^FAILED$' "$work/peers.out"; then
    cat "$work/peers.err" >&2
    die "$name: scenario failed (rc=$rc)"
  fi
  # the state of the kernel, just before the capture stops
  ss -tan >"$work/ss.txt"
  ss -tanp >"$work/ss-p.txt" || true
  stop_pid "$tpid" INT 10
  tpid=""
  stop_pid "$npid" TERM 10
  npid=""
  cat "$work/peers.err" >&2
  grep -E 'packets (captured|received|dropped)' "$work/tcpdump.err" >&2 || true
  local dropped
  dropped=$(sed -nE 's/^([0-9]+) packets dropped by kernel.*/\1/p' "$work/tcpdump.err")
  [ "${dropped:-0}" = 0 ] || die "$name: tcpdump reports $dropped packets dropped by the kernel"
}

# ------------------------------------------------------------------------------------------------
# outer: one scenario, postprocess into OUT

run_scenario() {
  local name=$1 attempt=$2 work
  work=$(mktemp -d "${TMPDIR:-/tmp}/closewait-fixture-$name.XXXXXX")
  log "scenario $name (attempt $attempt), work dir $work"
  local limit=180
  [ "$QUICK" = 1 ] && limit=60
  if ! timeout -k 5 "$limit" unshare -n -- bash "$SELF" --inner "$name" "$work" "$QUICK"; then
    log "$name: run failed"
    [ "$KEEP_WORK" = 1 ] || rm -rf "$work"
    return 1
  fi
  if ! postprocess "$name" "$work"; then
    log "$name: postprocessing failed (work dir kept: $work)"
    return 1
  fi
  [ "$KEEP_WORK" = 1 ] || rm -rf "$work"
  return 0
}

truth() { node "$SCRIPT_DIR/fixture-truth.mjs" "$@"; }

postprocess() {
  local name=$1 work=$2
  case "$name" in
    rotated)
      local files=() f i=0
      mapfile -t files < <(find "$work" -maxdepth 1 -name 'rot-*.pcap' -printf '%f\n' | sort -t- -k2,2n)
      [ "${#files[@]}" = 5 ] || { log "rotated: expected 5 files, got ${#files[@]}: ${files[*]}"; return 1; }
      local outs=()
      for f in "${files[@]}"; do
        local dst="rotated.pcap"
        [ $i -gt 0 ] && dst="rotated.pcap$i"
        cp "$work/$f" "$OUT/$dst"
        outs+=("$OUT/$dst")
        i=$((i + 1))
      done
      cp "$work/ss.txt" "$OUT/rotated.ss.txt"
      truth --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/rotated.truth.json" "${outs[@]}"
      # every stuck connection must have its handshake and its peer FIN in different files
      node -e '
        const j = JSON.parse(require("fs").readFileSync(process.argv[1], "utf8"));
        const bad = (j.closeWaitFiles || []).filter((c) => c.synFile === null || c.peerFinFile === null || c.synFile === c.peerFinFile);
        if (j.closeWait.length !== 4 || bad.length) { console.error("rotated: stuck connections do not straddle files", JSON.stringify(j.closeWaitFiles)); process.exit(1); }
        console.log("rotated: handshake/FIN files " + j.closeWaitFiles.map((c) => c.synFile + "->" + c.peerFinFile).join(", "));
      ' "$OUT/rotated.truth.json"
      ;;
    variants)
      local base=variant
      cp "$work/capture.pcap" "$OUT/variant-ns.pcap"
      node "$SCRIPT_DIR/convert-capture.mjs" --to le --us "$work/capture.pcap" "$work/us.pcap"
      node "$SCRIPT_DIR/convert-capture.mjs" --to be "$work/us.pcap" "$OUT/variant-be.pcap"
      gzip -n -9 -c "$work/us.pcap" >"$OUT/variant-gz.pcap.gz"
      local how
      if command -v editcap >/dev/null 2>&1; then
        editcap -F pcapng "$work/capture.pcap" "$OUT/variant-pcapng.pcapng"
        how="Converted from the nanosecond pcap with Wireshark's \`editcap -F pcapng\` ($(editcap --version 2>/dev/null | head -1 | sed 's/ (Git.*//'))."
      else
        node "$SCRIPT_DIR/convert-capture.mjs" --to pcapng "$work/capture.pcap" "$OUT/variant-pcapng.pcapng"
        how="Converted from the nanosecond pcap with scripts/convert-capture.mjs (editcap was not installed)."
      fi
      local cut
      cut=$(node "$SCRIPT_DIR/convert-capture.mjs" --truncate-last "$work/us.pcap" "$OUT/variant-truncated.pcap")
      local at orig lastlen
      at=$(node -e 'const j=JSON.parse(process.argv[1]);console.log(j.truncatedAtByte)' "$cut")
      orig=$(node -e 'const j=JSON.parse(process.argv[1]);console.log(j.originalBytes)' "$cut")
      lastlen=$(node -e 'const j=JSON.parse(process.argv[1]);console.log(j.lastRecordCapLen)' "$cut")
      local lost
      lost=$(node -e 'const j=JSON.parse(process.argv[1]);console.log(j.lostPacket)' "$cut")
      case "$lost" in
        *'['*SYN*']'* | *'['*FIN*']'* | *'['*RST*']'* | 'not a TCP packet')
          log "variants: the last packet ($lost) carries connection state; refusing to truncate it"; return 1 ;;
      esac
      local v
      for v in ns be gz pcapng truncated; do cp "$work/ss.txt" "$OUT/$base-$v.ss.txt"; done
      truth --scenario variant-ns --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/variant-ns.truth.json" \
        --notes-append 'Classic little-endian pcap, nanosecond timestamps (magic a1b23c4d), as written by tcpdump --time-stamp-precision=nano.' \
        "$OUT/variant-ns.pcap"
      truth --scenario variant-be --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/variant-be.truth.json" \
        --notes-append 'Classic BIG-endian pcap, microsecond timestamps: the nanosecond capture rewritten by scripts/convert-capture.mjs (ns -> us, then header and record-header fields byte-swapped, packet bytes unchanged).' \
        "$OUT/variant-be.pcap"
      truth --scenario variant-gz --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/variant-gz.truth.json" \
        --notes-append 'gzip (-n -9) of the little-endian microsecond pcap (the nanosecond capture converted ns -> us).' \
        "$OUT/variant-gz.pcap.gz"
      truth --scenario variant-pcapng --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/variant-pcapng.truth.json" \
        --notes-append "pcapng. $how" \
        "$OUT/variant-pcapng.pcapng"
      truth --scenario variant-truncated --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/variant-truncated.truth.json" \
        --extra "{\"truncatedAtByte\": $at}" \
        --notes-append "The little-endian microsecond pcap ($orig bytes) cut at byte $at, in the middle of the LAST record (its 16-byte header and half of its $lastlen packet bytes are kept). The lost packet ($lost) is the last packet of a connection that has other packets in the file, so the connection count and the CLOSE_WAIT set are the same as for the full capture (checked by scripts/fixture-truth.mjs on the truncated file). A reader should report the truncation and keep everything before it." \
        "$OUT/variant-truncated.pcap"
      ;;
    *)
      cp "$work/capture.pcap" "$OUT/$name.pcap"
      cp "$work/ss.txt" "$OUT/$name.ss.txt"
      local extra=()
      [ "$name" = any ] && extra=(--notes-append 'Link type LINUX_SLL2 (276), written by tcpdump -i any -y LINUX_SLL2.')
      truth --meta "$work/meta.json" --ss "$work/ss.txt" --out "$OUT/$name.truth.json" "${extra[@]}" "$OUT/$name.pcap"
      if [ "$name" = port-reuse ]; then describe_port_reuse "$OUT/$name.pcap" "$OUT/$name.truth.json" || return 1; fi
      ;;
  esac
}

# port-reuse: verify with `tcpdump -r` that (A) the TIME_WAIT tuple was reused and (B) the SYN really
# hit the CLOSE_WAIT socket, got a challenge ACK, was answered by a RST and retransmitted; record the
# exchange (with timings) in the truth notes.
describe_port_reuse() {
  local pcap=$1 truthf=$2
  local a b
  a=$(tcpdump -nr "$pcap" -S -tt 'tcp port 40001' 2>/dev/null)
  b=$(tcpdump -nr "$pcap" -S -tt 'tcp port 40002' 2>/dev/null)
  node - "$truthf" "$a" "$b" <<'EOF'
const fs = require('node:fs');
const [truthf, ta, tb] = process.argv.slice(2);
const parse = (txt) => txt.trim().split('\n').map((l) => {
  const t = Number(l.split(' ')[0]);
  const m = /IP (\S+) > (\S+): Flags \[([^\]]*)\](?:, seq (\d+)(?::\d+)?)?(?:, ack (\d+))?/.exec(l);
  const o = { line: l, t, src: m[1], dst: m[2].replace(/:$/, ''), flags: m[3], seq: m[4] && Number(m[4]), ack: m[5] && Number(m[5]) };
  o.tsecr = Number((/ecr (\d+)/.exec(l) || [])[1]);
  return o;
});
const fail = (msg, lines) => { console.error(`port-reuse: ${msg}\n${(lines || []).map((x) => x.line).join('\n')}`); process.exit(1); };
const us = (x, y) => `${Math.round((y.t - x.t) * 1e6)} us`;
// (A) TIME_WAIT reuse on 127.0.0.5:40001
const A = parse(ta);
const synsA = A.filter((p) => p.flags === 'S');
if (synsA.length !== 2) fail(`expected 2 SYNs on 127.0.0.5:40001, got ${synsA.length}`, A);
const finA = A.find((p) => p.src === '127.0.0.5.40001' && p.flags.includes('F'));
const gapA = synsA[1].t - synsA[0].t;
const isnDelta = (synsA[1].seq - (finA.seq + 1) + 2 ** 32) % 2 ** 32;
if (!(synsA[1].tsecr > 0)) fail('(A) expected a non-zero TSecr on the reusing SYN', A);
const noteA = ` (A) observed: the second SYN on 127.0.0.5:40001 comes ${gapA.toFixed(3)} s after the first, while the client socket was still in TIME_WAIT `
  + `(tcp_tw_reuse recycled it); its ISN is the old snd_nxt + ${isnDelta} and, unlike a fresh SYN, it carries a non-zero TSecr (${synsA[1].tsecr}, the last TSval of the old peer).`;
// (B) SYN into CLOSE_WAIT on 127.0.0.6:40002
const B = parse(tb);
const cli = '127.0.0.6.40002';
const firstFin = B.findIndex((p) => p.src === cli && p.flags.includes('F'));
const i = B.findIndex((p, k) => k > firstFin && p.src === cli && p.flags === 'S');
const ex = B.slice(i, i + 5);
const ok = firstFin >= 0 && i > 0 && ex.length === 5
  && ex[1].src !== cli && ex[1].flags === '.'
  && ex[2].src === cli && ex[2].flags === 'R'
  && ex[3].src === cli && ex[3].flags === 'S' && ex[3].seq === ex[0].seq
  && ex[4].src !== cli && ex[4].flags === 'S.';
if (!ok) fail('(B) the SYN-into-CLOSE_WAIT exchange did not happen as expected', ex);
if (ex[2].seq !== ex[1].ack) fail('(B) RST seq should equal the challenge ACK ack number', ex);
const oldClientFinSeq = B[firstFin].seq;
const noteB = ` (B) observed: SYN seq ${ex[0].seq} into the CLOSE_WAIT socket; +${us(ex[0], ex[1])} the server answers with a bare ACK (challenge ACK) whose ack ${ex[1].ack} `
  + `is its old rcv_nxt (the old client FIN seq ${oldClientFinSeq} + 1), not the new SYN + 1; +${us(ex[0], ex[2])} the client (SYN_SENT) sends RST seq ${ex[2].seq} `
  + `(= that ack number, so the CLOSE_WAIT socket accepts it and dies); +${us(ex[0], ex[3])} the client retransmits the SAME SYN - not after the 1 s RTO: Linux re-arms `
  + `the SYN retransmit timer to TCP_TIMEOUT_MIN (2 jiffies) after answering an unacceptable ACK in SYN_SENT - and +${us(ex[0], ex[4])} a fresh socket answers with SYN-ACK.`;
const j = JSON.parse(fs.readFileSync(truthf, 'utf8'));
j.notes += noteA + noteB;
fs.writeFileSync(truthf, JSON.stringify(j, null, 2) + '\n');
console.log('port-reuse exchange:\n' + ex.map((x) => x.line).join('\n'));
EOF
}

# ------------------------------------------------------------------------------------------------
# main

if [ "${1:-}" = --inner ]; then
  shift
  inner "$@"
  exit 0
fi

OUT="$REPO/fixtures"
ONLY=""
QUICK=0
KEEP_WORK=0
while [ $# -gt 0 ]; do
  case "$1" in
    --out) OUT=$2; shift 2 ;;
    --only) ONLY=$2; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --keep-work) KEEP_WORK=1; shift ;;
    -h|--help) sed -n '2,20p' "$SELF"; exit 0 ;;
    *) die "unknown argument $1 (see --help)" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "must run as root (network namespaces, tcpdump)"
for t in node tcpdump unshare ip ss gzip timeout; do
  command -v "$t" >/dev/null 2>&1 || die "missing tool: $t"
done
unshare -n true 2>/dev/null || die "cannot create a network namespace (unshare -n)"
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)

selected=()
if [ -z "$ONLY" ]; then
  selected=("${ALL[@]}")
else
  IFS=, read -r -a wanted <<<"$ONLY"
  for w in "${wanted[@]}"; do
    case "$w" in variant-*) w=variants ;; esac
    found=0
    for a in "${ALL[@]}"; do [ "$a" = "$w" ] && found=1; done
    [ "$found" = 1 ] || die "unknown scenario $w (known: ${ALL[*]} and variant-*)"
    printf '%s\n' "${selected[@]}" | grep -qx -- "$w" || selected+=("$w")
  done
fi

start=$SECONDS
failed=()
for name in "${selected[@]}"; do
  if ! run_scenario "$name" 1; then
    run_scenario "$name" 2 || failed+=("$name")
  fi
done

log "finished in $((SECONDS - start)) s; output in $OUT"
du -b "$OUT"/* 2>/dev/null | sort -k2 | awk '{ printf "  %8d  %s\n", $1, $2; t += $1 } END { printf "  %8d  total\n", t }' >&2
[ "${#failed[@]}" = 0 ] || die "failed scenarios: ${failed[*]}"
