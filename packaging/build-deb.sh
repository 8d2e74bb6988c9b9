#!/usr/bin/env bash
# Builds the Debian package in a Release tree of its own, with Debian's hardening flags.
#
#   bash packaging/build-deb.sh [--build-dir DIR] [--lintian] [--test]
#
# 1. configures DIR (default: build-deb/ at the top of the checkout) as a Release build with
#    CMAKE_INSTALL_PREFIX=/usr and the flags of `dpkg-buildflags' (hardening=+all: fortify,
#    stack protector, RELRO, BIND_NOW, PIE), without the tests;
# 2. builds it and runs `cpack -G DEB' there: DIR/mptunnel_<version>-<revision>_<arch>.deb, its
#    Depends computed by dpkg-shlibdeps;
# 3. checks the binary in the package: PIE, RELRO, BIND_NOW, fortified calls;
# 4. with --lintian, runs lintian on it and fails on any error or warning (overrides, each with
#    its reason, are in packaging/debian/lintian-overrides).
#
# --test   exit 77 (skip) rather than 1 when a tool is missing (cpack, dpkg-buildflags,
#          dpkg-shlibdeps, readelf, or lintian with --lintian): for ctest.
# Environment: MPT_JOBS (build parallelism, default 2).
# Exit status: 0 if the package was built (and passed), 1 if not, 2 on a usage error.
set -euo pipefail

usage()
{
    sed -n '2,/^set -euo/p' "$0" | sed -e '$d' -e 's/^# \{0,1\}//'
}

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD
dir=$root/build-deb
run_lintian=0
testing=0
while [ $# -gt 0 ]; do
    case "$1" in
    --build-dir)
        [ $# -ge 2 ] || {
            echo "build-deb.sh: --build-dir needs a DIR" >&2
            exit 2
        }
        dir=$2
        shift
        ;;
    --lintian) run_lintian=1 ;;
    --test) testing=1 ;;
    -h | --help)
        usage
        exit 0
        ;;
    *)
        echo "build-deb.sh: unknown option \`$1' (see --help)" >&2
        exit 2
        ;;
    esac
    shift
done
case "$dir" in /*) ;; *) dir=$root/$dir ;; esac

missing=()
for tool in cmake cpack dpkg-buildflags dpkg-shlibdeps readelf; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
[ "$run_lintian" = 0 ] || command -v lintian >/dev/null 2>&1 || missing+=(lintian)
if [ ${#missing[@]} -gt 0 ]; then
    echo "build-deb.sh: missing ${missing[*]} (Debian: apt-get install cmake dpkg-dev binutils" \
        "lintian)" >&2
    [ "$testing" = 1 ] && exit 77
    exit 1
fi

# Files and directories of the package get their modes from the tree, not from our umask.
umask 022
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
# CMake reads no CPPFLAGS: _FORTIFY_SOURCE goes with the compiler flags.
cflags="$(dpkg-buildflags --get CFLAGS) $(dpkg-buildflags --get CPPFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
echo "==> CFLAGS:  $cflags"
echo "==> LDFLAGS: $ldflags"

gen=()
[ -f "$dir/CMakeCache.txt" ] || ! command -v ninja >/dev/null 2>&1 || gen=(-G Ninja)
cmake -S "$root" -B "$dir" "${gen[@]}" -DCMAKE_BUILD_TYPE=Release -DCMAKE_INSTALL_PREFIX=/usr \
    -DMPT_TESTS=OFF -DMPT_WERROR=OFF -DMPT_SANITIZE=OFF -DMPT_FUZZ=OFF \
    -DCMAKE_C_FLAGS="$cflags" -DCMAKE_EXE_LINKER_FLAGS="$ldflags" \
    -DCMAKE_STRIP="$root/packaging/debian/strip.sh"
cmake --build "$dir" -j "${MPT_JOBS:-2}"
rm -f "$dir"/mptunnel_*.deb
(cd "$dir" && cpack -G DEB)
deb=$(ls "$dir"/mptunnel_*.deb)
echo "==> $deb"
dpkg-deb --field "$deb"
dpkg-deb --contents "$deb"

# The binary as packaged: hardened as dpkg-buildflags asked.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
dpkg-deb -x "$deb" "$work"
bin=$work/usr/bin/mptunnel
failed=0
check()
{
    if eval "$2" >/dev/null; then
        echo "ok: $1"
    else
        echo "FAIL: $1"
        failed=1
    fi
}
check "PIE (ELF type DYN)" "readelf -h '$bin' | grep 'Type: *DYN'"
check "RELRO (GNU_RELRO segment)" "readelf -lW '$bin' | grep GNU_RELRO"
check "BIND_NOW" "readelf -dW '$bin' | grep -E 'BIND_NOW|FLAGS.*NOW'"
check "fortified calls (__*_chk)" "readelf -sW --dyn-syms '$bin' | grep '__[a-z]*_chk'"
check "stack protector (__stack_chk_fail)" "readelf -sW --dyn-syms '$bin' | grep __stack_chk_fail"
check "stripped (no .symtab, .comment)" "! readelf -SW '$bin' | grep -E '\\.symtab|\\.comment'"
check "man pages compressed" "[ -f '$work/usr/share/man/man1/mptunnel.1.gz' ] &&
    [ -f '$work/usr/share/man/man5/mptunnel.conf.5.gz' ]"
check "changelog.Debian.gz and copyright" "[ -f '$work/usr/share/doc/mptunnel/changelog.Debian.gz' ] &&
    [ -f '$work/usr/share/doc/mptunnel/copyright' ]"
check "STATUS.md and the JSON schema" "[ -f '$work/usr/share/doc/mptunnel/STATUS.md.gz' ] &&
    [ -f '$work/usr/share/mptunnel/status-schema.json' ]"
check "bash completion" "[ -f '$work/usr/share/bash-completion/completions/mptunnel' ]"
check "Depends computed (libc6, libsodium, libuv)" "dpkg-deb -f '$deb' Depends |
    grep -q 'libc6' && dpkg-deb -f '$deb' Depends | grep libsodium &&
    dpkg-deb -f '$deb' Depends | grep libuv1"
check "the packaged binary runs (--version)" "'$bin' --version | grep '$(sed -n 's/^project(mptunnel VERSION \([0-9.]*\).*/\1/p' "$root/CMakeLists.txt")'"
check "Maintainer with an address" "dpkg-deb -f '$deb' Maintainer | grep '<.*@.*>'"
[ "$failed" = 0 ] || exit 1

if [ "$run_lintian" = 1 ]; then
    echo "==> lintian $(lintian --version | sed 's/^Lintian v//')"
    # Errors and warnings fail; informational and pedantic tags and the overrides (O:) are shown. Overridden
    # tags count as failures for --fail-on once they are shown, so the verdict is read from the
    # output instead.
    out=$(lintian --fail-on none --display-info --pedantic --show-overrides --info "$deb" 2>&1) || {
        printf '%s\n' "$out"
        echo "lintian did not run"
        exit 1
    }
    printf '%s\n' "$out"
    if printf '%s\n' "$out" | grep -E '^[EW]: ' >/dev/null; then
        echo "lintian: $(printf '%s\n' "$out" | grep -cE '^[EW]: ') error(s) or warning(s)"
        exit 1
    fi
    echo "lintian: no errors, no warnings ($(printf '%s\n' "$out" | grep -c '^O: ') overridden)"
fi
