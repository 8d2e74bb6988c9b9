#!/usr/bin/env bash
# Builds mptunnel and runs `mptunnel demo`: the whole tunnel on loopback over lossy paths, with
# live figures. Any arguments go to `mptunnel demo` (see `mptunnel demo --help`).
#
#   bash packaging/run-demo.sh [demo options]     (as root, or with sudo for apt-get)
#
# Installs the missing build dependencies first (apt-get, non-interactive). Builds into build/
# (or MPT_BUILD_DIR). The exit status is the demo's, or 1 if installing or building failed.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# shellcheck source=packaging/deps.sh
. packaging/deps.sh

build=${MPT_BUILD_DIR:-build}

mpt_install_deps "${MPT_BUILD_DEPS[@]}" || exit 1

echo "==> building mptunnel in $build/"
if [ -f "$build/CMakeCache.txt" ]; then
    cmake -S "$root" -B "$build" >/dev/null || exit 1
else
    cmake -S "$root" -B "$build" -G Ninja >/dev/null || exit 1
fi
cmake --build "$build" --target mptunnel -j "${MPT_JOBS:-2}" || exit 1

echo "==> mptunnel demo $*"
exec "$build/cmd/mptunnel" demo "$@"
