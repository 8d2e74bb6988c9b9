#!/bin/bash
# The bash completion (packaging/bash-completion/mptunnel) against the built binary: commands,
# options per command, files after -c, and `path' with enable/disable and the file's path names.
#
#   test-completion.sh COMPLETION-FILE MPTUNNEL-BINARY
set -u
comp=$(realpath "$1")
bin=$(realpath "$2")
failures=0
dir=$(mktemp -d /tmp/mpt-completion.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1
mkdir bin && ln -s "$bin" bin/mptunnel
PATH=$dir/bin:$PATH
# shellcheck source=packaging/bash-completion/mptunnel
. "$comp" || exit 1

# complete WORD...: COMPREPLY for the command line `WORD...' with the cursor on the last word.
complete_line()
{
    COMP_WORDS=("$@")
    COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
    COMP_LINE="$*"
    COMP_POINT=${#COMP_LINE}
    COMPREPLY=()
    _mptunnel mptunnel "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
}

# expect "LINE" WANT...: every WANT among the completions of LINE (words split on spaces; a
# trailing space means an empty word to complete).
expect()
{
    local line=$1 w got
    shift
    local -a words
    read -ra words <<<"$line"
    [[ $line == *" " ]] && words+=("")
    complete_line "${words[@]}"
    got=" ${COMPREPLY[*]} "
    for w in "$@"; do
        if [[ $got != *" $w "* ]]; then
            echo "FAIL: \`$line' does not offer \`$w' (offers:${got})"
            failures=$((failures + 1))
            return
        fi
    done
    echo "ok: \`$line' offers $* (${#COMPREPLY[@]} in all)"
}

# refuse "LINE" WORD...: none of WORD among the completions.
refuse()
{
    local line=$1 w
    shift
    local -a words
    read -ra words <<<"$line"
    [[ $line == *" " ]] && words+=("")
    complete_line "${words[@]}"
    for w in "$@"; do
        if [[ " ${COMPREPLY[*]} " == *" $w "* ]]; then
            echo "FAIL: \`$line' offers \`$w'"
            failures=$((failures + 1))
            return
        fi
    done
    echo "ok: \`$line' does not offer $*"
}

expect "mptunnel " client server bridge genkey pubkey demo status check path help
expect "mptunnel st" status
refuse "mptunnel st" client
expect "mptunnel -" --version --help
expect "mptunnel help " client server bridge check path pubkey
expect "mptunnel client -" -c --config -v -q --help
expect "mptunnel server --c" --config
expect "mptunnel check -" -c --config
expect "mptunnel bridge --" --listen --to --loss --delay --jitter --record --max-peers --sndbuf
expect "mptunnel bridge --lo" --loss
refuse "mptunnel bridge --lo" --listen
expect "mptunnel demo --" --paths --loss --rate --duration
expect "mptunnel status --" --config --json --watch --wide --client --server
expect "mptunnel genkey -" --help
expect "mptunnel pub" pubkey
expect "mptunnel pubkey -" --help

touch tunnel.ini other.conf
expect "mptunnel client -c tu" tunnel.ini
expect "mptunnel bridge --listen 4000 --record ot" other.conf
refuse "mptunnel bridge --listen " --to

cat >paths.ini <<'INI'
[client]
listen = 3000
[path lte]
bridge = 192.0.2.1:4000
[ path  fibre-2 ]
bridge = 192.0.2.2:4000
INI
expect "mptunnel path -c paths.ini " enable disable
expect "mptunnel path -c paths.ini dis" disable
expect "mptunnel path -c paths.ini disable " lte fibre-2
expect "mptunnel path -c paths.ini enable f" fibre-2
expect "mptunnel path -" -c --config

if [ "$failures" -ne 0 ]; then
    echo "$failures case(s) failed"
    exit 1
fi
echo "all cases passed"
