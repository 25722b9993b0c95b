#!/usr/bin/env bash
# The full test suite. Installs what the tests need (a PostgreSQL server for the
# database-dump, drill and runbook tests, strace for the crash tests, SeaweedFS
# for the S3 tests, OpenSSH for the SFTP tests, promtool for the metrics test,
# MariaDB and Redis for the recipe tests, man for the manual page test,
# fuse3 for the mount test, Chromium and chromedriver for the dashboard test)
# when it is missing and we are root, then runs every test.
set -euo pipefail
cd "$(dirname "$0")/.."

source scripts/tools.sh
need strace "the crash tests" command -v strace
need postgresql "the database-dump test" compgen -G "/usr/lib/postgresql/*/bin/initdb"
need openssh-client "the SFTP tests" command -v ssh-keygen
need openssh-server "the SFTP tests" test -x /usr/sbin/sshd
need prometheus "the metrics test (promtool)" command -v promtool
need mariadb-server "the MariaDB recipe test" test -x /usr/sbin/mariadbd
need redis-server "the Redis recipe test" command -v redis-server
need man-db "the manual page test" command -v man
need fuse3 "the mount test" command -v fusermount3
need chromium "the dashboard's browser test" command -v chromium
need chromium-driver "the dashboard's browser test" command -v chromedriver
install_seaweedfs

# The end-to-end tests run the `cairn` binary and the library's examples,
# which `cargo test` does not build for another package: build them first.
cargo build --quiet -p cairn-cli
cargo build --quiet -p cairn-engine --examples
cargo test --workspace "$@"
