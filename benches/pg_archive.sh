#!/usr/bin/env bash
# WAL archiving cost: `cairn pg archive-wal` beside `pgbackrest archive-push`
# on the same 64 segments of real WAL (pgbench against a throw-away
# PostgreSQL cluster), each archiver run once per segment as PostgreSQL's
# archive_command runs it, into a local repository. Prints a Markdown table
# (see benches/RESULTS.md).
#
#   benches/pg_archive.sh            # 3 rounds
#   benches/pg_archive.sh --quick    # 1 round of 8 segments: checks the script
#
# Runs as root (the server and both archivers run as `postgres`); installs
# Debian's `postgresql` and `pgbackrest` when they are missing.
set -euo pipefail
cd "$(dirname "$0")/.."
rounds=3 segments=64
if [ "${1:-}" = --quick ]; then rounds=1 segments=8; fi
[ "$(id -u)" = 0 ] || { echo "pg_archive.sh: run as root" >&2; exit 1; }
for pkg in postgresql pgbackrest; do
  dpkg -s "$pkg" >/dev/null 2>&1 || apt-get install -y -q "$pkg" >/dev/null
done
cargo build --release --quiet -p cairn-cli
B=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
T=$(mktemp -d "${TMPDIR:-/tmp}/pg-archive.XXXXXX")
chmod 755 "$T" && chown postgres "$T"
P="runuser -u postgres --"
port=25433
cleanup() {
  $P "$B/pg_ctl" -D "$T/pg" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$T"
}
trap cleanup EXIT
install -m 755 target/release/cairn "$T/cairn"
install -d -o postgres "$T/wal" "$T/work"

# A cluster whose archive_command only copies, to collect real WAL.
$P "$B/initdb" -D "$T/pg" -U postgres -A trust >/dev/null
cat >> "$T/pg/postgresql.conf" <<EOF
port = $port
unix_socket_directories = '$T'
listen_addresses = ''
wal_level = replica
archive_mode = on
archive_command = 'cp %p $T/wal/%f'
EOF
$P "$B/pg_ctl" -D "$T/pg" -l "$T/pg.log" -w start >/dev/null
psql() { "$B/psql" -h "$T" -p $port -U postgres -XAtq "$@"; }
$P "$B/pgbench" -h "$T" -p $port -U postgres -q -i -s 20 postgres >/dev/null 2>&1
full() { find "$T/wal" -regextype egrep -regex '.*/[0-9A-F]{24}' | wc -l; }
while [ "$(full)" -lt $((segments + 2)) ]; do
  $P "$B/pgbench" -h "$T" -p $port -U postgres -n -T 3 -c 2 postgres >/dev/null 2>&1
  psql -c "SELECT pg_switch_wal()" >/dev/null
  sleep 0.5
done
mapfile -t names < <(cd "$T/wal" && ls | grep -E '^[0-9A-F]{24}$' | sort | tail -n $segments)
bytes=$(( ${#names[@]} * 16 ))

# pgBackRest, as its user guide sets it up, encrypted like cairn.
cat > "$T/pgbackrest.conf" <<EOF
[global]
repo1-path=$T/work/pgbackrest
repo1-cipher-type=aes-256-cbc
repo1-cipher-pass=$(head -c 24 /dev/urandom | base64)
log-path=$T/work/log
lock-path=$T/work/lock
log-level-console=warn
log-level-file=off
[bench]
pg1-path=$T/pg
pg1-socket-path=$T
pg1-port=$port
EOF
chown postgres "$T/pgbackrest.conf"

# cairn, with a machine key as the README's recipe makes one.
printf 'bench-password\n' > "$T/password"
chown postgres "$T/password"

# One archiver over every segment, in a fresh repository; prints
# "wall_seconds cpu_seconds repository_bytes".
run() {
  local tool=$1 extra=${2:-}
  rm -rf "$T/work/pgbackrest" "$T/work/cairn" "$T/work/machine.key"
  case $tool in
    pgbackrest)
      $P pgbackrest --config="$T/pgbackrest.conf" --stanza=bench stanza-create >/dev/null
      cmd="pgbackrest --config=$T/pgbackrest.conf --stanza=bench $extra archive-push $T/wal/\$f" ;;
    cairn)
      $P "$T/cairn" -r "$T/work/cairn" --password-file "$T/password" init >/dev/null
      $P "$T/cairn" -r "$T/work/cairn" --password-file "$T/password" key add --machine "$T/work/machine.key" >/dev/null 2>&1
      cmd="$T/cairn -r $T/work/cairn --password-file $T/work/machine.key pg archive-wal $T/wal/\$f \$f" ;;
  esac
  sync
  $P bash -c "
    start=\$(date +%s.%N)
    for f in ${names[*]}; do $cmd || exit 1; done
    end=\$(date +%s.%N)
    times > $T/work/times
    cpu=\$(tail -1 $T/work/times | awk '{ split(\$1, u, \"m\"); split(\$2, s, \"m\"); print u[1]*60 + u[2] + s[1]*60 + s[2] }')
    echo \"\$(echo \"\$end - \$start\" | bc) \$cpu\"
  " | tr '\n' ' '
  du -sb "$T/work/$tool" | cut -f1
}

declare -A wall cpu size
configs=("cairn" "pgbackrest" "pgbackrest --compress-type=zst" "pgbackrest --compress-type=lz4")
for ((r = 1; r <= rounds; r++)); do
  for c in "${configs[@]}"; do
    read -r w u s <<<"$(run $c)"
    wall[$c]+="$w " cpu[$c]+="$u " size[$c]=$s
  done
done

median() { tr ' ' '\n' | grep . | sort -g | awk '{ a[NR] = $1 } END { print a[int((NR + 1) / 2)] }'; }
echo "$segments segments of real WAL ($bytes MiB, pgbench), $(nproc) cores, $(uname -r); median of $rounds rounds, each in a fresh repository"
echo
echo "| archiver | total wall (s) | per segment (ms) | CPU, children (s) | repository (MiB) |"
echo "|---|---|---|---|---|"
for c in "${configs[@]}"; do
  w=$(echo "${wall[$c]}" | median)
  u=$(echo "${cpu[$c]}" | median)
  printf '| %s | %.2f | %.1f | %.2f | %.1f |\n' "$c" "$w" "$(echo "$w * 1000 / $segments" | bc -l)" "$u" "$(echo "${size[$c]} / 1048576" | bc -l)"
done
