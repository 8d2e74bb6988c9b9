# Sourced by run-tests.sh and run-demo.sh: installs the Debian packages that are missing.
#
# MPT_BUILD_DEPS: what building mptunnel needs on Debian 12 (the README's list).
#
# mpt_install_deps PACKAGE...
#   Installs with `apt-get install -y` the packages dpkg does not report as installed; runs
#   `apt-get update` once, and only if something is missing. Needs root (or sudo without a
#   password) only when it has to install. Returns non-zero if installation fails. Packages of
#   MPT_NO_RECOMMENDS are installed without the packages they recommend.

MPT_BUILD_DEPS=(build-essential cmake ninja-build pkg-config libuv1-dev libinih-dev libsodium-dev
    libsystemd-dev libhttp-parser-dev libisal-dev)

# wireguard-tools recommends a kernel image (for its module): the lab uses the running kernel's
# module or wireguard-go.
MPT_NO_RECOMMENDS=(wireguard-tools)

mpt_pkg_installed()
{
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

mpt_install_deps()
{
    local missing=() plain=() norec=() p
    local -a asroot=()

    if ! command -v dpkg-query >/dev/null 2>&1; then
        echo "==> not a Debian system: not installing anything (need: $*)" >&2
        return 0
    fi
    for p in "$@"; do
        mpt_pkg_installed "$p" || missing+=("$p")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        echo "==> build dependencies present"
        return 0
    fi
    if [ "$(id -u)" -ne 0 ]; then
        if command -v sudo >/dev/null 2>&1; then
            asroot=(sudo -n)
        else
            echo "error: missing packages: ${missing[*]}; run as root or install them" >&2
            return 1
        fi
    fi
    echo "==> installing: ${missing[*]}"
    "${asroot[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update </dev/null || return 1
    for p in "${missing[@]}"; do
        if [[ " ${MPT_NO_RECOMMENDS[*]} " == *" $p "* ]]; then
            norec+=("$p")
        else
            plain+=("$p")
        fi
    done
    if [ ${#plain[@]} -gt 0 ]; then
        "${asroot[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y "${plain[@]}" \
            </dev/null || return 1
    fi
    if [ ${#norec[@]} -gt 0 ]; then
        "${asroot[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y \
            --no-install-recommends "${norec[@]}" </dev/null || return 1
    fi
}
