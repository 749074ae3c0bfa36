# Sourced by the scripts: TARGET_DIR, the cargo target directory (absolute), wherever it is:
# ./target, $CARGO_TARGET_DIR, or a build.target-dir of a cargo config. Caches and CI
# artefacts (virtualenvs, npm packages, screenshots) go under it too.
TARGET_DIR="$(cargo metadata --format-version 1 --no-deps \
    | python3 -c 'import json, sys; print(json.load(sys.stdin)["target_directory"])')"
mkdir -p "$TARGET_DIR"
