# Shared shell helpers for test/check, test/demo and the benchmarks.

# Run a command as root (directly when we are root, else through sudo).
as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

# Install the Debian 12 packages bkperf builds and tests with, when missing.
bkperf_install_packages() {
    local pkgs=(postgresql-15 postgresql-server-dev-15 postgresql-15-cron postgresql-contrib
                libipc-run-perl make gcc flex bison util-linux)
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
# copy of the tree when we are root, else here.
bkperf_run_unprivileged() {
    if [ "$(id -u)" -ne 0 ]; then "$@"; return; fi
    local copy
    copy=$(mktemp -d /tmp/bkperf-tap.XXXXXX)
    cp -a . "$copy/src"
    chown -R postgres: "$copy"
    local rc=0
    su postgres -s /bin/bash -c "cd '$copy/src' && $(printf '%q ' "$@")" || rc=$?
    rm -rf "$copy"
    return $rc
}
