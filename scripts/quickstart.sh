#!/usr/bin/env bash
# Builds cairn, then backs up this source tree into a new local repository,
# restores it, and checks the restored copy is identical.
set -euo pipefail
cd "$(dirname "$0")/.."
# The development build: quicker to make than the release build (which
# `cargo install` makes), and the one the test suite uses next.
cargo build --quiet -p cairn-cli
cairn="$PWD/target/debug/cairn"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export CAIRN_REPOSITORY="$work/repo" CAIRN_PASSWORD="quick start demo password"

"$cairn" init
"$cairn" backup repo-format engine cli --tag quickstart
"$cairn" snapshots
"$cairn" ls latest "$PWD/engine/src" | head -5
"$cairn" restore latest --target "$work/restored"
for dir in repo-format engine cli; do
    diff -r "$dir" "$work/restored$PWD/$dir"
done
echo "quick start: backup and restore round trip OK (restored tree identical)"
