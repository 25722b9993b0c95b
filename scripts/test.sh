#!/usr/bin/env bash
# The full test suite. Installs what the tests need (a PostgreSQL server for the
# database-dump test, strace for the crash tests) when it is missing and we are
# root, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

# need PACKAGE WHAT PRESENT...: installs Debian's PACKAGE (needed for WHAT)
# unless the command PRESENT... succeeds.
need() {
    local package=$1 what=$2
    shift 2
    "$@" >/dev/null 2>&1 && return
    if [ "$(id -u)" != 0 ]; then
        echo "$what needs $package: sudo apt-get install $package" >&2
        exit 1
    fi
    echo "installing $package for $what"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$package" >/dev/null
}
need strace "the crash tests" command -v strace
need postgresql "the database-dump test" compgen -G "/usr/lib/postgresql/*/bin/initdb"

# The end-to-end tests run the `cairn` binary, which `cargo test` does not build
# for another package: build it first.
cargo build --quiet -p cairn-cli
cargo test --workspace "$@"
