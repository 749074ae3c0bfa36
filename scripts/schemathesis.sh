#!/usr/bin/env bash
# Schemathesis against the reference server, driven by the exported OpenAPI document: shows
# that other tools accept the contract of `token-conformance openapi`, and that the reference
# server keeps it.
#
#   scripts/schemathesis.sh            # bounded run: 20 examples per operation, seed 1
#   ST_MAX_EXAMPLES=100 ST_SEED=7 scripts/schemathesis.sh
#   scripts/schemathesis.sh --checks all   # extra arguments go to `st run`
#
# Installs Schemathesis (pinned) into a virtualenv under the cargo target directory when it is
# missing (PyPI must be reachable the first time), builds the binary, starts `token-conformance serve` on free
# loopback ports with a throw-away management token and no rate limit, runs `st run`, checks
# that the management token still works, stops the server and exits with st's status (3 when
# st passed but the run locked itself out). Configuration: scripts/schemathesis.toml.
set -euo pipefail
cd "$(dirname "$0")/.."

ST_VERSION="${ST_VERSION:-4.32.5}"
ST_MAX_EXAMPLES="${ST_MAX_EXAMPLES:-20}"
ST_SEED="${ST_SEED:-1}"
. scripts/target-dir.sh
VENV="$TARGET_DIR/schemathesis-venv"
WORK="$TARGET_DIR/schemathesis"

if ! "$VENV/bin/st" --version 2>/dev/null | grep -qF "$ST_VERSION"; then
    echo "== installing schemathesis $ST_VERSION into $VENV"
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$ST_VERSION"
fi

echo "== building"
cargo build --quiet --bin token-conformance
BIN="$TARGET_DIR/debug/token-conformance"

mkdir -p "$WORK"
"$BIN" openapi >"$WORK/openapi.json"

# A fresh secret for this server only: never the caller's CONFORMANCE_API_TOKEN, since it
# goes on st's command line.
CONFORMANCE_API_TOKEN="schemathesis-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export CONFORMANCE_API_TOKEN

# Port 0: the server picks free ports and prints its URLs.
"$BIN" serve --addr 127.0.0.1:0 --cda-addr 127.0.0.1:0 --rate-limit off >"$WORK/serve.log" 2>&1 &
SERVER=$!
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true' EXIT

CMA=""
for _ in $(seq 1 100); do
    CMA="$(sed -n 's/^CMA: //p' "$WORK/serve.log")"
    [ -n "$CMA" ] && break
    if ! kill -0 "$SERVER" 2>/dev/null; then
        echo "the reference server did not start:" >&2
        cat "$WORK/serve.log" >&2
        exit 2
    fi
    sleep 0.1
done
if [ -z "$CMA" ]; then
    echo "the reference server printed no URL in 10 s:" >&2
    cat "$WORK/serve.log" >&2
    exit 2
fi
echo "== st run against $CMA ($ST_MAX_EXAMPLES examples per operation, seed $ST_SEED)"

# From $WORK, so that Hypothesis's and Schemathesis's caches land under the target directory.
ROOT="$PWD"
status=0
(cd "$WORK" && "$VENV/bin/st" --config-file "$ROOT/scripts/schemathesis.toml" run openapi.json \
    --url "$CMA" \
    -H "Authorization: Bearer $CONFORMANCE_API_TOKEN" \
    -H "X-Api-Version: 3" \
    --max-examples "$ST_MAX_EXAMPLES" \
    --seed "$ST_SEED" \
    --generation-database none \
    --request-timeout 10 \
    --no-color \
    "$@") || status=$?

# The run must not have locked itself out (see scripts/schemathesis.toml): otherwise its end
# tested nothing but 401s.
site_status="$(python3 - "$CMA/site" <<'PY' || true
import os, sys, urllib.error, urllib.request
request = urllib.request.Request(sys.argv[1], headers={
    "Authorization": "Bearer " + os.environ["CONFORMANCE_API_TOKEN"],
    "X-Api-Version": "3", "Accept": "application/json"})
try:
    print(urllib.request.urlopen(request, timeout=10).status)
except urllib.error.HTTPError as err:
    print(err.code)
except OSError:
    print("unreachable")
PY
)"
if [ "$site_status" != "200" ]; then
    echo "error: after the run the management token gets $site_status on GET /site: the run locked itself out, so its results are incomplete" >&2
    [ "$status" -eq 0 ] && status=3
fi
exit "$status"
