#!/usr/bin/env bash
# The HTML matrix in a real browser: builds a matrix of the embedded reference server, a
# faulty `token-conformance serve` (so that there are failing cells) and a target whose token
# variable is unset (a "not tested" column), opens the page in headless Chromium with
# JavaScript off, keeps a screenshot, and follows every failing cell's link: the element it
# points at must exist and be on screen after the click. Also checks that the table uses
# the window's width.
#
#   scripts/matrix-screenshot.sh          # screenshot: <target dir>/matrix-screenshot.png
#
# Needs Chromium at $CHROMIUM (default /usr/bin/chromium; Debian's `chromium` package) and
# installs playwright-core (pinned, from npm) into the cargo target directory when missing.
# The page, the targets file and the logs: <target dir>/matrix-screenshot/.
set -euo pipefail
cd "$(dirname "$0")/.."

PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-1.65.1}"
CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
FAULT="${FAULT:-role-dropped-when-omitted}"
. scripts/target-dir.sh
PW_DIR="$TARGET_DIR/playwright-core-$PLAYWRIGHT_VERSION"
WORK="$TARGET_DIR/matrix-screenshot"
SHOT="$TARGET_DIR/matrix-screenshot.png"

if [ ! -x "$CHROMIUM" ]; then
    echo "error: no Chromium at $CHROMIUM (apt-get install chromium, or set CHROMIUM)" >&2
    exit 2
fi
if [ "$(node -p "try { require('$PW_DIR/node_modules/playwright-core/package.json').version } catch (e) { '' }")" != "$PLAYWRIGHT_VERSION" ]; then
    echo "== installing playwright-core $PLAYWRIGHT_VERSION into $PW_DIR"
    mkdir -p "$PW_DIR"
    npm install --prefix "$PW_DIR" --no-save --no-audit --no-fund --loglevel=error \
        "playwright-core@$PLAYWRIGHT_VERSION"
fi

echo "== building"
cargo build --quiet --bin token-conformance
BIN="$TARGET_DIR/debug/token-conformance"

rm -rf "$WORK"
mkdir -p "$WORK"

# The faulty server's own throw-away token, passed to the matrix through token_env.
MATRIX_SERVE_TOKEN="matrix-$(od -An -tx1 -N16 /dev/urandom | tr -d ' \n')"
export MATRIX_SERVE_TOKEN
unset MATRIX_UNSET_TOKEN
CONFORMANCE_API_TOKEN="$MATRIX_SERVE_TOKEN" "$BIN" serve --addr 127.0.0.1:0 --cda-addr 127.0.0.1:0 \
    --rate-limit off --fault "$FAULT" >"$WORK/serve.log" 2>&1 &
SERVER=$!
PROFILE_DIR=""
trap 'kill "$SERVER" 2>/dev/null; wait "$SERVER" 2>/dev/null || true; [ -n "$PROFILE_DIR" ] && rm -rf "$PROFILE_DIR"' EXIT

CMA="" CDA=""
for _ in $(seq 1 100); do
    CMA="$(sed -n 's/^CMA: //p' "$WORK/serve.log")"
    CDA="$(sed -n 's/^CDA: //p' "$WORK/serve.log")"
    [ -n "$CMA" ] && [ -n "$CDA" ] && break
    if ! kill -0 "$SERVER" 2>/dev/null; then
        echo "the faulty server did not start:" >&2
        cat "$WORK/serve.log" >&2
        exit 2
    fi
    sleep 0.1
done
if [ -z "$CMA" ]; then
    echo "the faulty server printed no URL in 10 s:" >&2
    cat "$WORK/serve.log" >&2
    exit 2
fi

cat >"$WORK/targets.toml" <<TOML
[[target]]
name = "reference"
embedded = true

[[target]]
name = "faulty-serve"
base_url = "$CMA"
cda_url = "$CDA"
token_env = "MATRIX_SERVE_TOKEN"

[[target]]
name = "no-token"
base_url = "https://staging.example/cma"
token_env = "MATRIX_UNSET_TOKEN"
TOML

echo "== matrix: reference, faulty-serve ($FAULT), no-token"
"$BIN" matrix "$WORK/targets.toml" --seed 1 --cases 4 \
    --html "$WORK/matrix.html" --markdown "$WORK/matrix.md" >"$WORK/matrix.log" 2>&1 || {
    echo "error: matrix failed:" >&2
    cat "$WORK/matrix.log" >&2
    exit 1
}

PROFILE_DIR="$(mktemp -d)"
echo "== Chromium ($("$CHROMIUM" --version 2>/dev/null || echo unknown)): screenshot and links"
NODE_PATH="$PW_DIR/node_modules" node - "$WORK/matrix.html" "$SHOT" "$CHROMIUM" "$PROFILE_DIR" <<'JS'
const { chromium } = require('playwright-core');
const path = require('path');
const [page_file, shot, executablePath, userDataDir] = process.argv.slice(2);

function fail(message) {
  console.error(`error: ${message}`);
  process.exitCode = 1;
}

(async () => {
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath,
    headless: true,
    chromiumSandbox: false,
    // The page must work without script.
    javaScriptEnabled: false,
    viewport: { width: 1400, height: 900 },
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
           '--disable-background-networking', '--disable-component-update', '--disable-sync'],
    timeout: 60000,
  });
  try {
    const page = context.pages()[0] || await context.newPage();
    page.setDefaultTimeout(15000);
    // Nothing but the file itself may load.
    const requests = [];
    page.on('request', (r) => requests.push(r.url()));
    const url = 'file://' + path.resolve(page_file);
    await page.goto(url);
    await page.screenshot({ path: shot, fullPage: true });
    console.log(`  screenshot: ${shot}`);

    const others = requests.filter((u) => !u.startsWith('file://'));
    if (others.length) fail(`the page loaded ${others.join(', ')}`);

    const table = await page.locator('table.matrix').boundingBox();
    if (!table || table.width < 0.9 * (1400 - 48)) {
      fail(`the matrix is ${table && table.width} px wide in a 1400 px window`);
    }

    const links = page.locator('td.status.fail a');
    const count = await links.count();
    if (count === 0) fail('no failing cell: the faulty server should fail some clause');
    for (let i = 0; i < count; i++) {
      const link = links.nth(i);
      const href = await link.getAttribute('href');
      if (!href || !href.startsWith('#')) { fail(`failing cell ${i} links to ${href}`); continue; }
      const id = href.slice(1);
      await page.goto(url);
      await links.nth(i).click();
      const target = page.locator(`[id="${id}"]`);
      if ((await target.count()) !== 1) { fail(`${href}: ${await target.count()} elements`); continue; }
      if (!(await target.isVisible())) { fail(`${href}: not visible`); continue; }
      if (!page.url().endsWith(href)) fail(`after the click the page is at ${page.url()}`);
      const box = await target.boundingBox();
      if (!box || box.y < -1 || box.y > 900) fail(`${href}: at y=${box && box.y}, off screen after the click`);
      console.log(`  ${href}: followed, visible at y=${Math.round(box.y)}`);
    }
    const untested = page.locator('td.status.untested');
    if ((await untested.count()) !== 1) fail(`${await untested.count()} "not tested" cells, expected 1`);
    console.log(`  ${count} failing cells followed; 1 "not tested" column`);
  } finally {
    await context.close();
  }
})().catch((err) => fail(err.stack || String(err)));
JS
echo "== matrix screenshot: ok ($SHOT)"
