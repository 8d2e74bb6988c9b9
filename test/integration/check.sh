#!/bin/bash
# mptunnel check: a good file prints every key with its effective value and exits 0 without
# binding anything; a bad file (syntax, a key, a host name that does not resolve, a side missing)
# exits 2 naming file:line and key; no secret is ever printed.
set -u
# Configurations hold secrets: mptunnel refuses them in files that others can read.
umask 077

: "${MPTUNNEL:?MPTUNNEL must name the mptunnel binary}"
MPTUNNEL=$(realpath "$MPTUNNEL")
dir=$(mktemp -d /tmp/mpt-check.XXXXXX) || exit 1
holder=
cleanup() {
    [ -n "$holder" ] && kill "$holder" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1

SECRET=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
failures=0
fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# run ARGS...: `mptunnel check ARGS...' with its status in $status, output in out.txt/err.txt.
run() {
    timeout 30 "$MPTUNNEL" check "$@" >out.txt 2>err.txt </dev/null
    status=$?
}

# has FILE REGEX: the file has a line matching the extended regular expression.
has() {
    grep -qE -- "$2" "$1" || fail "$1 lacks /$2/: $(head -c 1500 "$1")"
}

# A port held by another socket: check must not try to bind it.
python3 -c '
import socket, sys, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
open(sys.argv[1] + ".tmp", "w").write("%d\n" % s.getsockname()[1])
import os; os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(120)' "$dir/port" &
holder=$!
for _ in $(seq 100); do
    [ -s "$dir/port" ] && break
    sleep 0.05
done
held_port=$(cat "$dir/port") || exit 1

cat >tunnel.ini <<INI
[tunnel]
secret = $SECRET
[client]
listen = 127.0.0.1:$held_port
bridge = 127.0.0.1:4000
bridge = localhost:4001
flow_timeout = 90s
control = $dir/client.sock
socks = 127.0.0.1:1080
[path lte]
bridge = [::1]:4002
priority = 2
[forward dns]
listen = 127.0.0.1:5353
target = dns.example.org:53
[server]
listen = 2000
target = localhost:1194
allow = localhost:53
allow = 10.0.0.0/24:*
control = $dir/server.sock
INI

run -c tunnel.ini
[ "$status" -eq 0 ] || fail "good file: exit status $status, want 0; stderr: $(cat err.txt)"
[ ! -s err.txt ] || fail "good file: stderr not empty: $(cat err.txt)"
has out.txt '^; tunnel.ini: good for client and server$'
has out.txt '^\[tunnel\]$'
has out.txt '^secret = \(not shown\) +; set$'
has out.txt '^log_level = info +; default$'
has out.txt "^listen = 127\.0\.0\.1:$held_port\$"
has out.txt '^bridge = 127\.0\.0\.1:4000 +; path 1$'
has out.txt '^bridge = localhost:4001 +; path 2, localhost -> 127\.0\.0\.1:4001$'
has out.txt '^flow_timeout = 90s$'
has out.txt '^probe_interval = 200ms +; default$'
has out.txt '^\[path lte\] +; path 3$'
has out.txt '^priority = 2$'
has out.txt '^weight = 1 +; default$'
has out.txt '^\[server\]$'
has out.txt '^listen = 2000 +; all addresses: \[::\]:2000$'
has out.txt '^target = localhost:1194 +; localhost -> 127\.0\.0\.1:1194$'
has out.txt '^session_timeout = 2m +; default$'
has out.txt '^reorder_cap = 100ms +; default$'
has out.txt '^insecure_permissions = no +; default$'
has out.txt '^rekey_interval = 2m +; default$'
has out.txt "^control = $dir/server\\.sock\$"
has out.txt '^metrics = +; not set$'
has out.txt '^socks = 127\.0\.0\.1:1080$'
has out.txt '^socks_user = +; not set: no authentication$'
has out.txt '^\[forward dns\]$'
has out.txt '^listen = 127\.0\.0\.1:5353$'
has out.txt '^target = dns\.example\.org:53 +; resolved and checked by the server$'
has out.txt '^allow = localhost:53 +; localhost -> 127\.0\.0\.1$'
has out.txt '^allow = 10\.0\.0\.0/24:\*$'
# Every key of the schema, once per section (the unit test checks the schema's completeness).
keys=$(grep -cE '^[a-z_]+ = ' out.txt)
[ "$keys" -eq 48 ] || fail "good file: $keys keys printed, want 48"
echo "good file: exit 0, $keys keys printed"
[ ! -e client.sock ] && [ ! -e server.sock ] || fail "check made a control socket"

run -c tunnel.ini --server
[ "$status" -eq 0 ] || fail "--server: exit status $status"
has out.txt '^; tunnel.ini: good for server$'
grep -q '^\[client\]' out.txt && fail "--server printed [client]"

run -q --config=tunnel.ini
[ "$status" -eq 0 ] && [ ! -s out.txt ] && [ ! -s err.txt ] || fail "-q: status $status, output"

# A secret file: its path is shown, never its content.
echo "$SECRET" >secret.key
sed -i "s|^secret = .*|secret_file = secret.key|" tunnel.ini
run -c tunnel.ini
[ "$status" -eq 0 ] || fail "secret_file: exit status $status; $(cat err.txt)"
has out.txt '^secret_file = secret\.key +; read; the secret is not shown$'
has out.txt '^secret = +; from secret_file$'
cat out.txt err.txt | grep -q AAECAwQF && fail "the secret was printed"

# The mode of each side: shared-secret above; key mode here, private keys never printed, their
# public keys told (RFC 7748 section 6.1 keys), a peer's own rules resolved like the server's.
has out.txt '^; client: shared-secret mode$'
has out.txt '^; server: shared-secret mode$'
ALICE_PRIV=dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=
ALICE_PUB=hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=
BOB_PRIV=XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=
BOB_PUB=3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=
BOB_PUB_RE=${BOB_PUB//+/\\+}
echo "$ALICE_PRIV" >client.key
cat >keys.ini <<INI
[client]
listen = 3000
bridge = 127.0.0.1:4000
private_key_file = client.key
server_public_key = $BOB_PUB
[server]
listen = 2000
private_key = $BOB_PRIV
[peer laptop]
public_key = $ALICE_PUB
target = localhost:1194
[peer phone]
public_key = E75P6uryBMf9M1j8nAByGIHRdCeBKCJ+xnTzf3/pe20=
secret = $SECRET
allow = 10.0.0.0/24:53
[peer tablet]
public_key = NYBy1jZYgNGu6jKa35EhODhR7SGijjt16WXQ0s0WYlQ=
allow = localhost:*
INI
run -c keys.ini
[ "$status" -eq 0 ] || fail "key mode: exit status $status; $(cat err.txt)"
has out.txt '^; keys.ini: good for client and server$'
has out.txt '^; client: key mode$'
has out.txt '^; server: key mode, 3 peers$'
has out.txt "^private_key = +; from private_key_file, public key $ALICE_PUB\$"
has out.txt '^private_key_file = client\.key +; read; the key is not shown$'
has out.txt "^server_public_key = $BOB_PUB_RE\$"
has out.txt "^private_key = \(not shown\) +; set, public key $BOB_PUB_RE\$"
has out.txt '^\[peer phone\]$'
has out.txt '^secret = \(not shown\) +; set$'
has out.txt '^target = localhost:1194 +; localhost -> 127\.0\.0\.1:1194$'
has out.txt '^allow = localhost:\* +; localhost -> 127\.0\.0\.1$'
cat out.txt err.txt | grep -qE "AAECAwQF|dwdtCnMY|XasIfmJK" && fail "key mode: a secret or private key was printed"
run -c keys.ini --server
has out.txt '^; server: key mode, 3 peers$'
grep -q '^; client' out.txt && fail "--server told the client's mode"
echo "key mode: exit 0, modes and public keys told, no private key printed"

# bad NAME WANT_TEXT [ARGS...] < file: exit status 2 and WANT_TEXT on stderr, nothing on stdout.
bad() {
    local name=$1 want=$2
    shift 2
    cat >bad.ini
    [ $# -gt 0 ] || set -- -c bad.ini
    run "$@"
    if [ "$status" -ne 2 ]; then
        fail "$name: exit status $status, want 2; stderr: $(head -c 300 err.txt)"
    elif ! grep -qF -- "$want" err.txt; then
        fail "$name: stderr lacks \`$want': $(head -c 300 err.txt)"
    elif [ -s out.txt ]; then
        fail "$name: printed settings: $(head -c 300 out.txt)"
    elif grep -q AAECAwQF err.txt; then
        fail "$name: the secret was printed"
    else
        echo "ok: $name -> $(head -n 1 err.txt)"
    fi
}

bad "unknown key" "mptunnel check: bad.ini:5: colour: unknown key in [client]" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
colour = blue
bridge = 127.0.0.1:4000
INI

bad "host name that does not resolve" \
    "mptunnel check: bad.ini:5: bridge: cannot resolve \`nosuch.invalid'" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
bridge = nosuch.invalid:4000
INI

bad "bad duration" "bad.ini:4: session_timeout: invalid duration \`soon'" <<INI
[tunnel]
secret = $SECRET
[server]
session_timeout = soon
listen = 2000
target = 127.0.0.1:1194
INI

bad "side missing what it needs" "bad.ini: [server]: no target" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
INI

bad "side asked for but absent" "bad.ini: no [client] section" -c bad.ini --client <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
target = 127.0.0.1:1194
INI

bad "neither side" "bad.ini: no [client] or [server] section" <<INI
[tunnel]
secret = $SECRET
INI

bad "no secret" "bad.ini: [tunnel]: no secret" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
INI

bad "missing file" "nosuch.ini: cannot open" -c nosuch.ini </dev/null
bad "no -c" "no configuration file (use -c FILE)" -q </dev/null
bad "unknown option" "unknown option \`--frobnicate'" -c bad.ini --frobnicate </dev/null

"$MPTUNNEL" check --help | grep -q '^Usage: mptunnel check -c FILE' || fail "check --help"

if [ "$failures" -ne 0 ]; then
    echo "$failures failure(s)"
    exit 1
fi
echo "all check cases passed"
