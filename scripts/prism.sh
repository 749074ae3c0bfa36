#!/usr/bin/env bash
# The suite against a mock of its own contract: Stoplight Prism (`prism mock`, pinned, from
# npm) serves the document of `token-conformance openapi`, and the suite runs against it. A
# mock answers with made-up data and stores nothing, so the run must complete (the export is
# one a mock can serve, and the preflight accepts it) and end with exit 1, and the clauses about
# stored state, roles, secrets and authentication must fail or be inconclusive, each with a
# reason: none may pass. Both of Prism's modes are run: static (answers from the schemas, the
# same ids every time) and --dynamic (random data).
#
#   scripts/prism.sh
#   PRISM_VERSION=5.14.2 scripts/prism.sh
#
# Installs Prism into the cargo target directory when missing (the npm registry must be
# reachable the first time). Reports and logs: <target dir>/prism-run/.
set -euo pipefail
cd "$(dirname "$0")/.."

# 5.14.2: the newest release that runs on Node 18 and 20 (5.15 and later need Node 24).
PRISM_VERSION="${PRISM_VERSION:-5.14.2}"
. scripts/target-dir.sh
PRISM_DIR="$TARGET_DIR/prism-$PRISM_VERSION"
PRISM="$PRISM_DIR/node_modules/.bin/prism"
WORK="$TARGET_DIR/prism-run"

if ! "$PRISM" --version 2>/dev/null | grep -qxF "$PRISM_VERSION"; then
    echo "== installing @stoplight/prism-cli $PRISM_VERSION into $PRISM_DIR"
    mkdir -p "$PRISM_DIR"
    npm install --prefix "$PRISM_DIR" --no-save --no-audit --no-fund --loglevel=error \
        "@stoplight/prism-cli@$PRISM_VERSION"
fi

echo "== building"
cargo build --quiet --bin token-conformance
BIN="$TARGET_DIR/debug/token-conformance"

rm -rf "$WORK"
mkdir -p "$WORK"
"$BIN" openapi >"$WORK/openapi.json"

PRISM_PID=""
stop_prism() {
    if [ -n "$PRISM_PID" ]; then
        kill "$PRISM_PID" 2>/dev/null || true
        wait "$PRISM_PID" 2>/dev/null || true
        PRISM_PID=""
    fi
}
trap stop_prism EXIT

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# mock MODE [prism flags...]: serve the export, run the suite against it, check the report.
mock() {
    local mode="$1"
    shift
    local port log
    port="$(free_port)"
    log="$WORK/prism-$mode.log"
    "$PRISM" mock --host 127.0.0.1 --port "$port" "$@" "$WORK/openapi.json" >"$log" 2>&1 &
    PRISM_PID=$!
    local up=""
    for _ in $(seq 1 300); do
        if grep -q "Prism is listening" "$log"; then
            up=yes
            break
        fi
        if ! kill -0 "$PRISM_PID" 2>/dev/null; then
            break
        fi
        sleep 0.1
    done
    if [ -z "$up" ]; then
        echo "prism ($mode) did not start in 30 s:" >&2
        cat "$log" >&2
        exit 2
    fi
    echo "== the suite against prism mock ($mode) at http://127.0.0.1:$port"
    local status=0
    # Any token will do: Prism checks that one is sent, not which.
    CONFORMANCE_API_TOKEN="prism-mock-$(od -An -tx1 -N8 /dev/urandom | tr -d ' \n')" \
        "$BIN" run --base-url "http://127.0.0.1:$port" --seed 1 --deadline 5m \
        --target-name "prism mock ($mode)" \
        --json "$WORK/report-$mode.json" >"$WORK/run-$mode.log" 2>&1 || status=$?
    stop_prism
    tail -n 3 "$WORK/run-$mode.log"
    if [ "$status" -ne 1 ]; then
        echo "error: the run against prism ($mode) ended with exit $status, not 1 (a violation):" >&2
        tail -n 40 "$WORK/run-$mode.log" >&2
        exit 1
    fi
    python3 - "$WORK/report-$mode.json" "$mode" <<'PY'
import json, sys

path, mode = sys.argv[1], sys.argv[2]
with open(path, encoding="utf-8") as f:
    report = json.load(f)
# The clauses a mock that stores nothing cannot keep: stored state, roles, secrets, auth.
WATCHED = ("update.applies", "update.isolation", "update.role.", "update.effect.role",
           "update.secret.", "update.token.visibility", "update.auth")
problems, seen = [], 0
for clause in report["clauses"]:
    cid = clause["id"]
    if not any(cid == w or (w.endswith(".") and cid.startswith(w)) for w in WATCHED):
        continue
    seen += 1
    if clause["status"] not in ("fail", "inconclusive"):
        problems.append(f"{cid} is {clause['status']}, not fail or inconclusive")
    for check in clause["checks"]:
        if check["status"] in ("fail", "inconclusive") and not check.get("message", "").strip():
            problems.append(f"{cid}::{check['name']} is {check['status']} without a reason")
        if check["status"] == "pass":
            problems.append(f"{cid}::{check['name']} passed against a mock")
    print(f"  {clause['status']:<12} {cid}")
if seen < 8:
    problems.append(f"only {seen} of the watched clauses are in the report")
if problems:
    print(f"error: prism ({mode}):", *problems, sep="\n  ", file=sys.stderr)
    sys.exit(1)
summary = report["summary"]
print(f"  prism ({mode}): {seen} state, role, secret and auth clauses fail or are inconclusive"
      f" ({summary['pass']} pass, {summary['fail']} fail, {summary['inconclusive']} inconclusive overall)")
PY
}

mock static
mock dynamic --dynamic --seed 1
echo "== prism: ok"
