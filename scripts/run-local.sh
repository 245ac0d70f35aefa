#!/usr/bin/env bash
# `make run`: the whole SwiftHES pipeline on this machine with embedded defaults: a private
# PostgreSQL cluster in a temp dir, the kafka-dev broker, every service, simulated meters (the
# fleet in scripts/run-fleet.json) and a simulated IMS. It applies the fleet's configuration
# through the config-service API with a daily schedule due this minute, sends one command of
# each kind, shows progress until every task has its result at the IMS, checks what the IMS holds
# against the simulator (`meter-sim verify`), stops everything with SIGTERM and prints the
# summary; the last line is `SUMMARY {json}`, the exit code 0 only when the numbers are right.
# DURATION (seconds) keeps the pipeline up that long after the cycle; 0 = until Ctrl-C.
# Logs: .hes-run/logs/<process>.log
# Environment (tests and benchmarks use it): HES_RUN_FLEET (fleet file), HES_RUN_DIR,
# HES_RUN_LOOKBACK_HOURS (profile hours read and verified, 24), HES_RUN_CYCLE_TIMEOUT (600 s),
# HES_RUN_RELEASE=1 (release build) or HES_RUN_BIN (a directory of built executables).
set -uo pipefail
cd "$(dirname "$0")/.."

duration=${1:-}
cycle_timeout=${HES_RUN_CYCLE_TIMEOUT:-600}
fleet=${HES_RUN_FLEET:-scripts/run-fleet.json}
region=${HES_REGION:-local}
# HES_RUN_RELEASE=1 runs the release build (benchmarks), else the debug build `make run` built.
# HES_RUN_BIN names a directory of built executables instead (another scratch path).
if [ -n "${HES_RUN_BIN:-}" ]; then bin=$HES_RUN_BIN
elif [ -n "${HES_RUN_RELEASE:-}" ]; then bin=$(swift build -c release --show-bin-path); else bin=$(swift build --show-bin-path); fi
# Hours of load profile each meter's task reads (and `meter-sim verify` checks). Default: 24.
lookback_hours=${HES_RUN_LOOKBACK_HOURS:-24}
run_dir=${HES_RUN_DIR:-$PWD/.hes-run}
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
# The meters hold the example keys: groups with "access": "hls-gmac" are read with HLS-GMAC and ciphering.
start meter-sim 9105 --fleet "$fleet" --example-keys
start config-service 9101
# Only the slot whose window is open: the run's cycle, not the hour before it.
start scheduler 9102 --catch-up 0s
start collector 9103
start uploader 9104
trap 'echo; echo "== stopping"; cleanup; summary; exit 130' INT TERM

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
  for _ in $(seq 1 $(( ${HES_RUN_READY_TIMEOUT:-20} * 5 ))); do [ "$(probe "${admin_ports[$name]}" /readyz)" = 200 ] && break; sleep 0.2; done
done
printf '\n%-16s %-7s %-8s %-8s %s\n' process pid healthz readyz admin
for name in "${order[@]}"; do
  port=${admin_ports[$name]}
  printf '%-16s %-7s %-8s %-8s %s\n' "$name" "${pids[$name]}" "$(probe "$port" /healthz)" "$(probe "$port" /readyz)" "http://127.0.0.1:$port"
done

echo
echo "config-service API: http://127.0.0.1:${HES_API_PORT:-8080} (Authorization: Bearer \$HES_API_TOKEN = $HES_API_TOKEN; OpenAPI at /openapi.yaml)"

metric_sum() { # admin-port metric-name: the sum of its samples
  curl -s "http://127.0.0.1:$1/metrics" 2>/dev/null | awk -v name="$2" '$1 == name || index($1, name "{") == 1 { sum += $2 } END { printf "%d", sum }'
}
ims_stat() { curl -s http://127.0.0.1:8090/v1/stats | python3 -c "import json,sys; print(json.load(sys.stdin).get('$1', 0))" 2>/dev/null || echo 0; }

echo
echo "== one collection cycle"
# A daily schedule due this minute (UTC), reading the last 24 hours (HES_RUN_LOOKBACK_HOURS) of load profile.
slot=$(date -u +%Y-%m-%dT%H:%M:00Z)
cron="$(date -u -d "$slot" +%-M) $(date -u -d "$slot" +%-H) * * *"
"$bin/meter-sim" config --fleet "$fleet" --example-keys --region "$region" --cron "$cron" --window-minutes 60 --lookback-hours "$lookback_hours" > "$run_dir/config.json"
started_precise=$(date +%s.%N)
# The IMS sends the head-end its configuration and its commands (ims-sim push, as the real IMS
# would through the config-service API); hesctl shows what the head-end made of them.
if ! "$bin/ims-sim" push config "$run_dir/config.json" > "$run_dir/applied.json"; then
  echo "the configuration was refused; see above" >&2
  cleanup; summary; exit 1
fi
"$bin/hesctl" config versions
meters_total=$(python3 -c "import json; print(len(json.load(open('$run_dir/config.json'))['meters']))")
# One command of each kind, on meters that answer.
from_time=$(date -u -d "$slot - 2 hours" +%Y-%m-%dT%H:%M:00Z)
push_command() { echo "$1" | "$bin/ims-sim" push command - > /dev/null; }
push_command '{"kind": "read-profile", "meterID": "SIM00000001", "profile": "1.0.99.1.0.255", "from": "'"$from_time"'", "to": "'"$slot"'"}' &&
push_command '{"kind": "read-objects", "meterID": "SIM00000002", "objects": [{"classID": 3, "obis": "1.0.1.8.0.255", "attribute": 2}]}' &&
push_command '{"kind": "time-sync", "meterID": "SIM00000003"}' &&
push_command '{"kind": "disconnect", "meterID": "SIM00000004"}' &&
push_command '{"kind": "reconnect", "meterID": "SIM00000005"}' || echo "a command was refused; see above" >&2

started=$(date +%s)
done_precise=""
last_line=""
while true; do
  emitted=$(metric_sum 9102 hes_scheduler_tasks_emitted_total)
  results=$(ims_stat results)
  readings=$(ims_stat readings)
  elapsed=$(( $(date +%s) - started ))
  line=$(printf 'tasks emitted %5d   results at the IMS %5d   readings confirmed %8d   %4ds' "$emitted" "$results" "$readings" "$elapsed")
  if [ -t 1 ]; then printf '\r%s' "$line"; elif [ $((elapsed % 10)) = 0 ] && [ "$line" != "$last_line" ]; then echo "$line"; fi
  last_line=$line
  if [ "$emitted" -ge $((meters_total + 5)) ] && [ "$results" -ge "$emitted" ]; then
    [ -n "$done_precise" ] || done_precise=$(date +%s.%N)
    # Every task has its result; readings may still be on their way to the IMS.
    sleep 3
    [ "$(ims_stat readings)" = "$readings" ] && break
  fi
  if [ "$elapsed" -ge "$cycle_timeout" ]; then echo; echo "the cycle did not finish within ${cycle_timeout}s" >&2; break; fi
  sleep 1
done
echo
# The cycle's length, from the configuration's activation to the last result at the IMS.
python3 -c "
import json, sys
print(json.dumps({'seconds': float(sys.argv[2] or sys.argv[3]) - float(sys.argv[1]), 'emitted': int(sys.argv[4]), 'results': int(sys.argv[5]), 'readings': int(sys.argv[6])}))
" "$started_precise" "$done_precise" "$(date +%s.%N)" "$emitted" "$results" "$(ims_stat readings)" > "$run_dir/cycle.json"

# The status page (config-service's admin port) once the uploader recorded every outcome; with
# chromium installed, a screenshot and the rendered page beside the logs.
for _ in $(seq 1 20); do
  curl -s http://127.0.0.1:9101/status > "$run_dir/status.html" 2>/dev/null
  shown=$(python3 -c "
import re, sys
page = open('$run_dir/status.html').read()
numbers = [int(re.search(r'id=\"tasks-%s\"[^>]*>(\\d+)<' % name, page).group(1)) for name in ('succeeded', 'failed')]
print(sum(numbers))" 2>/dev/null || echo 0)
  [ "$shown" -ge "$meters_total" ] && break
  sleep 0.5
done
if command -v chromium >/dev/null 2>&1; then
  chromium --headless --no-sandbox --disable-gpu --hide-scrollbars --window-size=1280,1100 \
    --screenshot="$run_dir/status.png" http://127.0.0.1:9101/status >/dev/null 2>&1 &&
  chromium --headless --no-sandbox --disable-gpu --dump-dom http://127.0.0.1:9101/status > "$run_dir/status-dom.html" 2>/dev/null &&
  echo "status page: http://127.0.0.1:9101/status (screenshot $run_dir/status.png)"
fi

{ "$bin/hesctl" regions; echo; "$bin/hesctl" meters status SIM00000001; } > "$run_dir/operators.txt" 2>&1

lookback_start=$(date -u -d "$slot - $lookback_hours hours" +%Y-%m-%dT%H:%M:00Z)
"$bin/meter-sim" verify --from "$lookback_start" --to "$slot" --verbose > "$run_dir/verify.txt" 2>&1
"$bin/hesctl" commands list --json > "$run_dir/commands.json" 2>/dev/null
# The commands by kind and state: a readable line, then the summary's fields as JSON.
{ read -r commands; read -r commands_json; } < <(python3 -c "
import json, collections
items = json.load(open('$run_dir/commands.json'))
items = items.get('commands', items) if isinstance(items, dict) else items
counts = dict(sorted(collections.Counter(c['request']['kind'] + ':' + c['state'] for c in items).items()))
print(' '.join(f'{k}={v}' for k, v in counts.items()))
print(json.dumps({'commands': counts, 'commands_ok': len(items) == 5 and all(c['state'] == 'succeeded' for c in items)}))
" 2>/dev/null)
[ -n "${commands_json:-}" ] || commands_json='{"commands": {}, "commands_ok": false}'

# The cycle's report; the last line is `SUMMARY {json}`. Returns 0 when the numbers are right.
report() { # processes-exit-status ("0" = all stopped cleanly, "running")
  echo
  echo "== collection cycle (slot $slot, profile $lookback_start … $slot)"
  echo "commands: ${commands:-none}"
  echo
  echo "\$ hesctl regions; hesctl meters status SIM00000001"
  cat "$run_dir/operators.txt"
  echo
  grep -v '^SUMMARY ' "$run_dir/verify.txt" | tail -n 30
  local summary_json
  summary_json=$(grep '^SUMMARY ' "$run_dir/verify.txt" | tail -n 1 | cut -d' ' -f2-)
  [ -n "$summary_json" ] || summary_json='{"ok": false}'
  python3 -c "
import json, sys
summary = json.loads(sys.argv[1])
summary.update(json.loads(sys.argv[2]))
if sys.argv[3] != 'running':
    summary['processes_stopped_cleanly'] = sys.argv[3] == '0'
summary['ok'] = bool(summary.get('ok')) and summary['commands_ok'] and summary.get('processes_stopped_cleanly', True)
print('SUMMARY ' + json.dumps(summary, sort_keys=True))
sys.exit(0 if summary['ok'] else 1)
" "$summary_json" "$commands_json" "$1"
}

stop_and_report() {
  echo
  echo "== stopping"
  cleanup
  summary
  report $?
  exit $?
}

if [ "$duration" = 0 ]; then
  report running
  trap stop_and_report INT TERM
  echo
  echo "== running until Ctrl-C (the report is printed again when it stops)"
  while true; do sleep 1; done
elif [ -n "$duration" ]; then
  echo "== running ${duration}s more"
  sleep "$duration"
fi
stop_and_report
