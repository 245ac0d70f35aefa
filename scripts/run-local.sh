#!/usr/bin/env bash
# `make run`: the whole SwiftHES pipeline on this machine with embedded defaults: a private
# PostgreSQL cluster in a temp dir, the kafka-dev broker, every service, simulated meters and a
# simulated IMS. Runs for DURATION seconds (0 = until Ctrl-C), then stops everything with SIGTERM
# and prints a summary. Logs: .hes-run/logs/<process>.log
set -uo pipefail
cd "$(dirname "$0")/.."

duration=${1:-20}
region=${HES_REGION:-local}
bin=$(swift build --show-bin-path)
run_dir=$PWD/.hes-run
logs=$run_dir/logs
rm -rf "$logs" "$run_dir/kafka-bootstrap"
mkdir -p "$logs"
pg_dir=$(mktemp -d /tmp/hes-run-pg.XXXXXX)

declare -A pids=() admin_ports=() exit_codes=()
order=()

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

cleanup() {
  # Stop in reverse start order, so the broker and the database outlive their clients.
  local index name
  for ((index = ${#order[@]} - 1; index >= 0; index--)); do
    name=${order[$index]}
    kill -TERM "${pids[$name]}" 2>/dev/null || true
    wait "${pids[$name]}" 2>/dev/null; exit_codes[$name]=$?
  done
  scripts/local-postgres.sh purge "$pg_dir" "$pg_port" >/dev/null 2>&1 || true
  rm -rf "$pg_dir"
}

start() { # name admin-port args…
  local name=$1 port=$2; shift 2
  "$bin/$name" --admin-port "$port" "$@" >"$logs/$name.log" 2>&1 &
  pids[$name]=$!
  admin_ports[$name]=$port
  order+=("$name")
}

probe() { curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$1$2" 2>/dev/null || echo "---"; }

echo "== starting PostgreSQL (private cluster in $pg_dir)"
pg_port=$(free_port)
if ! database_url=$(scripts/local-postgres.sh start "$pg_dir" "$pg_port"); then
  echo "PostgreSQL did not start; see above" >&2
  exit 1
fi
# The simulated IMS keeps its own database in the same private cluster.
if ! ims_database_url=$(HES_LOCAL_DB_NAME=ims_sim scripts/local-postgres.sh start "$pg_dir" "$pg_port"); then
  echo "the IMS simulator's database could not be created; see above" >&2
  exit 1
fi
export HES_DATABASE_URL=$database_url HES_REGION=$region HES_IMS_URL=http://127.0.0.1:8090 HES_IMS_DATABASE_URL=$ims_database_url
export HES_LOG_LEVEL=${HES_LOG_LEVEL:-info}
# The config-service API's first admin token, and a throw-away master key that seals meter secrets.
export HES_API_TOKEN=${HES_API_TOKEN:-dev-admin-token}
if [ -z "${HES_MASTER_KEY_FILE:-}" ]; then
  head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$run_dir/master-key"
  export HES_MASTER_KEY_FILE=$run_dir/master-key
fi

echo "== starting kafka-dev"
start kafka-dev 9107 --bootstrap-file "$run_dir/kafka-bootstrap"
for _ in $(seq 1 100); do [ -s "$run_dir/kafka-bootstrap" ] && break; sleep 0.1; done
if [ ! -s "$run_dir/kafka-bootstrap" ]; then
  echo "kafka-dev wrote no bootstrap address; its log:" >&2; cat "$logs/kafka-dev.log" >&2
  cleanup; exit 1
fi
export HES_KAFKA_BROKERS=$(cat "$run_dir/kafka-bootstrap")

echo "== starting services (database $HES_DATABASE_URL, kafka $HES_KAFKA_BROKERS, region $region)"
start ims-sim 9106
start meter-sim 9105 --meters 10
start config-service 9101
start scheduler 9102
start collector 9103
start uploader 9104
trap 'echo; echo "== stopping"; cleanup; summary; exit 0' INT TERM

summary() {
  echo
  echo "== summary"
  printf '%-16s %-8s %s\n' process exit "last log line"
  local failed=0
  for name in "${order[@]}"; do
    local code=${exit_codes[$name]:-?}
    [ "$code" = 0 ] || failed=1
    printf '%-16s %-8s %s\n' "$name" "$code" "$(tail -n 1 "$logs/$name.log" | cut -c1-100)"
  done
  echo "logs: $logs"
  [ $failed = 0 ] && echo "all processes stopped cleanly" || echo "some processes did not stop cleanly (exit code != 0)"
  return $failed
}

echo "== waiting for health and readiness (dependencies answering)"
for name in "${order[@]}"; do
  for _ in $(seq 1 100); do [ "$(probe "${admin_ports[$name]}" /readyz)" = 200 ] && break; sleep 0.2; done
done
printf '\n%-16s %-7s %-8s %-8s %s\n' process pid healthz readyz admin
for name in "${order[@]}"; do
  port=${admin_ports[$name]}
  printf '%-16s %-7s %-8s %-8s %s\n' "$name" "${pids[$name]}" "$(probe "$port" /healthz)" "$(probe "$port" /readyz)" "http://127.0.0.1:$port"
done

echo
echo "config-service API: http://127.0.0.1:${HES_API_PORT:-8080} (Authorization: Bearer \$HES_API_TOKEN = $HES_API_TOKEN; OpenAPI at /openapi.yaml)"

if [ "$duration" = 0 ]; then
  echo; echo "running until Ctrl-C"
  while true; do sleep 1; done
fi
echo; echo "running for ${duration}s (make run DURATION=0 runs until Ctrl-C)"
sleep "$duration"
echo "== stopping"
cleanup
summary
