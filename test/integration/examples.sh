#!/bin/bash
# The key-mode examples (packaging/examples/keymode-*.ini), their placeholders replaced by keys
# made here, read by `mptunnel check' as `mptunnel server' and `mptunnel client' would: accepted,
# each peer's own allow rules and target shown as given, and the client's key the one its
# [peer] section names.
set -u
umask 077

: "${MPTUNNEL:?MPTUNNEL must name the mptunnel binary}"
: "${MPT_SRC:?MPT_SRC must name the source tree}"
MPTUNNEL=$(realpath "$MPTUNNEL")
ex=$MPT_SRC/packaging/examples
dir=$(mktemp -d /tmp/mpt-examples.XXXXXX) || exit 1
trap 'rm -rf "$dir"' EXIT
cd "$dir" || exit 1

failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}
has() {
    grep -qE -- "$2" "$1" || fail "$1 lacks /$2/: $(head -c 1500 "$1")"
}

key() {
    timeout 10 "$MPTUNNEL" genkey </dev/null
}
pub() {
    printf '%s\n' "$1" | timeout 10 "$MPTUNNEL" pubkey
}
spriv=$(key) && lpriv=$(key) && spub=$(pub "$spriv") && lpub=$(pub "$lpriv") || exit 1
other=$(pub "$(key)") && third=$(pub "$(key)") || exit 1

sed -e "s|REPLACE-WITH-THE-OUTPUT-OF-mptunnel-genkey|$spriv|" \
    -e "s|REPLACE-WITH-THE-LAPTOP'S-mptunnel-pubkey|$lpub|" \
    -e "s|REPLACE-WITH-THE-SENSOR'S-mptunnel-pubkey|$other|" \
    -e "s|REPLACE-WITH-THE-TABLET'S-mptunnel-pubkey|$third|" \
    "$ex/keymode-server.ini" >server.ini
sed -e "s|REPLACE-WITH-THE-OUTPUT-OF-mptunnel-genkey|$lpriv|" \
    -e "s|REPLACE-WITH-THE-SERVER'S-mptunnel-pubkey|$spub|" \
    "$ex/keymode-client.ini" >client.ini
grep -n REPLACE server.ini client.ini && fail "placeholders left"

timeout 30 "$MPTUNNEL" check -c server.ini --server >out.txt 2>err.txt </dev/null
status=$?
[ "$status" = 0 ] || fail "server example: status $status: $(cat err.txt)"
has out.txt '^; server: key mode, 3 peers'
has out.txt '^\[peer laptop\]'
has out.txt '^target = 10\.0\.0\.10:1194'
has out.txt '^allow = 10\.0\.0\.0/24:5060-5080'
has out.txt '^allow = 10\.0\.5\.20:8125'
has out.txt "^public_key = $(printf '%s' "$lpub" | sed 's/[+/]/\\&/g')"
grep -qF -- "$spriv" out.txt && fail "the server's private key printed"

timeout 30 "$MPTUNNEL" check -c client.ini --client >out.txt 2>err.txt </dev/null
status=$?
[ "$status" = 0 ] || fail "client example: status $status: $(cat err.txt)"
has out.txt '^; client: key mode'
has out.txt "$(printf '%s' "$lpub" | sed 's/[+/]/\\&/g')"
grep -qF -- "$lpriv" out.txt && fail "the client's private key printed"

if [ "$failures" -gt 0 ]; then
    echo "examples: $failures failures"
    exit 1
fi
echo "examples: key-mode server and client accepted"
