#!/usr/bin/env bash
# The suite's throughput against the reference server, side by side with the raw rate of a
# standard load generator (wrk) on the same server in the same run.
#
#   scripts/bench.sh                       # release build, wrk -t2 -c8 -d10s, suite seed 1
#   BENCH_CONNECTIONS=16 BENCH_DURATION=20s scripts/bench.sh
#   scripts/bench.sh --profile strict      # extra arguments go to `token-conformance run`
#
# One `token-conformance serve` (release build, loopback, free ports, `--rate-limit off`, a
# throw-away management token). Then, against it:
#   1. wrk on `GET /site` and on `PUT /access_tokens/:id` (a token the script creates, with a
#      valid body that keeps its name, flags and role), keep-alive, the documented headers;
#   2. the default run, `token-conformance run --base-url … --cda-url … --json …`: its
#      requests and duration are read from its JSON report.
# It prints both rates and the ratio suite/raw (the PUT rate is the endpoint under test).
# Settings: BENCH_THREADS (wrk threads, 2), BENCH_CONNECTIONS (wrk connections, 8: the suite's
# own concurrency), BENCH_DURATION (per wrk run, 10s), BENCH_SEED (the suite's seed, 1),
# BENCH_BIN (a prebuilt binary instead of `cargo build --release`). Files: target/bench/.
#
# The suite's default run lasts as long as its four `update.effect.*` histories, which hold
# each of their changes for 160 ms by design; their clients probe on a dense schedule (250
# probes per change and client), so the run is bound by CPU rather than by waiting: the
# script prints CPU per request on both sides and how busy the run kept the cores.
# Needs wrk (`apt-get install wrk`) and python3. The suite's exit status is not the
# benchmark's: a run with findings still counts its requests.
set -euo pipefail
cd "$(dirname "$0")/.."

THREADS="${BENCH_THREADS:-2}"
CONNECTIONS="${BENCH_CONNECTIONS:-8}"
DURATION="${BENCH_DURATION:-10s}"
SEED="${BENCH_SEED:-1}"
WORK="${CARGO_TARGET_DIR:-target}/bench"

command -v wrk >/dev/null || { echo "error: wrk is not installed (apt-get install wrk)" >&2; exit 2; }

if [ -z "${BENCH_BIN:-}" ]; then
    echo "== building (release)"
    cargo build --quiet --release --bin token-conformance
    BIN="${CARGO_TARGET_DIR:-target}/release/token-conformance"
else
    BIN="$BENCH_BIN"
fi

mkdir -p "$WORK"
CONFORMANCE_API_TOKEN="bench-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export CONFORMANCE_API_TOKEN

"$BIN" serve --addr 127.0.0.1:0 --cda-addr 127.0.0.1:0 --rate-limit off >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT

CMA="" CDA=""
for _ in $(seq 1 100); do
    CMA="$(sed -n 's/^CMA: //p' "$WORK/serve.log")"
    CDA="$(sed -n 's/^CDA: //p' "$WORK/serve.log")"
    [ -n "$CMA" ] && [ -n "$CDA" ] && break
    kill -0 "$SERVER" 2>/dev/null || { cat "$WORK/serve.log" >&2; exit 2; }
    sleep 0.1
done
[ -n "$CMA" ] || { echo "error: the server printed no URL in 10 s" >&2; exit 2; }

# A token of its own for wrk's PUTs, and the body that updates it to what it already is.
python3 - "$CMA" "$WORK/put.lua" <<'PY'
import json, os, sys, urllib.request
cma, out = sys.argv[1], sys.argv[2]
headers = {"Authorization": "Bearer " + os.environ["CONFORMANCE_API_TOKEN"],
           "X-Api-Version": "3", "Accept": "application/json",
           "Content-Type": "application/vnd.api+json"}
def call(method, path, body=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(cma + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=10) as answer:
        return json.load(answer)
role = call("GET", "/roles")["data"][0]["id"]
attributes = {"name": "bench-put-target", "can_access_cda": True,
              "can_access_cda_preview": False, "can_access_cma": True}
role_rel = {"role": {"data": {"type": "role", "id": role}}}
token = call("POST", "/access_tokens", {"data": {"type": "access_token",
             "attributes": attributes, "relationships": role_rel}})["data"]["id"]
body = json.dumps({"data": {"type": "access_token", "id": token,
                   "attributes": attributes, "relationships": role_rel}})
call("PUT", "/access_tokens/" + token, json.loads(body))
lua = f"""wrk.method = "PUT"
wrk.path = "/access_tokens/{token}"
wrk.body = {json.dumps(body)}
wrk.headers["Content-Type"] = "application/vnd.api+json"
"""
open(out, "w").write(lua)
PY

WRK_HEADERS=(-H "Authorization: Bearer $CONFORMANCE_API_TOKEN" -H "X-Api-Version: 3" -H "Accept: application/json")
rate_of() { sed -n 's/^Requests\/sec: *//p' | tr -d ' '; }
# CPU seconds (user + sys) the server has used so far, from /proc (clock ticks).
TICK="$(getconf CLK_TCK)"
server_cpu() { awk -v t="$TICK" '{ printf "%.3f", ($14 + $15) / t }' "/proc/$SERVER/stat"; }
# `time` (bash's keyword) writes "user sys" of the command it times to the file named by $1.
TIMEFORMAT='%U %S'

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION GET $CMA/site"
wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "${WRK_HEADERS[@]}" "$CMA/site" >"$WORK/wrk-get.txt"
GET_RPS="$(rate_of <"$WORK/wrk-get.txt")"
grep -E "Requests/sec|Non-2xx|Socket errors" "$WORK/wrk-get.txt" || true

echo "== wrk -t$THREADS -c$CONNECTIONS -d$DURATION PUT $CMA/access_tokens/:id"
S0="$(server_cpu)"
{ time wrk -t"$THREADS" -c"$CONNECTIONS" -d"$DURATION" "${WRK_HEADERS[@]}" -s "$WORK/put.lua" "$CMA" >"$WORK/wrk-put.txt"; } 2>"$WORK/wrk-put.cpu"
S1="$(server_cpu)"
WRK_SERVER_CPU="$(awk -v a="$S0" -v b="$S1" 'BEGIN { print b - a }')"
WRK_CLIENT_CPU="$(awk '{ print $1 + $2 }' "$WORK/wrk-put.cpu")"
WRK_REQUESTS="$(sed -n 's/^ *\([0-9]*\) requests in.*/\1/p' "$WORK/wrk-put.txt")"
PUT_RPS="$(rate_of <"$WORK/wrk-put.txt")"
grep -E "Requests/sec|Non-2xx|Socket errors" "$WORK/wrk-put.txt" || true

echo "== token-conformance run --base-url $CMA --cda-url $CDA --seed $SEED $*"
rm -f "$WORK/report.json"
S0="$(server_cpu)"
{ time "$BIN" run --base-url "$CMA" --cda-url "$CDA" --seed "$SEED" --snapshot-dir "$WORK/snapshots" \
    --json "$WORK/report.json" "$@" >"$WORK/run.log" 2>&1 || true; } 2>"$WORK/run.cpu"
S1="$(server_cpu)"
SUITE_SERVER_CPU="$(awk -v a="$S0" -v b="$S1" 'BEGIN { print b - a }')"
SUITE_CLIENT_CPU="$(awk '{ print $1 + $2 }' "$WORK/run.cpu")"
[ -s "$WORK/report.json" ] || { echo "error: the run wrote no report:" >&2; tail -20 "$WORK/run.log" >&2; exit 2; }

python3 - "$WORK/report.json" "$GET_RPS" "$PUT_RPS" "$(nproc)" "$SUITE_CLIENT_CPU" "$SUITE_SERVER_CPU" \
    "$WRK_CLIENT_CPU" "$WRK_SERVER_CPU" "${WRK_REQUESTS:-0}" <<'PY'
import json, sys
report = json.load(open(sys.argv[1]))
get_rps, put_rps = float(sys.argv[2]), float(sys.argv[3])
cores = int(sys.argv[4])
suite_client, suite_server, wrk_client, wrk_server = (float(x) for x in sys.argv[5:9])
wrk_requests = int(sys.argv[9])
requests, ms = report["requests"], report["duration_ms"]
suite = requests * 1000.0 / max(ms, 1)
print(f"suite: {requests} requests in {ms / 1000:.2f} s = {suite:.0f} requests/s")
print(f"raw (wrk): GET /site {get_rps:.0f} requests/s, PUT /access_tokens/:id {put_rps:.0f} requests/s")
print(f"ratio suite/raw: {suite / put_rps:.3f} (PUT, the endpoint under test), {suite / get_rps:.3f} (GET /site)")
# Where the time goes: CPU per request on each side (user + sys), and the rate the suite could
# reach if it kept every core busy with nothing but its requests (no holds, no waiting).
us = lambda cpu, n: cpu * 1e6 / max(n, 1)
c, s = us(suite_client, requests), us(suite_server, requests)
print(f"CPU per request: suite {c:.0f} us + server {s:.0f} us (the suite's mix); "
      f"wrk {us(wrk_client, wrk_requests):.0f} us + server {us(wrk_server, wrk_requests):.0f} us (PUT)")
ceiling = cores * 1e6 / max(c + s, 1)
print(f"CPU-bound ceiling on {cores} cores: {ceiling:.0f} requests/s, a ratio of {ceiling / put_rps:.3f}; "
      f"the run used {(suite_client + suite_server) / (ms / 1000) / cores:.0%} of the cores")
PY
