# Shared shell helpers for test/check, test/demo and the benchmarks.

# Run a command as root (directly when we are root, else through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian 12 packages bkperf builds and tests with, when missing,
# plus any package named as an argument.
bkperf_install_packages() {
    local pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib
                libipc-run-perl make gcc flex bison util-linux "$@")
    local missing=()
    for p in "${pkgs[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if [ ${#missing[@]} -gt 0 ]; then
        echo "installing: ${missing[*]}"
        as_root apt-get update -qq
        as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}

# Servers refuse to run as root: run a command as user postgres in a private
# copy of the tree when we are root, else here.  Server logs the command
# leaves in tmp_check/log (TAP clusters) are scanned for crashes.
bkperf_run_unprivileged() {
    local rc=0
    if [ "$(id -u)" -ne 0 ]; then
        "$@" || rc=$?
        bkperf_scan_logs tmp_check/log || rc=1
        return $rc
    fi
    local copy
    copy=$(mktemp -d /tmp/bkperf-tap.XXXXXX)
    cp -a . "$copy/src"
    chown -R postgres: "$copy"
    su postgres -s /bin/bash -c "cd '$copy/src' && $(printf '%q ' "$@")" || rc=$?
    bkperf_scan_logs "$copy/src/tmp_check/log" || rc=1
    rm -rf "$copy"
    return $rc
}

# Crashes and failed assertions in server logs (files or directories): print
# them and fail.  Two TAP tests kill a backend on purpose (SIGKILL); that
# line is expected in their own logs only.
bkperf_scan_logs() {
    local hits
    hits=$(grep -rHE 'TRAP:|terminated by signal|PANIC' "$@" 2>/dev/null |
           grep -vE '/(010_capture_crash|020_alerts)_[^/:]*\.log:.*terminated by signal 9: Killed' || true)
    [ -z "$hits" ] && return 0
    echo "server log: crash or failed assertion:"
    echo "$hits" | head -50
    echo "logscan: FAILED"
    return 1
}

# Run a command as user postgres (directly when we are that user).
bkperf_as_postgres() {
    if [ "$(id -un)" = postgres ]; then "$@"; return; fi
    as_root su postgres -s /bin/bash -c "cd / && $(printf '%q ' "$@")"
}

# A throwaway cluster of the server that $PG_CONFIG names, run by user
# postgres with bkperf and pg_cron preloaded, for pg_regress and isolation.
# Exports PGHOST, PGPORT and PGUSER; BKPERF_CLUSTER is its directory.
bkperf_start_cluster() {
    local bindir
    bindir=$("${PG_CONFIG:-pg_config}" --bindir)
    BKPERF_CLUSTER=$(mktemp -d /tmp/bkperf-cluster.XXXXXX)
    chown postgres: "$BKPERF_CLUSTER"
    bkperf_as_postgres "$bindir/initdb" -D "$BKPERF_CLUSTER/data" -U postgres -A trust \
        -E UTF8 --locale=C.UTF-8 >/dev/null
    {
        echo "listen_addresses = ''"
        echo "unix_socket_directories = '$BKPERF_CLUSTER'"
        echo "shared_preload_libraries = 'pg_cron,bkperf'"
        echo "cron.database_name = 'postgres'"
        echo "max_prepared_transactions = 10"
    } >> "$BKPERF_CLUSTER/data/postgresql.conf"
    bkperf_as_postgres "$bindir/pg_ctl" -D "$BKPERF_CLUSTER/data" \
        -l "$BKPERF_CLUSTER/server.log" -w start >/dev/null
    export PGHOST=$BKPERF_CLUSTER PGPORT=5432 PGUSER=postgres
}

# Stop the cluster of bkperf_start_cluster, scan its log, remove it.
bkperf_stop_cluster() {
    local rc=0 bindir
    bindir=$("${PG_CONFIG:-pg_config}" --bindir)
    bkperf_as_postgres "$bindir/pg_ctl" -D "$BKPERF_CLUSTER/data" -m fast -w stop >/dev/null || rc=1
    bkperf_scan_logs "$BKPERF_CLUSTER/server.log" || rc=1
    rm -rf "$BKPERF_CLUSTER"
    unset PGHOST PGPORT PGUSER
    return $rc
}

# Citus for the Citus suite (test/t/070_citus.pl), in the server that
# $PG_CONFIG names: built once from ../shared/vendor/citus (about 4 minutes
# on 2 cores) when that directory is present; a clone without it says so
# and the suite skips itself.  A failed build fails the run.
bkperf_install_citus() {
    local vendor pkglib
    vendor="$(dirname "$(pwd)")/shared/vendor/citus"
    pkglib=$("${PG_CONFIG:-pg_config}" --pkglibdir)
    [ -f "$pkglib/citus.so" ] && return 0
    if [ ! -x "$vendor/build-citus" ]; then
        echo "citus: no $vendor (a clone without ../shared/vendor): the Citus suite is skipped"
        return 0
    fi
    echo "citus: building Citus from $vendor into $pkglib (once)"
    as_root env PG_CONFIG="$("${PG_CONFIG:-pg_config}" --bindir)/pg_config" "$vendor/build-citus"
}
