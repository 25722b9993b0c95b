#!/usr/bin/env bash
# Measures cairn's repository parameters against each other on one real tree:
# zstd level, average chunk size and pack size, one changed from the defaults
# at a time. Prints a table of first-backup time and peak memory, restore
# time, repository size and blob count (the index holds about 31 bytes of
# memory per blob). The defaults in repo-format/src/config.rs were chosen
# from this table; benches/README.md keeps the last run.
#
#   benches/defaults.sh      # about 5 minutes on 2 cores
#
# Environment: CORPUS_TREE (default: the Rust toolchain), WORK (scratch, on the
# disk to measure; default a new directory under /var/tmp). Restores go to
# /dev/shm when it exists, so that the file system's handling of many
# creations after many deletions does not swamp the differences.
set -euo pipefail
cd "$(dirname "$0")/.."
CORPUS_TREE=${CORPUS_TREE:-$(rustc --print sysroot)}
WORK=${WORK:-$(mktemp -d /var/tmp/cairn-defaults.XXXXXX)}
OUT=$( [ -d /dev/shm ] && mktemp -d /dev/shm/cairn-defaults.XXXXXX || mktemp -d "$WORK/out.XXXXXX")
trap 'rm -rf "$WORK" "$OUT"' EXIT
export CAIRN_PASSWORD="defaults password"
cargo build --release --quiet -p cairn-cli
CAIRN="$PWD/target/release/cairn"
find "$CORPUS_TREE" -type f -exec cat {} + >/dev/null # warm the page cache

# name | init options
configs=(
    "defaults (zstd 3, 1 MiB chunks, 16 MiB packs)|"
    "zstd 1|--compression 1"
    "zstd 6|--compression 6"
    "zstd 9|--compression 9"
    "256 KiB chunks|--chunk-size-kib 256"
    "512 KiB chunks|--chunk-size-kib 512"
    "2 MiB chunks|--chunk-size-kib 2048"
    "4 MiB chunks|--chunk-size-kib 4096"
    "4 MiB packs|--pack-size-mib 4"
    "64 MiB packs|--pack-size-mib 64"
)

timed() { # prints "seconds peak-MiB"
    /usr/bin/time -f "%e %M" "$@" 2>&1 >/dev/null | tail -1 | awk '{printf "%.2f %.0f", $1, $2/1024}'
}

echo "corpus: $CORPUS_TREE ($(du -sh --apparent-size "$CORPUS_TREE" | cut -f1), $(find "$CORPUS_TREE" -type f | wc -l) files)"
echo
echo "| setting | first backup s (MiB RSS) | restore s | repository MiB | blobs | index memory MiB |"
echo "|---|---:|---:|---:|---:|---:|"
for c in "${configs[@]}"; do
    name=${c%%|*}
    opts=${c#*|}
    repo="$WORK/repo"
    # shellcheck disable=SC2086 # opts is a list of words
    "$CAIRN" -r "$repo" init --kdf-memory-kib 8192 $opts >/dev/null
    read -r bsecs brss <<<"$(timed "$CAIRN" -r "$repo" --no-progress backup "$CORPUS_TREE")"
    read -r rsecs _ <<<"$(timed "$CAIRN" -r "$repo" --no-progress restore latest --target "$OUT/r")"
    mib=$(du -sk "$repo" | awk '{printf "%.1f", $1/1024}')
    blobs=$("$CAIRN" -r "$repo" stats | awk '/unique (data|tree) blobs/ {n += $NF} END {print n}')
    index=$(awk -v b="$blobs" 'BEGIN {printf "%.2f", b * 31 / 1048576}')
    echo "| $name | $bsecs ($brss) | $rsecs | $mib | $blobs | $index |"
    rm -rf "$repo" "$OUT/r"
done
