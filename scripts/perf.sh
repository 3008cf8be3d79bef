#!/usr/bin/env bash
# The load tests of docs/performance.md, one JSON line per test and server on stdout: the same
# gochat-bench runs against the ceiling probe (../shared/ceiling, `fanout gochat`) and our
# standalone server one after the other, and against local clusters (scripts/cluster.sh, on
# PostgreSQL). Loopback only.
#   scripts/perf.sh                        # every test below (~40 minutes)
#   PERF_TESTS="room idle" scripts/perf.sh # some of them
# Tests: room latency private idle (ceiling and ours), socket (posting over v2 sockets
# against REST), recovery (10 000 clients reconnecting after a restart), history (on
# against off), store (the stores alone), distributed (cluster against standalone), matrix
# (PostgreSQL cluster with 1-3 connect servers and 1-2 task workers), massive (100 000
# WebSockets over 6 connect servers, one room broadcast), storm (30 000 WebSockets at once
# while the cluster's Redis is frozen for 12 s: how many are admitted, how many refused).
set -euo pipefail
cd "$(dirname "$0")/.."
config=benches/bench-server.toml

# `scripts/perf.sh restart-standalone WORK down|up`: the recovery test's restart. Kills the
# server (-9) and starts it again on its data, without (down) or with (up) its WebSocket
# listener; prints the new pid.
if [ "${1:-}" = restart-standalone ]; then
  work=$2
  pid=$(cat "$work/server.pid")
  kill -9 "$pid" 2>/dev/null || true
  # Gone, or a zombie of perf.sh — and its listeners closed: the leader thread turns zombie
  # while other threads may still hold the process's sockets (seen with 10 000 connections).
  while [ -e "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status" 2>/dev/null; do sleep 0.05; done
  while ss -Hltn '( sport = :17070 or sport = :17000 )' | grep -q .; do sleep 0.05; done
  ws=127.0.0.1:17000
  [ "$3" = down ] && ws=127.0.0.1:17999
  target/release/gochat --config "$config" --data-dir "$work/data" --api-addr 127.0.0.1:17070 \
    --ws-addr "$ws" --no-tcp >>"$work/ours.log" 2>&1 </dev/null &
  echo $! >"$work/server.pid"
  for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:17070/" && break; sleep 0.1; done
  kill -0 "$(cat "$work/server.pid")" 2>/dev/null || { echo "the server did not come back: see $work/ours.log" >&2; exit 1; }
  cat "$work/server.pid"
  exit 0
fi

tests=${PERF_TESTS:-"room latency private idle socket recovery history store distributed matrix massive storm"}
need=()
command -v protoc >/dev/null 2>&1 || need+=(protobuf-compiler)
command -v etcd >/dev/null 2>&1 || need+=(etcd-server)
command -v etcdctl >/dev/null 2>&1 || need+=(etcd-client)
if ((${#need[@]})); then
  echo "installing ${need[*]}" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
fi
cargo build --release --quiet --bin gochat --bin gochat-bench
case " $tests " in
  *" distributed "* | *" matrix "* | *" massive "* | *" storm "*) cargo build --release --quiet --features distributed --bins ;;
esac
ceiling=../shared/ceiling/Cargo.toml
[ -f "$ceiling" ] && cargo build --release --quiet --manifest-path "$ceiling" --target-dir target/ceiling
bench=target/release/gochat-bench
work=$(mktemp -d)
server_pid=""
stop() {
  [ -f "$work/server.pid" ] && server_pid=$(cat "$work/server.pid")
  if [ -n "$server_pid" ]; then
    kill "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    # Not always our child (the recovery test's restarts): wait until its ports are free.
    for _ in $(seq 300); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
  fi
  server_pid=""
  rm -f "$work/server.pid"
}
cluster_bench() { # gochat-bench against the cluster; a failure is reported, and the run goes on
  "$bench" --api "$capi" --ws "$cws" "$@" 2>"$work/cluster-bench.err" ||
    { echo "gochat-bench $* failed:" >&2; grep -v '^ *[0-9]*: \|^ *at ' "$work/cluster-bench.err" | tail -5 >&2; }
}
cluster_down() { [ -n "${GOCHAT_CLUSTER_DIR:-}" ] && scripts/cluster.sh down >/dev/null 2>&1 || true; }
holds=() # the massive test's load processes
trap 'stop; for p in "${holds[@]}"; do kill "$p" 2>/dev/null || true; done; cluster_down; rm -rf "$work"' EXIT

start() { # which
  # A server left from another run would answer in ours' place (and ours would fail to bind).
  local port
  for port in 17070 17000 27070 27000; do
    if ss -Hltn "( sport = :$port )" | grep -q .; then
      echo "port $port is already taken (a server left from another run?): stop it first" >&2
      exit 1
    fi
  done
  case $1 in
    ceiling) target/ceiling/release/fanout gochat --api 127.0.0.1:27070 --ws 127.0.0.1:27000 >"$work/ceiling.log" 2>&1 &
             server_pid=$!; api=127.0.0.1:27070; ws=127.0.0.1:27000 ;;
    ours|ours-nohistory)
          local cfg=$config
          [ "$1" = ours-nohistory ] && cfg=benches/bench-server-nohistory.toml
          rm -rf "$work/data"
          target/release/gochat --config "$cfg" --data-dir "$work/data" \
            --api-addr 127.0.0.1:17070 --ws-addr 127.0.0.1:17000 --no-tcp >"$work/ours.log" 2>&1 &
          server_pid=$!; echo "$server_pid" >"$work/server.pid"
          api=127.0.0.1:17070; ws=127.0.0.1:17000 ;;
  esac
  for _ in $(seq 100); do
    curl -s -o /dev/null "http://$api/" && return 0
    kill -0 "$server_pid" 2>/dev/null || break
    sleep 0.1
  done
  echo "server $1 did not start" >&2; exit 1
}

run() { # which, then gochat-bench's test arguments
  local which=$1; shift
  start "$which"
  "$bench" --api "$api" --ws "$ws" --server-pid "$server_pid" --label "$which" "$@" 2>/dev/null
  stop
}

cluster_up() { # connect servers, task workers, logic instances: sets capi, cws (all, comma-separated)
  export GOCHAT_CLUSTER_DIR="$work/cluster" GOCHAT_CLUSTER_BENCH=1 GOCHAT_CLUSTER_SCHEMA=gochat_perf
  export GOCHAT_CLUSTER_CONNECT=$1 GOCHAT_CLUSTER_TASK=$2 GOCHAT_CLUSTER_LOGIC=$3
  # Every cluster starts on an empty schema of the machine's PostgreSQL (when it answers).
  psql -h 127.0.0.1 -U postgres -d test -qc 'DROP SCHEMA IF EXISTS gochat_perf CASCADE' >/dev/null 2>&1 || true
  scripts/cluster.sh up >/dev/null
  capi=$(awk '/^api:/ {print $2}' "$GOCHAT_CLUSTER_DIR/urls")
  cws=$(grep -o 'ws://[0-9.:]*' "$GOCHAT_CLUSTER_DIR/urls" | sed 's|ws://||' | paste -sd, -)
}

connect_rss_kb() { # the summed RSS of the cluster's connect servers
  local total=0 pid
  for pid in $(awk '/^connect-/ {print $2}' "$GOCHAT_CLUSTER_DIR/pids"); do
    total=$((total + $(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")))
  done
  echo "$total"
}

holds_say() { # word: wait until every hold process printed it (fail if one died first)
  local i
  for i in $(seq "${#holds[@]}"); do
    until grep -q "^$1" "$work/hold-$i.err" 2>/dev/null; do
      kill -0 "${holds[$((i - 1))]}" 2>/dev/null || { echo "hold $i failed:" >&2; tail -5 "$work/hold-$i.err" >&2; return 1; }
      sleep 1
    done
  done
}

start_holds() { # label servers per secs: one `hold` load process per connect server (wss)
  local label=$1 servers=$2 per=$3 secs=$4 i
  for i in $(seq "$servers"); do
    # Each process its own source address (~55 000 local ports each) and its own 20 000
    # descriptors; 16 connections opened at a time each (six times that arrive at once).
    "$bench" --api "$capi" --ws "${wss[$((i - 1))]}" --sources "127.0.0.$((10 + i))" --concurrency 16 \
      --prefix "${label:0:1}${i}x$RANDOM" --label "$label" hold --users "$per" --messages 1 --secs "$secs" \
      --go-file "$work/go" >"$work/hold-$i.json" 2>"$work/hold-$i.err" &
    holds+=($!)
  done
}

massive() { # N WebSockets over S connect servers, one load process per server, one broadcast
  local total=${MASSIVE_CONNECTIONS:-100000} servers=${MASSIVE_SERVERS:-6} i before after
  cluster_up "$servers" 2 1
  local per=$((total / servers))
  IFS=, read -ra wss <<<"$cws"
  before=$(connect_rss_kb)
  start_holds massive "$servers" "$per" 900
  # Everyone registers first (argon2 fills both cores), then all connect at once.
  holds_say registered || return 1
  touch "$work/go"
  holds_say ready || return 1
  after=$(connect_rss_kb)
  "$bench" --api "$capi" --ws "${wss[0]}" --label massive broadcast --members $((per * servers)) --messages 1 \
    >"$work/broadcast.json" 2>"$work/broadcast.err" || {
    echo "broadcast failed:" >&2; grep -v '^ *[0-9]*: \|^ *at ' "$work/broadcast.err" | tail -5 >&2
    # Keep what tells why: the cluster's logs and Redis' slow log.
    rm -rf target/perf-massive-failure && cp -r "$GOCHAT_CLUSTER_DIR/logs" target/perf-massive-failure
    redis-cli -u "$(awk '/^redis:/ {print $2}' "$GOCHAT_CLUSTER_DIR/urls")" slowlog get 20 >target/perf-massive-failure/slowlog 2>&1 || true
    echo "logs in target/perf-massive-failure" >&2; return 1; }
  for p in "${holds[@]}"; do wait "$p" || true; done
  holds=()
  python3 - "$work" "$servers" "$before" "$after" <<'PY'
import json, sys, glob
work, servers, before, after = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
holds = [json.load(open(f)) for f in sorted(glob.glob(f"{work}/hold-*.json"))]
b = json.load(open(f"{work}/broadcast.json"))
conns = sum(h["users"] for h in holds)
delivered = sum(h["delivered"] for h in holds)
done = max(h["last_delivery_unix_us"] for h in holds)
span = (done - b["first_send_unix_us"]) / 1e6
print(json.dumps({
    "test": "massive", "label": "distributed", "connect_servers": servers, "connections": conns,
    "expected": sum(h["expected"] for h in holds), "delivered": delivered,
    "lost": sum(h["lost"] for h in holds), "duplicates": sum(h["duplicates"] for h in holds),
    "closed": sum(h["closed"] for h in holds),
    "connect_all_s": (max(h["connect_end_unix_us"] for h in holds) - min(h["connect_start_unix_us"] for h in holds)) / 1e6,
    "broadcast_complete_s": span, "deliveries_per_s": delivered / span if span > 0 else 0,
    "latency_p50_ms": sorted(h["latency_ms"]["p50"] for h in holds)[len(holds) // 2],
    "latency_max_ms": max(h["latency_ms"]["max"] for h in holds),
    "connect_rss_before_kb": before, "connect_rss_after_kb": after,
    "rss_per_conn_bytes": (after - before) * 1024 // max(conns, 1),
}))
PY
  scripts/cluster.sh down >/dev/null
}

storm() { # a connect storm over S connect servers while Redis is frozen for a while
  local total=${STORM_CONNECTIONS:-30000} servers=6 stall=${STORM_STALL_SECS:-12} i redis rpid
  cluster_up "$servers" 1 1
  local per=$((total / servers))
  IFS=, read -ra wss <<<"$cws"
  redis=$(awk '/^redis:/ {print $2}' "$GOCHAT_CLUSTER_DIR/urls")
  rpid=$(awk '/^redis / {print $2}' "$GOCHAT_CLUSTER_DIR/pids")
  room_users() { redis-cli -u "$redis" hlen gochat-cluster:room:1:names; }
  start_holds storm "$servers" "$per" 60
  holds_say registered || return 1
  touch "$work/go"
  local t0=$SECONDS
  sleep 1
  kill -STOP "$rpid"
  sleep "$stall"
  kill -CONT "$rpid"
  # Admitted: until the count holds still for 5 s (or 60 s passed).
  local n last=-1 still=0
  while ((still < 5 && SECONDS - t0 < 60)); do
    n=$(room_users)
    if [ "$n" = "$last" ]; then still=$((still + 1)); else still=0; last=$n; fi
    sleep 1
  done
  local admitted_at=$((SECONDS - t0 - still))
  for p in "${holds[@]}"; do wait "$p" || true; done
  holds=()
  python3 - "$work" "$total" "$stall" "$last" "$admitted_at" <<'PY'
import json, sys, glob
work, total, stall, admitted, at = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
holds = [json.load(open(f)) for f in sorted(glob.glob(f"{work}/hold-*.json"))]
print(json.dumps({
    "test": "storm", "label": "distributed", "connections": sum(h["users"] for h in holds),
    "redis_stall_s": stall, "admitted": admitted, "refused": sum(h["closed"] for h in holds),
    "admitted_by_s": at,
}))
PY
  scripts/cluster.sh down >/dev/null
}

for t in $tests; do
  case $t in
    store)
      # The store alone (benches/store_write.rs): the machine's PostgreSQL, or a throwaway one.
      source scripts/postgres.sh
      mkdir -p "$work/pg" && chmod 755 "$work" "$work/pg"
      GOCHAT_BENCH_POSTGRES=$(gochat_postgres_ensure "$work/pg") \
        cargo bench --quiet --bench store_write --features postgres 2>/dev/null | grep -v '^$'
      gochat_postgres_stop "$work/pg" ;;
    history)
      # History on (the default) against off, same run: what storing every message costs.
      for which in ours ours-nohistory; do
        run "$which" room --users 2000 --messages 200 --senders 4
        run "$which" private --users 1000 --messages 20000 --senders 32
      done ;;
    socket)
      # Posting over v2 sockets (op 3, each awaiting its reply) beside REST, same room: from
      # a socket in the room too, and from one that only posts (as a REST sender's
      # connection only posts).
      for via in rest socket post-socket; do
        run ours room --users 2000 --messages 200 --senders 4 --via "$via"
        run ours room --users 1000 --messages 200 --senders 1 --rate 20 --via "$via"
      done ;;
    recovery)
      start ours
      "$bench" --api "$api" --ws "$ws" --server-pid "$server_pid" --label ours \
        recovery --users 10000 --missed 50 --restart-cmd "scripts/perf.sh restart-standalone $work" 2>/dev/null
      stop ;;
    distributed)
      # Standalone and distributed (2 logic, 2 connect, 2 task) in the same run.
      run ours room --users 2000 --messages 200 --senders 4
      cluster_up 2 2 2
      cluster_bench --label distributed room --users 2000 --messages 200 --senders 4
      scripts/cluster.sh down >/dev/null ;;
    matrix)
      # Where adding processes helps: 1-3 connect servers × 1-2 task workers, one logic
      # (MATRIX_CONNECT="1" MATRIX_TASK="1" for one cell of it).
      for c in ${MATRIX_CONNECT:-1 2 3}; do
        for k in ${MATRIX_TASK:-1 2}; do
          cluster_up "$c" "$k" 1
          cluster_bench --label "connect=$c task=$k" room --users 2000 --messages 200 --senders 4
          cluster_bench --label "connect=$c task=$k" private --users 1000 --messages 20000 --senders 32
          scripts/cluster.sh down >/dev/null
        done
      done ;;
    massive) massive ;;
    storm) storm ;;
    *)
      for which in ceiling ours; do
        [ "$which" = ceiling ] && [ ! -x target/ceiling/release/fanout ] && continue
        case $t in
          room) run "$which" room --users 2000 --messages 200 --senders 4 ;;
          latency) run "$which" room --users 1000 --messages 200 --senders 1 --rate 20 ;;
          private) run "$which" private --users 1000 --messages 20000 --senders 32 ;;
          idle) run "$which" --concurrency 128 idle --users 15000 --secs 5
                # v2 connections in 4 rooms each (ours only: the ceiling speaks v1).
                [ "$which" = ours ] && run ours --concurrency 128 idle --users 15000 --secs 5 --rooms 4 ;;
          *) echo "unknown test $t" >&2; exit 2 ;;
        esac
      done ;;
  esac
done
