#!/usr/bin/env bash
# Backup and restore of a tree to a real S3 server (SeaweedFS on loopback)
# with 0 and 50 ms added to every request, cairn beside restic and rustic
# in one run; prints a Markdown table (see benches/RESULTS.md).
#
#   benches/remote.sh            # the Rust toolchain, about 1.4 GB
#   benches/remote.sh --quick    # a few thousand files: checks the script
#   benches/remote.sh DIR        # another tree
#
# Peers: `apt-get install restic`; `cargo install rustic-rs` (slow build,
# benchmarks only). A peer that is not installed is skipped with a note.
set -euo pipefail
cd "$(dirname "$0")/.."
# SeaweedFS as the tests install it.
source scripts/tools.sh
install_seaweedfs
cargo build --release --quiet -p cairn-cli
# The server's data and the restores go to memory: file creation on these
# machines' disks varies by a factor of 3 from run to run.
export TMPDIR=${TMPDIR:-/dev/shm}
export CAIRN_BIN=$PWD/target/release/cairn
cargo bench --quiet -p cairn-benches --bench remote -- "$@"
