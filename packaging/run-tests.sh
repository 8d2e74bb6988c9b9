#!/usr/bin/env bash
# Builds mptunnel and runs its whole test suite on a fresh Debian 12 machine.
#
#   bash packaging/run-tests.sh [--quick] [--soak]     (as root, or with sudo for apt-get)
#
# 1. installs the missing build dependencies (apt-get, non-interactive);
# 2. build/        warnings as errors, then `ctest --output-on-failure -j2`;
# 3. build-asan/   the same with -DMPT_SANITIZE=ON (AddressSanitizer, UndefinedBehaviorSanitizer,
#                  LeakSanitizer), but for the tests of speed (ctest label `speed`);
# 4. build-fuzz/   with clang, -DMPT_FUZZ=ON: every libFuzzer target built there runs for
#                  MPT_FUZZ_SECONDS seconds (default 15) from its seed corpus.
#
# --quick   steps 1 and 2 only.
# --soak    exports MPT_SOAK=1, which long-running tests read to run longer; fuzz targets run
#           for 120 s each unless MPT_FUZZ_SECONDS says otherwise.
#
# Environment: MPT_BUILD_DIR (default build; the other trees get -asan and -fuzz appended),
# MPT_JOBS (ctest and build parallelism, default 2), MPT_FUZZ_SECONDS.
# Exit status: 0 if every step passed, 1 if any failed, 2 on a usage error.
set -euo pipefail

usage()
{
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

quick=0
soak=0
for arg in "$@"; do
    case "$arg" in
    --quick) quick=1 ;;
    --soak) soak=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "run-tests.sh: unknown option \`$arg' (see --help)" >&2
        exit 2
        ;;
    esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
# shellcheck source=packaging/deps.sh
. packaging/deps.sh

build=${MPT_BUILD_DIR:-build}
jobs=${MPT_JOBS:-2}
if [ "$soak" = 1 ]; then
    export MPT_SOAK=1
    fuzz_seconds=${MPT_FUZZ_SECONDS:-120}
else
    fuzz_seconds=${MPT_FUZZ_SECONDS:-15}
fi

start=$SECONDS
results=()
failed=0

# record NAME STATUS SECONDS
record()
{
    local verdict=passed
    if [ "$2" -ne 0 ]; then
        verdict="FAILED (status $2)"
        failed=1
    fi
    results+=("$(printf '%-28s %-20s %4ds' "$1" "$verdict" "$3")")
}

# step NAME COMMAND...: runs it and records the outcome; returns its status (call it from `if').
step()
{
    local name=$1 t0=$SECONDS rc=0
    shift
    echo
    echo "==> $name"
    "$@" || rc=$?
    record "$name" "$rc" $((SECONDS - t0))
    return "$rc"
}

skip()
{
    results+=("$(printf '%-28s %s' "$1" "$2")")
}

# configure DIR CMAKE-ARGS...: Ninja for a new tree; an existing tree keeps its generator.
configure()
{
    local dir=$1
    shift
    if [ -f "$dir/CMakeCache.txt" ]; then
        cmake -S "$root" -B "$dir" "$@"
    else
        cmake -S "$root" -B "$dir" -G Ninja "$@"
    fi
}

build_tree()
{
    local dir=$1
    shift
    configure "$dir" -DMPT_WERROR=ON -DMPT_TESTS=ON "$@" && cmake --build "$dir" -j "$jobs"
}

run_ctest()
{
    ctest --test-dir "$1" --output-on-failure -j "$jobs"
}

# The sanitized tree leaves out the tests of speed (label `speed`: the benchmarks, TCP through
# OpenVPN and WireGuard, balance mode's throughput, fec mode at 7,000 datagrams/s): their figures
# are those of a host that keeps up, they took a quarter of its time, and the code they run is
# run by the other tests.
run_ctest_sanitized()
{
    ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
        ctest --test-dir "$1" --output-on-failure -j "$jobs" -LE speed
}

# Runs every libFuzzer binary in the fuzz tree: fuzz_<name>, seeded from test/fuzz/corpus/<name>,
# with test/fuzz/<name>.dict if there is one. The seed corpus is only read; new inputs go to a
# scratch directory, crashes to <tree>/fuzz-artifacts/.
run_fuzzers()
{
    local dir=$1 bin name work rc=0 n=0
    local -a args bins

    mapfile -t bins < <(find "$dir" -type f -name 'fuzz_*' ! -name '*_replay' ! -name '*.*' \
        -perm -u+x 2>/dev/null | sort)
    if [ ${#bins[@]} -eq 0 ]; then
        echo "no fuzz targets were built"
        return 1
    fi
    mkdir -p "$dir/fuzz-artifacts"
    for bin in "${bins[@]}"; do
        name=${bin##*/fuzz_}
        work=$(mktemp -d)
        args=(-max_total_time="$fuzz_seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
            -artifact_prefix="$dir/fuzz-artifacts/$name-")
        [ -f "$root/test/fuzz/$name.dict" ] && args+=(-dict="$root/test/fuzz/$name.dict")
        echo "--- fuzz_$name for ${fuzz_seconds}s"
        if [ -d "$root/test/fuzz/corpus/$name" ]; then
            set -- "$work" "$root/test/fuzz/corpus/$name"
        else
            set -- "$work"
        fi
        if ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
            "$bin" "${args[@]}" "$@" >"$work.log" 2>&1; then
            grep -E '^(#[0-9]+.*DONE|stat::number_of_executed_units|Done [0-9]+ runs)' \
                "$work.log" || true
            echo "fuzz_$name: no failure"
        else
            tail -n 60 "$work.log"
            echo "fuzz_$name: FAILED (inputs in $dir/fuzz-artifacts/)"
            rc=1
        fi
        rm -rf "$work" "$work.log"
        n=$((n + 1))
    done
    echo "$n fuzz target(s) run"
    return $rc
}

echo "mptunnel tests in $root ($(nproc) CPUs; build parallelism $jobs)"
pkgs=("${MPT_BUILD_DEPS[@]}" python3 iproute2 valgrind python3-prometheus-client)
# core/noise is checked against an independent implementation and the published test vectors.
pkgs+=(python3-dissononce golang-github-flynn-noise-dev)
# The SOCKS5 front is tested with real SOCKS clients: PySocks, and Dante's socksify running drill
# (dig cannot be carried by socksify: see test/integration/socks_dante.py).
pkgs+=(python3-socks dante-client dnsutils ldnsutils)
# The attack tests' protocol-2 peer (test/integration/lib/mpt2.py) seals and opens DATA with it.
pkgs+=(python3-cryptography)
# packaging.deb builds the Debian package and runs lintian on it.
pkgs+=(dpkg-dev lintian)
[ "$quick" = 1 ] || pkgs+=(clang libclang-rt-dev)
# The network lab (test/netlab/, ctest -L netlab) runs only as root; elsewhere it skips.
if [ "$(id -u)" -eq 0 ]; then
    pkgs+=(nftables conntrack dnsmasq-base dnsutils iperf3 openvpn iputils-ping wireguard-go
        wireguard-tools)
fi
if ! step "dependencies" mpt_install_deps "${pkgs[@]}"; then
    echo "cannot install the build dependencies" >&2
    exit 1
fi

if step "build ($build)" build_tree "$build"; then
    step "ctest ($build)" run_ctest "$build" || true
else
    skip "ctest ($build)" "skipped (build failed)"
fi

if [ "$quick" = 0 ]; then
    if step "build (${build}-asan)" build_tree "${build}-asan" -DMPT_SANITIZE=ON; then
        step "ctest (${build}-asan)" run_ctest_sanitized "${build}-asan" || true
    else
        skip "ctest (${build}-asan)" "skipped (build failed)"
    fi
    if ! command -v clang >/dev/null 2>&1; then
        skip "fuzz" "skipped (no clang)"
    elif step "build (${build}-fuzz)" build_tree "${build}-fuzz" -DMPT_FUZZ=ON \
        -DCMAKE_C_COMPILER=clang; then
        step "fuzz (${build}-fuzz)" run_fuzzers "${build}-fuzz" || true
    else
        skip "fuzz (${build}-fuzz)" "skipped (build failed)"
    fi
fi

echo
echo "==> summary ($((SECONDS - start)) s)"
printf '  %s\n' "${results[@]}"
if [ "$failed" -ne 0 ]; then
    echo "FAILED"
    exit 1
fi
echo "all steps passed"
