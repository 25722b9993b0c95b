#!/usr/bin/env bash
# Runs cairn and its peers (restic, borg, rustic, bupstash) on the same corpora
# in one run, and prints a table of times, peak memory and repository sizes
# with each peer's figure as a ratio to cairn's.
#
#   benches/compare.sh            # full run: about half an hour on 2 cores
#   benches/compare.sh --quick    # small corpora, a few minutes: checks the script
#
# Environment:
#   CORPUS_TREE  the real tree to back up (default: the Rust toolchain, about
#                1.4 GB in 52,000 files)
#   WORK         scratch directory, on the disk to measure (default: a new
#                directory under /var/tmp); removed at the end
#   PEERS        tools to run (default: "cairn restic borg rustic bupstash")
#   MILLION      also measure a generated tree of this many small files
#                (benches/million.py, seed 1; 1000000 for the issue's row):
#                first backup, unchanged re-backup, restore and a listing
#   MILLION_TREE a tree million.py made before (with --seed 1), used instead
#                of generating one; it is kept
#   RUNS         rounds of every measurement (default 3, 1 with --quick): the
#                table shows each figure's median over the rounds
#
# Peers: `apt-get install restic borgbackup`; `cargo install rustic-rs bupstash`
# (slow builds, benchmarks only). A peer that is not installed is skipped with
# a loud note. Every tool runs with encryption and zstd level 3 where it has
# the choice (restic: its "auto" zstd level; bupstash: its default zstd).
set -euo pipefail
cd "$(dirname "$0")/.."

quick=false
[ "${1:-}" = "--quick" ] && quick=true
PEERS=${PEERS:-"cairn restic borg rustic bupstash"}
if $quick; then RUNS=${RUNS:-1}; else RUNS=${RUNS:-3}; fi
CORPUS_TREE=${CORPUS_TREE:-$(rustc --print sysroot)}
WORK=${WORK:-$(mktemp -d /var/tmp/cairn-compare.XXXXXX)}
mkdir -p "$WORK"
trap 'release_target 2>/dev/null; rm -rf "$WORK"' EXIT
export PASSWORD="comparison password"

cargo build --release --quiet -p cairn-cli
CAIRN="$PWD/target/release/cairn"

note() { printf '%s\n' "$*" >&2; }

tools=()
for t in $PEERS; do
    case $t in
        cairn) tools+=(cairn) ;;
        borg | restic | rustic | bupstash)
            if command -v "$t" >/dev/null; then
                tools+=("$t")
            else
                note "!!! $t is not installed: SKIPPED (see the top of $0 for how to install it)"
            fi
            ;;
        *) note "unknown tool $t" && exit 1 ;;
    esac
done

# ---------------------------------------------------------------- corpora
corpora="$WORK/corpora"
mkdir -p "$corpora"
if $quick; then
    tree="$corpora/tree"
    mkdir -p "$tree"
    # A real tree of a few thousand files: the toolchain's HTML docs of `alloc`
    # and `std::collections`, or this repository's sources.
    cp -r "$CORPUS_TREE/share/doc/rust/html/alloc" "$tree/" 2>/dev/null ||
        cp -r repo-format engine cli "$tree/"
    random_mib=64
else
    tree=$CORPUS_TREE
    random_mib=1024
fi
mkdir -p "$corpora/random" "$corpora/large"
head -c $((random_mib << 20)) /dev/urandom >"$corpora/random/random.bin"
# One large compressible file: a tar of (part of) the real tree.
# (tar is cut off by head: its broken pipe is expected.)
(tar -C "$tree" -cf - . 2>/dev/null || true) | head -c $((random_mib << 20)) >"$corpora/large/tree.tar"
# Successive versions of a real source tree: this repository's history.
versions=()
for c in $(git rev-list --reverse -n 12 HEAD); do
    v="$corpora/versions/$(git log -1 --format=%ct "$c")-$c"
    mkdir -p "$v"
    git archive "$c" | tar -x -C "$v"
    versions+=("$v")
done
if [ -n "${MILLION:-}" ]; then
    million=$corpora/million
    if [ -n "${MILLION_TREE:-}" ]; then
        million=$(realpath "$MILLION_TREE")
    else
        note "generating $MILLION files (benches/million.py)..."
        python3 benches/million.py "$million" --files "$MILLION" --seed 1
    fi
fi
# A copy of the tree that the small-change round can modify.
if $quick; then mutable=$tree; else
    mutable="$corpora/mutable"
    cp -a "$tree" "$mutable"
fi

# ---------------------------------------------------------------- tools
# Each tool: init REPO; backup REPO DIR; restore REPO TARGET; check REPO.
repo_of() { echo "$WORK/repo-$1-$2"; }

# cairn opens with a machine key (`key add --machine`: a random password in a
# file, no password hash to pay), as bupstash does with its key file; the
# others derive their keys from the password on every run.
cairn_init() {
    CAIRN_PASSWORD=$PASSWORD "$CAIRN" -r "$1" init >/dev/null &&
        CAIRN_PASSWORD=$PASSWORD "$CAIRN" -r "$1" key add --machine "$1.key" >/dev/null 2>&1
}
cairn_backup() { "$CAIRN" -r "$1" --password-file "$1.key" backup "$2" >/dev/null; }
cairn_restore() { "$CAIRN" -r "$1" --password-file "$1.key" restore latest --target "$2" >/dev/null; }
cairn_check() { "$CAIRN" -r "$1" --password-file "$1.key" check --read-data >/dev/null; }
cairn_ls() { "$CAIRN" -r "$1" --password-file "$1.key" ls latest >/dev/null; }

restic_init() { RESTIC_PASSWORD=$PASSWORD restic -q -r "$1" init --repository-version 2 >/dev/null; }
restic_backup() { RESTIC_PASSWORD=$PASSWORD restic -q -r "$1" backup --compression auto "$2" >/dev/null; }
restic_restore() { RESTIC_PASSWORD=$PASSWORD restic -q -r "$1" restore latest --target "$2" >/dev/null; }
restic_check() { RESTIC_PASSWORD=$PASSWORD restic -q -r "$1" check --read-data >/dev/null; }
restic_ls() { RESTIC_PASSWORD=$PASSWORD restic -q -r "$1" ls latest >/dev/null; }

borg_init() { BORG_PASSPHRASE=$PASSWORD borg init -e repokey-blake2 "$1"; }
borg_backup() { BORG_PASSPHRASE=$PASSWORD borg create --compression zstd,3 "$1::$(date +%s%N)" "$2"; }
borg_restore() {
    local last
    last=$(BORG_PASSPHRASE=$PASSWORD borg list --last 1 --short "$1")
    mkdir -p "$2" && (cd "$2" && BORG_PASSPHRASE=$PASSWORD borg extract "$1::$last")
}
borg_check() { BORG_PASSPHRASE=$PASSWORD borg check --verify-data "$1"; }
borg_ls() {
    local last
    last=$(BORG_PASSPHRASE=$PASSWORD borg list --last 1 --short "$1")
    BORG_PASSPHRASE=$PASSWORD borg list "$1::$last" >/dev/null
}

rustic_init() { RUSTIC_PASSWORD=$PASSWORD rustic -r "$1" init >/dev/null 2>&1; }
rustic_backup() { RUSTIC_PASSWORD=$PASSWORD rustic -r "$1" backup "$2" >/dev/null 2>&1; }
rustic_restore() { RUSTIC_PASSWORD=$PASSWORD rustic -r "$1" restore latest "$2" >/dev/null 2>&1; }
rustic_check() { RUSTIC_PASSWORD=$PASSWORD rustic -r "$1" check --read-data >/dev/null 2>&1; }
rustic_ls() { RUSTIC_PASSWORD=$PASSWORD rustic -r "$1" ls latest >/dev/null 2>&1; }

bupstash_init() {
    bupstash new-key -o "$1.key" && BUPSTASH_KEY="$1.key" bupstash init -r "$1"
}
bupstash_backup() { BUPSTASH_KEY="$1.key" bupstash put -q -r "$1" "$2" >/dev/null; }
bupstash_restore() {
    local id
    id=$(BUPSTASH_KEY="$1.key" bupstash list -r "$1" --format=jsonl1 | tail -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
    mkdir -p "$2" && BUPSTASH_KEY="$1.key" bupstash restore -r "$1" --into "$2" "id=$id"
}
bupstash_check() {
    # No full-data check command: reading every item back is the equivalent.
    local ids
    ids=$(BUPSTASH_KEY="$1.key" bupstash list -r "$1" --format=jsonl1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
    for id in $ids; do BUPSTASH_KEY="$1.key" bupstash get -r "$1" "id=$id" >/dev/null; done
}
bupstash_ls() {
    local id
    id=$(BUPSTASH_KEY="$1.key" bupstash list -r "$1" --format=jsonl1 | tail -1 | sed 's/.*"id":"\([^"]*\)".*/\1/')
    BUPSTASH_KEY="$1.key" bupstash list-contents -r "$1" "id=$id" >/dev/null
}

# restore_synced TOOL REPO TARGET: a restore, then everything written out, so
# that every tool's restore is measured until it is on disk (cairn's restore
# ends with a flush of its own; the peers' do not).
restore_synced() { "${1}_restore" "$2" "$3" && sync; }

# /usr/bin/time runs programs, not functions: it runs them through bash.
export CAIRN
export -f restore_synced
for t in cairn restic borg rustic bupstash; do
    export -f "${t}_init" "${t}_backup" "${t}_restore" "${t}_check" "${t}_ls"
done

# ---------------------------------------------------------------- measuring
results="$WORK/results.tsv"
: >"$results"

# measure TOOL CORPUS METRIC COMMAND...: runs the command, records its wall
# seconds, peak RSS and CPU seconds (user + system, all threads and children).
# Whatever earlier steps left unwritten is written out first: a command that
# flushes the file system (cairn's restore does, to be durable) must not pay
# for the writes of the step before it.
measure() {
    local tool=$1 corpus=$2 metric=$3
    shift 3
    local out="$WORK/time.out"
    sync
    if /usr/bin/time -f '%e %M %U %S' -o "$out" bash -c '"$@"' bash "$@" >"$WORK/cmd.log" 2>&1; then
        read -r secs kib user sys <"$out"
        cpu=$(awk -v u="$user" -v s="$sys" 'BEGIN { print u + s }')
        printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$tool" "$corpus" "$metric" "$secs" "$kib" "$cpu" >>"$results"
    else
        note "!!! $tool $metric on $corpus FAILED:"
        tail -5 "$WORK/cmd.log" >&2
        printf '%s\t%s\t%s\tfail\tfail\tfail\n' "$tool" "$corpus" "$metric" >>"$results"
    fi
}

# Where restores go. ext4 allocates inodes slowly for minutes after many
# files were deleted near them (its allocator skips recently freed inodes,
# reading the inode table for each): a restore made just after the last one
# was deleted took 3 to 10 times as long, whichever tool made it. So, as
# root, each restore goes into a new ext4 file system on a loop device over
# a sparse file in $WORK, on the same disk, made before the clock starts;
# otherwise into $WORK itself, with a warning.
mnt="$WORK/mnt"
if [ "$(id -u)" = 0 ] && command -v mkfs.ext4 >/dev/null && command -v losetup >/dev/null; then
    fresh_fs=true
else
    fresh_fs=false
    note "!!! not root: restores go into $WORK; after each deletion of a restored tree the next restore there may be slow"
fi
# new_target SIZE: prepares an empty target for a restore, in $target.
new_target() {
    release_target
    if $fresh_fs; then
        truncate -s "$1" "$WORK/fs.img"
        mkfs.ext4 -q -F -i 8192 -E lazy_itable_init=0,lazy_journal_init=0 "$WORK/fs.img"
        mkdir -p "$mnt"
        mount -o loop "$WORK/fs.img" "$mnt"
        target="$mnt/restored"
    else
        target="$WORK/restored"
    fi
}
release_target() {
    if mountpoint -q "$mnt" 2>/dev/null; then umount "$mnt"; fi
    rm -rf "$WORK/fs.img" "$WORK/restored"
}

# restores TOOL CORPUS REPO SIZE: the restore rows, each into a new target
# of SIZE: with the repository in the page cache, the same until the files
# are on disk, and with the repository not cached.
restores() {
    local tool=$1 corpus=$2 repo=$3 size=$4
    new_target "$size"
    warm "$repo"
    measure "$tool" "$corpus" "restore" "${tool}_restore" "$repo" "$target"
    new_target "$size"
    warm "$repo"
    measure "$tool" "$corpus" "restore, then sync" restore_synced "$tool" "$repo" "$target"
    new_target "$size"
    evict "$repo"
    measure "$tool" "$corpus" "restore, repository not cached" "${tool}_restore" "$repo" "$target"
    release_target
}

size_of() { du -sb "$1" | cut -f1; }
record_size() { printf '%s\t%s\t%s\t%s\t-\t-\n' "$1" "$2" "$3" "$4" >>"$results"; }

# Warm the page cache: every tool reads the corpora from memory, and its
# repository too when it restores or checks (cairn writes packs past the
# page cache, the others through it: each restore row starts alike).
warm() { tar -C "$1" -cf - . 2>/dev/null | cat >/dev/null; }
# Drops a directory's files from the page cache (after a sync, so none is
# dirty): for the restore rows from a repository that is not cached.
evict() {
    sync
    python3 -c 'import os, sys
for top, _, names in os.walk(sys.argv[1]):
    for name in names:
        try:
            fd = os.open(os.path.join(top, name), os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        os.close(fd)' "$1"
}

# Modifies a few files of the mutable tree (the same ones for every tool):
# appends to 20 files and rewrites a 64 KiB range in 5 others.
small_change() {
    local round=$1 n=0
    while IFS= read -r -d '' f; do
        n=$((n + 1))
        if [ $n -le 20 ]; then
            printf 'change %s\n' "$round" >>"$f"
        elif [ $n -le 25 ]; then
            head -c 65536 /dev/urandom | dd of="$f" conv=notrunc status=none
        else
            break
        fi
    done < <(find "$mutable" -type f -size +100k -print0 | sort -z)
}

# The bytes of file content each corpus holds, for CPU seconds per GB.
content_bytes() { find "$1" -type f -printf '%s\n' | awk '{ s += $1 } END { print s + 0 }'; }
printf 'tree\t%s\nrandom\t%s\nlarge\t%s\n' "$(content_bytes "$mutable")" \
    "$(content_bytes "$corpora/random")" "$(content_bytes "$corpora/large")" >"$WORK/corpus-bytes.tsv"
if [ -n "${MILLION:-}" ]; then
    printf 'million\t%s\n' "$(content_bytes "$million")" >>"$WORK/corpus-bytes.tsv"
fi
load_before=$(cut -d' ' -f1-3 /proc/loadavg)

for run in $(seq "$RUNS"); do
    for tool in "${tools[@]}"; do
        note "== $tool (round $run of $RUNS)"
        # The real tree: first backup, unchanged re-backup, small change, restore, check.
        warm "$mutable"
        repo=$(repo_of "$tool" tree)
        "${tool}_init" "$repo" >/dev/null 2>&1
        measure "$tool" tree "first backup" "${tool}_backup" "$repo" "$mutable"
        record_size "$tool" tree "repository bytes" "$(size_of "$repo")"
        measure "$tool" tree "unchanged re-backup" "${tool}_backup" "$repo" "$mutable"
        small_change "$tool"
        measure "$tool" tree "backup after a small change" "${tool}_backup" "$repo" "$mutable"
        restores "$tool" tree "$repo" 8G
        warm "$repo"
        measure "$tool" tree "check, reading all data" "${tool}_check" "$repo"
        rm -rf "$repo" "$repo.key"

        for corpus in random large; do
            warm "$corpora/$corpus"
            repo=$(repo_of "$tool" "$corpus")
            "${tool}_init" "$repo" >/dev/null 2>&1
            measure "$tool" "$corpus" "first backup" "${tool}_backup" "$repo" "$corpora/$corpus"
            record_size "$tool" "$corpus" "repository bytes" "$(size_of "$repo")"
            restores "$tool" "$corpus" "$repo" 8G
            rm -rf "$repo" "$repo.key"
        done

        if [ -n "${MILLION:-}" ]; then
            # Many small files: time and peak memory as the file count grows.
            warm "$million"
            repo=$(repo_of "$tool" million)
            "${tool}_init" "$repo" >/dev/null 2>&1
            measure "$tool" million "first backup" "${tool}_backup" "$repo" "$million"
            record_size "$tool" million "repository bytes" "$(size_of "$repo")"
            measure "$tool" million "unchanged re-backup" "${tool}_backup" "$repo" "$million"
            measure "$tool" million "list every file" "${tool}_ls" "$repo"
            restores "$tool" million "$repo" 24G
            rm -rf "$repo" "$repo.key"
        fi

        # Successive versions: the growth of the repository as each is added.
        repo=$(repo_of "$tool" versions)
        "${tool}_init" "$repo" >/dev/null 2>&1
        before=$(size_of "$repo")
        first=true
        for v in "${versions[@]}"; do
            # Each version is backed up from the same path, as a working copy would be.
            rm -rf "$corpora/current" && cp -a "$v" "$corpora/current"
            "${tool}_backup" "$repo" "$corpora/current" >/dev/null 2>&1
            if $first; then
                record_size "$tool" versions "first version, bytes" "$(($(size_of "$repo") - before))"
                before=$(size_of "$repo")
                first=false
            fi
        done
        record_size "$tool" versions "each later version, mean bytes added" \
            "$((($(size_of "$repo") - before) / (${#versions[@]} - 1)))"
        rm -rf "$repo" "$repo.key"
    done
done
load_after=$(cut -d' ' -f1-3 /proc/loadavg)
cpus=$(nproc)
model=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)
memory=$(free -g | awk '/^Mem:/ { print $2 }')

# ---------------------------------------------------------------- report
python3 - "$results" "$tree" "$random_mib" "$WORK/corpus-bytes.tsv" "$RUNS" \
    "$load_before" "$load_after" "$cpus" "$model" "$memory" <<'EOF'
import collections, statistics, sys
results, tree, random_mib, sizes, runs, load_before, load_after, cpus, model, memory = sys.argv[1:]
rows = [l.rstrip("\n").split("\t") for l in open(results)]
content = {c: int(b) for c, b in (l.split() for l in open(sizes))}
tools = list(dict.fromkeys(r[0] for r in rows))
# Every round's figures, then the round whose wall time is the median.
rounds = collections.OrderedDict()
for tool, corpus, metric, value, kib, cpu in rows:
    rounds.setdefault((corpus, metric), {}).setdefault(tool, []).append((value, kib, cpu))
def num(v):
    try: return float(v)
    except ValueError: return None
def median_round(figures):
    ok = [f for f in figures if num(f[0]) is not None]
    if not ok:
        return figures[0]
    ok.sort(key=lambda f: num(f[0]))
    return ok[(len(ok) - 1) // 2]
data = collections.OrderedDict(
    (key, {t: median_round(f) for t, f in by_tool.items()}) for key, by_tool in rounds.items())
print(f"Machine: {cpus} CPUs ({model or 'model not reported'}), {memory} GiB RAM; "
      f"load average {load_before} before, {load_after} after.")
print(f"corpus 'tree' = {tree}; 'random' and 'large' = {random_mib} MiB each; page cache warm "
      "(corpora, and repositories before restore and check) but where a row says not cached.")
print(f"Each figure is the median of {runs} round(s). Times in seconds (peak RSS in MiB);")
print("sizes in MiB. ratio = peer / cairn: above 1, cairn is faster or smaller.\n")
print("| corpus | metric | " + " | ".join(tools) + " |")
print("|---|---|" + "---:|" * len(tools))
for (corpus, metric), by_tool in data.items():
    base = num(by_tool.get("cairn", ("-", "-", "-"))[0])
    cells = []
    for t in tools:
        value, kib, _ = by_tool.get(t, ("-", "-", "-"))
        v = num(value)
        if v is None:
            cells.append(value); continue
        sized = kib == "-"
        text = f"{v / 2**20:.2f}" if sized else f"{v:.2f} ({int(kib) // 1024})"
        if t != "cairn" and base:
            text += f" ×{v / base:.2f}"
        cells.append(text)
    print(f"| {corpus} | {metric} | " + " | ".join(cells) + " |")
# CPU: seconds of user + system time, per GB of the corpus's content where
# the row reads or writes all of it, and how busy the CPUs were (CPU / wall / CPUs).
print("\nCPU seconds (user + system), per GB of content for whole-corpus rows, and")
print(f"the share of the {cpus} CPUs kept busy. ratio = peer / cairn (above 1: cairn spends less).\n")
print("| corpus | metric | " + " | ".join(tools) + " |")
print("|---|---|" + "---:|" * len(tools))
whole = {"first backup", "restore", "restore, then sync", "restore, repository not cached",
         "check, reading all data"}
for (corpus, metric), by_tool in data.items():
    if by_tool.get("cairn", ("-", "-", "-"))[2] == "-":
        continue
    gb = content.get(corpus, 0) / 1e9 if metric in whole else 0
    def per(f):
        c, w = num(f[2]), num(f[0])
        return (c, w) if c is not None and w else (None, None)
    base, _ = per(by_tool.get("cairn", ("-", "-", "-")))
    cells = []
    for t in tools:
        c, w = per(by_tool.get(t, ("-", "-", "-")))
        if c is None:
            cells.append("fail" if t in by_tool else "-"); continue
        text = f"{c:.2f} s" + (f", {c / gb:.2f} s/GB" if gb else "") + f", {100 * c / w / int(cpus):.0f}%"
        if t != "cairn" and base:
            text += f" ×{c / base:.2f}"
        cells.append(text)
    print(f"| {corpus} | {metric} | " + " | ".join(cells) + " |")
EOF
