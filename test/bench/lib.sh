# Shared helpers of the benchmarks in test/bench (sourced, from the top level).
#
# Every benchmark uses the server that $PG_CONFIG names (default: pg_config on
# PATH) for its binaries and for the install, so it can run against any
# server, for example a private relocated copy:
#   PG_CONFIG=/opt/pgbench/usr/lib/postgresql/15/bin/pg_config test/bench/all
# Installing into a server's directories holds a lock for the whole run (one
# install and one benchmark at a time per server): the lock of test/check
# (/tmp/bkperf-install.lock) for the server of pg_config on PATH, a lock of
# that server's own otherwise.

. test/lib.sh
PG_CONFIG=${PG_CONFIG:-pg_config}
export PG_CONFIG
BENCH_BIN=$("$PG_CONFIG" --bindir)
BENCH_SHARE=$("$PG_CONFIG" --sharedir)

# Take the install lock of $PG_CONFIG's server (fd 9, held until exit).
bench_lock() {
    local lib default lock=/tmp/bkperf-install.lock
    lib=$("$PG_CONFIG" --pkglibdir)
    default=$(pg_config --pkglibdir 2>/dev/null || true)
    if [ "$lib" != "$default" ]; then
        lock=/tmp/bkperf-bench-$(printf '%s' "$lib" | md5sum | cut -c1-12).lock
    fi
    exec 9>"$lock"
    flock 9
}

# Build and install bkperf into $PG_CONFIG's server, under its lock.
bench_install() {
    mkdir -p test/bench/out
    # Debian's server (the default): the packages bkperf builds with.
    if [ "$PG_CONFIG" = pg_config ] && command -v dpkg-query >/dev/null; then
        bkperf_install_packages
    fi
    bench_lock
    make -s PG_CONFIG="$PG_CONFIG" >/dev/null
    if [ -w "$("$PG_CONFIG" --pkglibdir)" ]; then
        make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    else
        as_root make -s PG_CONFIG="$PG_CONFIG" install >/dev/null
    fi
}

# Where E-Maj 5.0 is: $EMAJ_DIR, else ../shared/vendor/emaj next to the clone.
bench_emaj_dir() {
    local d=${EMAJ_DIR:-$(dirname "$(pwd)")/shared/vendor/emaj}
    [ -f "$d/emaj.control" ] && [ -f "$d/emaj--5.0.0.sql" ] && echo "$d"
}

# Install E-Maj's files into $PG_CONFIG's server; returns 1 with a message
# when E-Maj or the contrib modules it needs (dblink, btree_gist) are absent.
bench_install_emaj() {
    local d lib
    d=$(bench_emaj_dir) || { echo "E-Maj not found (${EMAJ_DIR:-../shared/vendor/emaj}): E-Maj columns skipped" >&2; return 1; }
    lib=$("$PG_CONFIG" --pkglibdir)
    if [ ! -f "$lib/dblink.so" ] || [ ! -f "$lib/btree_gist.so" ]; then
        echo "E-Maj needs contrib dblink and btree_gist, missing in $lib: E-Maj columns skipped" >&2
        return 1
    fi
    as_root mkdir -p "$BENCH_SHARE/emaj"
    as_root cp "$d/emaj.control" "$BENCH_SHARE/extension/"
    as_root cp "$d/emaj--5.0.0.sql" "$BENCH_SHARE/emaj/"
}

# Start a throwaway cluster of $PG_CONFIG's server (as user postgres when we
# are root), with the postgresql.conf lines given as arguments.  Exports
# PGHOST, PGPORT, PGUSER, PGDATABASE; stops and removes it at exit.
bench_start_cluster() {
    BENCH_CLUSTER=$(mktemp -d /tmp/bkperf-bench.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$BENCH_CLUSTER"
    trap bench_stop_cluster EXIT
    bkperf_as_postgres_or_me "$BENCH_BIN/initdb" -D "$BENCH_CLUSTER/data" -U postgres -A trust \
        -E UTF8 --locale=C.UTF-8 --no-sync >/dev/null
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$BENCH_CLUSTER'"
        echo "port = 5432"
        printf '%s\n' "$@"
    } >> "$BENCH_CLUSTER/data/postgresql.conf"
    bkperf_as_postgres_or_me "$BENCH_BIN/pg_ctl" -D "$BENCH_CLUSTER/data" \
        -l "$BENCH_CLUSTER/server.log" -w start >/dev/null
    export PGHOST=$BENCH_CLUSTER PGPORT=5432 PGUSER=postgres PGDATABASE=postgres
}

# Stop the cluster of bench_start_cluster (EXIT trap); keeps its log in
# test/bench/out/ when the benchmark failed.
bench_stop_cluster() {
    local rc=$?
    [ -n "${BENCH_CLUSTER:-}" ] || return 0
    bkperf_as_postgres_or_me "$BENCH_BIN/pg_ctl" -D "$BENCH_CLUSTER/data" -m immediate -w stop \
        >/dev/null 2>&1 || true
    if [ "$rc" -ne 0 ]; then
        cp "$BENCH_CLUSTER/server.log" test/bench/out/server-failed.log 2>/dev/null &&
            echo "benchmark failed; server log in test/bench/out/server-failed.log" >&2
    fi
    rm -rf "$BENCH_CLUSTER"
    BENCH_CLUSTER=
}

# Run a command as user postgres when we are root, else as ourselves.
bkperf_as_postgres_or_me() {
    if [ "$(id -u)" -eq 0 ]; then
        su postgres -s /bin/bash -c "cd / && $(printf '%q ' "$@")"
    else
        "$@"
    fi
}

# psql of $PG_CONFIG's server, quiet, stopping at the first error.
q() { "$BENCH_BIN/psql" -X -q -v ON_ERROR_STOP=1 -At "$@"; }

# Timed rollback runs (rollback_vs_emaj_run.sql): one warm-up run of each
# variant, then ROUNDS rounds, the variants' order rotated each round
# (A B C, B C A, C A B, ...).  Each variant is LABEL:DATABASE:WHICH.  Appends
# the runs' "label_key|value" lines to OUT; fails at once when a run left a
# state that differs from the snapshot (a wrong rollback is not timed).
bench_rollback_rounds() {
    local rounds=$1 out=$2 r i n label db which line
    shift 2
    local variants=("$@")
    n=${#variants[@]}
    for r in $(seq 0 "$rounds"); do
        for i in $(seq 0 $((n - 1))); do
            IFS=: read -r label db which <<<"${variants[$(((i + r) % n))]}"
            line=$(q -d "$db" -v which="$which" -v label="$label" -f test/bench/rollback_vs_emaj_run.sql)
            if ! grep -qx "${label}_diff|0" <<<"$line"; then
                echo "$label (round $r): the state after the rollback differs from the snapshot:" >&2
                echo "$line" >&2
                return 1
            fi
            [ "$r" = 0 ] && continue
            sed "s/^/$r|/" <<<"$line" >> "$out"
        done
        [ "$r" = 0 ] || echo "round $r of $rounds done" >&2
    done
}
