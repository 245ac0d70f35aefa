#!/usr/bin/env bash
# Checks gurux_read.py against gurux_meter.py (both Gurux) over loopback TCP: wrapper and HDLC
# (128-byte information fields), public and LLS associations, server PDU 1024 and 256 (GET blocks),
# a rejected password, and compares the profile range with --expect-profile; then the secure pair
# (gurux_meter.py --secure, gurux_read.py --client 1 --auth hls-gmac --security both, counter read
# first) and a wrong authentication key.
# Usage: Tests/Interop/selftest.sh          (exit 0 when every case passes)
set -uo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
PY="$("$HERE/run_interop.sh")" || exit 1
NOW=2026-11-26T20:07:00Z FROM=2026-11-25T00:00:00Z TO=2026-11-26T20:00:00Z
TMP="$(mktemp -d)"; trap 'rm -rf "$TMP"' EXIT
fail=0

start_meter() {   # args: meter options; sets MPID, PORT
    "$PY" "$HERE/gurux_meter.py" --port 0 --now "$NOW" "$@" >"$TMP/meter.out" 2>"$TMP/meter.err" &
    MPID=$!
    for _ in $(seq 100); do grep -q READY "$TMP/meter.out" 2>/dev/null && break; sleep 0.1; done
    PORT=$(awk '/^READY/{print $2}' "$TMP/meter.out")
}
stop_meter() { kill -TERM "$MPID" 2>/dev/null; wait "$MPID"; }

"$PY" "$HERE/gurux_meter.py" --expect-profile --now "$NOW" --from "$FROM" --to "$TO" >"$TMP/expect.json"

for framing in wrapper hdlc; do
  for pdu in 1024 256; do
    start_meter --framing "$framing" --max-pdu "$pdu" --password 12345678
    for client in 16 17; do
      pw=(); [ "$client" = 17 ] && pw=(--password 12345678)
      name="$framing pdu=$pdu client=$client"
      if "$PY" "$HERE/gurux_read.py" --port "$PORT" --framing "$framing" --client "$client" "${pw[@]}" \
            --max-info 128 --profile 1.0.99.1.0.255 --from "$FROM" --to "$TO" >"$TMP/read.json" 2>"$TMP/read.err" &&
         "$PY" - "$TMP/read.json" "$TMP/expect.json" <<'PYEOF'
import json, sys
r, e = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert r["profile"] == e, "profile differs"
assert r["clock"] == "2026-11-26T20:07:00Z", r["clock"]
assert r["objects"] == ["0.0.40.0.0.255", "0.0.1.0.0.255", "0.0.42.0.0.255", "1.0.1.8.0.255", "1.0.2.8.0.255",
                        "0.0.96.10.1.255", "0.0.96.3.10.255", "1.0.99.1.0.255"], r["objects"]
k = 1995248  # 2026-11-26T20:00:00Z (newest row at --now 20:07) / 900
assert r["registers"] == {"1.0.1.8.0.255": {"raw": 5 * k, "scaler": 0, "unit": 30},
                          "1.0.2.8.0.255": {"raw": 3 * k + k % 4, "scaler": -3, "unit": 30}}, r["registers"]
PYEOF
      then echo "ok   $name ($(python3 -c "import json,sys;print(len(json.load(open(sys.argv[1]))['profile']['rows']))" "$TMP/read.json") rows)"
      else echo "FAIL $name: $(cat "$TMP/read.err")"; fail=1; fi
    done
    # wrong password -> exit 2
    "$PY" "$HERE/gurux_read.py" --port "$PORT" --framing "$framing" --client 17 --password wrong >/dev/null 2>"$TMP/read.err"
    rc=$?
    if [ $rc = 2 ]; then echo "ok   $framing pdu=$pdu wrong password refused: $(cat "$TMP/read.err")"
    else echo "FAIL $framing pdu=$pdu wrong password: rc=$rc $(cat "$TMP/read.err")"; fail=1; fi
    stop_meter || { echo "FAIL meter exit status"; fail=1; }
  done
done

for framing in wrapper hdlc; do
  start_meter --framing "$framing" --max-pdu 256 --secure
  secure=(--port "$PORT" --framing "$framing" --client 1 --auth hls-gmac --security both --invocation-counter-from-meter)
  if "$PY" "$HERE/gurux_read.py" "${secure[@]}" --max-info 128 --profile 1.0.99.1.0.255 --from "$FROM" --to "$TO" \
        >"$TMP/read.json" 2>"$TMP/read.err" &&
     "$PY" -c 'import json,sys; r,e=json.load(open(sys.argv[1])),json.load(open(sys.argv[2])); assert r["profile"]==e and r["serverSystemTitle"]=="4752580000000001", r' \
        "$TMP/read.json" "$TMP/expect.json" 2>>"$TMP/read.err"
  then echo "ok   $framing secure hls-gmac (counter $(python3 -c "import json,sys;print(json.load(open(sys.argv[1]))['invocationCounter'])" "$TMP/read.json"))"
  else echo "FAIL $framing secure hls-gmac: $(tail -3 "$TMP/read.err")"; fail=1; fi
  "$PY" "$HERE/gurux_read.py" "${secure[@]}" --auth-key D0D1D2D3D4D5D6D7D8D9DADBDCDDDE00 >/dev/null 2>"$TMP/read.err"
  rc=$?
  if [ $rc = 2 ]; then echo "ok   $framing secure wrong key refused: $(tail -1 "$TMP/read.err")"
  else echo "FAIL $framing secure wrong key: rc=$rc $(tail -1 "$TMP/read.err")"; fail=1; fi
  stop_meter || { echo "FAIL meter exit status"; fail=1; }
done
exit $fail
