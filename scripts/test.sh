#!/usr/bin/env bash
# The full test suite. Installs what the tests need (a PostgreSQL server for the
# database-dump test) when it is missing and we are root, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."
if ! compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null; then
    if [ "$(id -u)" = 0 ]; then
        echo "installing postgresql for the database-dump test"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    else
        echo "the database-dump test needs a PostgreSQL server: sudo apt-get install postgresql" >&2
        exit 1
    fi
fi
# The end-to-end tests run the `cairn` binary, which `cargo test` does not build
# for another package: build it first.
cargo build --quiet -p cairn-cli
cargo test --workspace "$@"
