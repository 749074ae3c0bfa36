#!/usr/bin/env bash
# What the dense probing of the `update.effect.*` histories buys: a stale decision that lasts
# 2 ms, 70 ms after each change of `can_access_cma` (stale-decision-blip.patch, a fault kept out
# of the catalogue: the staging profile's two probes per change cannot see it, and every
# catalogued fault must be killed under staging too), against the dense schedule (250 probes
# per change and client, the full budget) and the sparse one it replaced (8).
#
#   bash scripts/experiments/stale-blip.sh          # seeds 1 to 20 (two release builds, ~6 min)
#   SEEDS=50 bash scripts/experiments/stale-blip.sh
#
# It builds in a temporary worktree of HEAD (and its own target directory under target/), so
# the work tree is left as it is. Recorded in the README (Performance): dense 20/20, sparse 9/20.
set -euo pipefail
cd "$(dirname "$0")/../.."

SEEDS="${SEEDS:-20}"
ROOT="$(pwd)"
TARGET="${CARGO_TARGET_DIR:-$ROOT/target}/stale-blip"
TREE="$(mktemp -d)"
trap 'git -C "$ROOT" worktree remove --force "$TREE" >/dev/null 2>&1 || rm -rf "$TREE"' EXIT

git worktree add --quiet --detach "$TREE" HEAD
git -C "$TREE" apply "$ROOT/scripts/experiments/stale-decision-blip.patch"

score() {
    local bin="$1" killed=0
    for seed in $(seq 1 "$SEEDS"); do
        if "$bin" mutants --fault stale-decision-blip --seed "$seed" 2>&1 | grep -q "1/1 faults killed"; then
            killed=$((killed + 1))
        fi
    done
    echo "$killed"
}

grep -q "history_probes: 250," "$TREE/src/checks/mod.rs" ||
    { echo "error: the full budget no longer has history_probes: 250; update this script" >&2; exit 2; }
echo "== dense schedule (250 probes per change and client): building"
(cd "$TREE" && CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release --bin token-conformance)
cp "$TARGET/release/token-conformance" "$TARGET/dense"
DENSE="$(score "$TARGET/dense")"

sed -i 's/history_probes: 250,/history_probes: 8,/' "$TREE/src/checks/mod.rs"
echo "== sparse schedule (8 probes per change and client): building"
(cd "$TREE" && CARGO_TARGET_DIR="$TARGET" cargo build --quiet --release --bin token-conformance)
SPARSE="$(score "$TARGET/release/token-conformance")"

echo "stale-decision-blip killed by update.effect.cma: dense $DENSE/$SEEDS seeds, sparse $SPARSE/$SEEDS seeds"
