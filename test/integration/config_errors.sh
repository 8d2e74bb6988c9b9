#!/bin/bash
# Configuration mistakes: each one exits 2 and names file:line and key on stderr.
set -u
# Configurations hold secrets: mptunnel refuses them in files that others can read.
umask 077

: "${MPTUNNEL:?MPTUNNEL must name the mptunnel binary}"
MPTUNNEL=$(realpath "$MPTUNNEL")
dir=$(mktemp -d /tmp/mpt-config-errors.XXXXXX) || exit 1
cleanup() {
    chmod -R u+rwX "$dir" 2>/dev/null
    rm -rf "$dir"
}
trap cleanup EXIT
cd "$dir" || exit 1

SECRET=AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=
SECRET16=AAECAwQFBgcICQoLDA0ODw==
failures=0

fail() {
    echo "FAIL: $*"
    failures=$((failures + 1))
}

# expect NAME ROLE WANT_STATUS WANT_TEXT [ARGS...]: runs `mptunnel ROLE ARGS...` (default
# `-c tunnel.ini`) and checks the exit status and that stderr contains WANT_TEXT.
expect() {
    local name=$1 role=$2 want_status=$3 want=$4 status
    shift 4
    [ $# -gt 0 ] || set -- -c tunnel.ini
    timeout 10 "$MPTUNNEL" "$role" "$@" >out.txt 2>err.txt </dev/null
    status=$?
    if [ "$status" -ne "$want_status" ]; then
        fail "$name ($role): exit status $status, want $want_status; stderr: $(head -c 300 err.txt)"
    elif [ -n "$want" ] && ! grep -qF -- "$want" err.txt; then
        fail "$name ($role): stderr lacks \`$want': $(head -c 300 err.txt)"
    elif [ "$want_status" -eq 0 ]; then
        echo "ok: $name ($role) -> exit 0"
    else
        echo "ok: $name ($role) -> $(head -n 1 err.txt | sed 's/^mptunnel [a-z]*: //')"
    fi
}

# config NAME ROLE WANT_TEXT < file: a configuration mistake, exit status 2.
config() {
    cat >tunnel.ini
    expect "$1" "$2" 2 "$3"
}

config "unknown key" client "tunnel.ini:5: colour: unknown key in [client]" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
colour = blue
bridge = 1.1.1.1:4000
INI

config "unknown section" server "tunnel.ini:3: [serevr]: unknown section" <<INI
[tunnel]
secret = $SECRET
[serevr]
listen = 2000
INI

config "bad address" client \
    "tunnel.ini:4: bridge: invalid address \`1.2.3.4:99999' (port must be 1-65535)" <<INI
[tunnel]
secret = $SECRET
[client]
bridge = 1.2.3.4:99999
listen = 3000
INI

config "missing port" client "tunnel.ini:5: bridge: invalid address \`bridge1.example.com'" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
bridge = bridge1.example.com
INI

config "bad IPv6 brackets" client \
    "tunnel.ini:5: bridge: invalid address \`[2001:db8::7:4000'" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
bridge = [2001:db8::7:4000
INI

config "IPv6 without brackets" server \
    "tunnel.ini:5: target: invalid address \`2001:db8::7:1194'" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
target = 2001:db8::7:1194
INI

config "bad listen port" server "tunnel.ini:4: listen: invalid address \`0'" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 0
target = 127.0.0.1:1194
INI

for role in client server; do
    config "missing secret" $role "tunnel.ini: [tunnel]: no secret" <<INI
[client]
listen = 3000
bridge = 1.1.1.1:4000
[server]
listen = 2000
target = 127.0.0.1:1194
INI
done

config "bad base64" client "tunnel.ini:2: secret: secret is not valid base64" <<INI
[tunnel]
secret = this-is-not-base64!
[client]
listen = 3000
bridge = 1.1.1.1:4000
INI

config "wrong key size" server \
    "tunnel.ini:3: secret: secret decodes to 16 bytes, expected 32" <<INI
[tunnel]
; a 128-bit key
secret = $SECRET16
[server]
listen = 2000
target = 127.0.0.1:1194
INI

config "no bridge" client "tunnel.ini: [client]: no bridge (add \`bridge = HOST:PORT')" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
INI

config "no target" server "tunnel.ini: [server]: no target" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
INI

config "missing secret_file" client \
    "tunnel.ini:2: secret_file: cannot open \`no-such-secret': No such file or directory" <<INI
[tunnel]
secret_file = no-such-secret
[client]
listen = 3000
bridge = 1.1.1.1:4000
INI

if [ "$(id -u)" -ne 0 ]; then
    echo "$SECRET" >secret
    chmod 000 secret
    config "unreadable secret_file" server \
        "tunnel.ini:2: secret_file: cannot open \`secret': Permission denied" <<INI
[tunnel]
secret_file = secret
[server]
listen = 2000
target = 127.0.0.1:1194
INI
    chmod 600 secret
else
    echo "skip: unreadable secret_file (root reads any file)"
fi

mkdir -p secretdir
config "secret_file is a directory" server \
    "tunnel.ini:2: secret_file: \`secretdir' is not a regular file" <<INI
[tunnel]
secret_file = secretdir
[server]
listen = 2000
target = 127.0.0.1:1194
INI

echo "$SECRET16" >secret
config "secret_file with a short key" client \
    "tunnel.ini:2: secret_file: \`secret': secret decodes to 16 bytes" <<INI
[tunnel]
secret_file = secret
[client]
listen = 3000
bridge = 1.1.1.1:4000
INI

config "duplicate key" server "tunnel.ini:5: listen: duplicate key (first given at line 4)" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
listen = 2001
target = 127.0.0.1:1194
INI

config "secret and secret_file" client \
    "tunnel.ini:3: secret_file: \`secret' already given at line 2" <<INI
[tunnel]
secret = $SECRET
secret_file = secret
INI

# The whole file is checked, whichever side reads it.
config "other side's mistake" client "tunnel.ini:8: max_sessions: invalid value \`lots'" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
bridge = 1.1.1.1:4000
[server]
listen = 2000
max_sessions = lots
INI

# A secret file next to the config, named relative to it, from another working directory.
mkdir -p etc
echo "$SECRET16" >etc/key
cat >etc/tunnel.ini <<INI
[tunnel]
secret_file = key
[client]
listen = 3000
bridge = 1.1.1.1:4000
INI
expect "secret_file relative to the config" client 2 \
    "etc/tunnel.ini:2: secret_file: \`etc/key': secret decodes to 16 bytes" -c etc/tunnel.ini

# Key mode (keys from RFC 7748 section 6.1): each side's own key pair; a server lists its clients.
ALICE_PRIV=dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo=
ALICE_PUB=hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo=
BOB_PRIV=XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os=
BOB_PUB=3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08=

config "private_key without server_public_key" client \
    "tunnel.ini:4: private_key: no server_public_key in [client] (key mode needs the server's public key too" <<INI
[client]
listen = 3000
bridge = 1.1.1.1:4000
private_key = $ALICE_PRIV
INI

config "server_public_key without private_key" client \
    "tunnel.ini:6: server_public_key: no private_key in [client]" <<INI
[tunnel]
secret = $SECRET
[client]
listen = 3000
bridge = 1.1.1.1:4000
server_public_key = $BOB_PUB
INI

config "peers without private_key" server \
    "tunnel.ini:6: [peer laptop]: no private_key in [server]" <<INI
[tunnel]
secret = $SECRET
[server]
listen = 2000
target = 127.0.0.1:1194
[peer laptop]
public_key = $ALICE_PUB
INI

config "private_key without peers" server \
    "tunnel.ini:4: private_key: no [peer NAME] section (a server in key mode lets in only the clients it lists" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
INI

config "duplicate peer name" server \
    "tunnel.ini:7: [peer laptop]: duplicate peer name (first at line 5)" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
[peer laptop]
public_key = $ALICE_PUB
[peer laptop]
public_key = $ALICE_PUB
INI

config "two peers, one key" server \
    "tunnel.ini:8: public_key: the same key as [peer laptop] at line 6" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
[peer laptop]
public_key = $ALICE_PUB
[peer phone]
public_key = $ALICE_PUB
INI

config "a peer with the server's key" server \
    "tunnel.ini:6: public_key: the server's own public key (of private_key at line 4)" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
[peer bob]
public_key = $BOB_PUB
INI

config "all-zero private key" client \
    "tunnel.ini:4: private_key: private key is all zero bytes (make one with \`mptunnel genkey')" <<INI
[client]
listen = 3000
bridge = 1.1.1.1:4000
private_key = AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=
server_public_key = $BOB_PUB
INI

config "low-order public key" server \
    "tunnel.ini:6: public_key: public key is a point of small order" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
[peer laptop]
public_key = 4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=
INI
grep -q "$BOB_PRIV" err.txt && fail "a private key was quoted: $(cat err.txt)"

config "bad private key" server \
    "tunnel.ini:4: private_key: private key decodes to 16 bytes, expected 32" <<INI
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $SECRET16
INI
grep -q "$SECRET16" err.txt && fail "a private key was quoted: $(cat err.txt)"

echo "$ALICE_PRIV" >client.key
chmod 644 client.key
config "private_key_file others can read" client \
    "tunnel.ini:4: private_key_file: \`client.key' can be read by others (mode 0644): run \`chmod 600 client.key'" <<INI
[client]
listen = 3000
bridge = 1.1.1.1:4000
private_key_file = client.key
server_public_key = $BOB_PUB
INI
chmod 600 client.key

# Key mode alone is a complete configuration, without [tunnel] secret.
cat >tunnel.ini <<INI
[client]
listen = 3000
bridge = 1.1.1.1:4000
private_key_file = client.key
server_public_key = $BOB_PUB
[server]
listen = 2000
target = 127.0.0.1:1194
private_key = $BOB_PRIV
[peer laptop]
public_key = $ALICE_PUB
INI
expect "key mode without a secret" check 0 ""
grep -qF "$BOB_PRIV" out.txt && fail "check printed a private key"
grep -qF "$ALICE_PRIV" out.txt && fail "check printed a private key"

# Command line.
expect "--help" client 0 "" --help
expect "--help" server 0 "" --help
expect "missing -c" client 2 "mptunnel client: no configuration file (use -c FILE)" -v
expect "missing -c" server 2 "mptunnel server: no configuration file (use -c FILE)" -q
expect "-c without FILE" client 2 "mptunnel client: option \`-c' needs a FILE" -c
expect "unknown option" server 2 "mptunnel server: unknown option \`--colour'" --colour -c x
expect "missing file" client 2 \
    "mptunnel client: nothing.ini: cannot open: No such file or directory" --config nothing.ini

if [ "$failures" -ne 0 ]; then
    echo "$failures case(s) failed"
    exit 1
fi
echo "all cases passed"
