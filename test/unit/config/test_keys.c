/* config/: key mode. [client] private_key and server_public_key, [server] private_key, [peer NAME]
 * sections; each error with its exact file:line, key material never quoted, key files held to
 * the rules of secret files. Keys from RFC 7748 section 6.1 (Alice and Bob). */
#include <fcntl.h>
#include <sodium.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

#define ALICE_PRIV "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define ALICE_PUB "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define BOB_PRIV "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os="
#define BOB_PUB "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="
/* The public key of the private key 0x07 * 32. */
#define CAROL_PUB "E75P6uryBMf9M1j8nAByGIHRdCeBKCJ+xnTzf3/pe20="
#define DAVE_PUB "NYBy1jZYgNGu6jKa35EhODhR7SGijjt16WXQ0s0WYlQ=" /* of 0x20, 0x21 ... 0x3f */
#define ZERO_KEY "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="
#define ONE_POINT "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="    /* order 4 */
#define ORDER8_POINT "4Ot6fDtBuK4WVuP68Z/EatoJjeucMrH9hmIFFl9JuAA=" /* order 8 */
#define P_MINUS_1 "7P///////////////////////////////////////38="    /* order 2 */

/* A client in key mode (Alice) naming Bob's server; a server in key mode (Bob) with one peer. */
#define CLIENT_KEYS CLIENT "private_key = " ALICE_PRIV "\nserver_public_key = " BOB_PUB "\n"
#define SERVER_KEY SERVER "private_key = " BOB_PRIV "\n"
#define LAPTOP "[peer laptop]\npublic_key = " ALICE_PUB "\n"

static void hex(uint8_t out[32], const char *h)
{
    ASSERT_EQ(sodium_hex2bin(out, 32, h, strlen(h), NULL, NULL, NULL), 0);
}

static void test_client_keys(void)
{
    uint8_t priv[32], pub[32], server[32], psk[32], zero[32] = {0};

    hex(priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    hex(pub, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    hex(server, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    /* No [tunnel] secret: key mode alone is a complete client. */
    ok(CLIENT_KEYS, MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.have_secret, 0);
    ASSERT_EQ(cfg.client.key.have_private_key, 1);
    ASSERT_EQ(cfg.client.key.line, 4);
    ASSERT_MEM_EQ(cfg.client.key.private_key, priv, 32);
    ASSERT_MEM_EQ(cfg.client.key.public_key, pub, 32);
    ASSERT_STR_EQ(cfg.client.key.file, "");
    ASSERT_EQ(cfg.client.have_server_public_key, 1);
    ASSERT_EQ(cfg.client.server_public_key_line, 5);
    ASSERT_MEM_EQ(cfg.client.server_public_key, server, 32);
    ASSERT_EQ(mpt_config_key_mode(&cfg, MPT_ROLE_CLIENT), 1);
    ASSERT_EQ(mpt_config_key_mode(&cfg, MPT_ROLE_SERVER), 0);
    mpt_config_peer_psk(&cfg, NULL, psk);
    ASSERT_MEM_EQ(psk, zero, 32);
    /* With one, [tunnel] secret is the psk. */
    ok(TUNNEL CLIENT_KEYS, MPT_ROLE_CLIENT);
    mpt_config_peer_psk(&cfg, NULL, psk);
    ASSERT_MEM_EQ(psk, cfg.secret, 32);
    ASSERT_EQ(psk[31], 31);
    /* The order of the two keys does not matter; unpadded base64 is fine. */
    ok(CLIENT "server_public_key = " BOB_PUB
              "\nprivate_key = dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo\n",
       MPT_ROLE_CLIENT);
    ASSERT_MEM_EQ(cfg.client.key.public_key, pub, 32);
    /* The server side of the same file is in shared-secret mode and needs the secret. */
    bad(CLIENT_KEYS SERVER, MPT_ROLE_SERVER,
        "t.ini: [tunnel]: no secret (add `secret = BASE64' or `secret_file = PATH'; `mptunnel "
        "genkey' makes one)");
    ok(CLIENT_KEYS SERVER, MPT_ROLE_CLIENT);
    /* Shared-secret mode has no key. */
    ok(TUNNEL CLIENT, MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.key.have_private_key, 0);
    ASSERT_EQ(mpt_config_key_mode(&cfg, MPT_ROLE_CLIENT), 0);
}

static void test_server_keys(void)
{
    static const char text[] = SERVER_KEY /* lines 1-4 */
        LAPTOP                            /* 5-6 */
        "[peer phone]\n"                  /* 7 */
        "public_key = " CAROL_PUB "\n"    /* 8 */
        "secret = ICEiIyQlJicoKSorLC0uLzAxMjM0NTY3ODk6Ozw9Pj8=\n"
        "allow = 10.0.0.0/24:1-65535\n" /* 10 */
        "allow = dns.internal:53\n"     /* 11 */
        "[peer tablet.home-2]\n"        /* 12 */
        "target = 10.0.0.9:1194\n"      /* 13 */
        "public_key = " DAVE_PUB "\n";
    const struct mpt_server_config *sv = &cfg.server;
    uint8_t priv[32], pub[32], alice[32], psk[32], zero[32] = {0};
    char buf[300];

    hex(priv, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    hex(pub, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    hex(alice, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    ok(text, MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.have_secret, 0);
    ASSERT_EQ(sv->key.have_private_key, 1);
    ASSERT_EQ(sv->key.line, 4);
    ASSERT_MEM_EQ(sv->key.private_key, priv, 32);
    ASSERT_MEM_EQ(sv->key.public_key, pub, 32);
    ASSERT_EQ(mpt_config_key_mode(&cfg, MPT_ROLE_SERVER), 1);
    ASSERT_EQ(mpt_config_key_mode(&cfg, MPT_ROLE_CLIENT), 0);
    ASSERT_EQ(sv->npeers, 3);
    ASSERT_STR_EQ(sv->peers[0].name, "laptop");
    ASSERT_EQ(sv->peers[0].line, 5);
    ASSERT_EQ(sv->peers[0].public_key_line, 6);
    ASSERT_MEM_EQ(sv->peers[0].public_key, alice, 32);
    ASSERT_EQ(sv->peers[0].have_secret, 0);
    ASSERT_EQ(sv->peers[0].nallow, 0);
    ASSERT_EQ(sv->peers[0].target.line, 0);
    mpt_config_peer_psk(&cfg, &sv->peers[0], psk);
    ASSERT_MEM_EQ(psk, zero, 32);
    ASSERT_STR_EQ(sv->peers[1].name, "phone");
    ASSERT_EQ(sv->peers[1].have_secret, 1);
    ASSERT_EQ(sv->peers[1].secret_line, 9);
    ASSERT_EQ(sv->peers[1].secret[0], 32);
    mpt_config_peer_psk(&cfg, &sv->peers[1], psk);
    ASSERT_EQ(psk[0], 32);
    ASSERT_EQ(psk[31], 63);
    ASSERT_EQ(sv->peers[1].nallow, 2);
    ASSERT_EQ(sv->peers[1].allow_first, 0);
    ASSERT_STR_EQ(mpt_allow_format(&sv->peer_allow[0], buf, sizeof(buf)), "10.0.0.0/24:*");
    ASSERT_STR_EQ(mpt_allow_format(&sv->peer_allow[1], buf, sizeof(buf)), "dns.internal:53");
    ASSERT_EQ(sv->peer_allow[1].line, 11);
    ASSERT_EQ(sv->nallow, 0);
    ASSERT_EQ(sv->npeer_allow, 2);
    ASSERT_STR_EQ(sv->peers[2].name, "tablet.home-2");
    ASSERT_EQ(sv->peers[2].nallow, 0);
    ASSERT_EQ(sv->peers[2].allow_first, 2);
    ASSERT_STR_EQ(sv->peers[2].target.host, "10.0.0.9");
    ASSERT_EQ(sv->peers[2].target.port, 1194);
    ASSERT_EQ(sv->peers[2].target.line, 13);
    /* [tunnel] secret is the psk of peers without one of their own. */
    ok(TUNNEL SERVER_KEY LAPTOP, MPT_ROLE_SERVER);
    mpt_config_peer_psk(&cfg, &cfg.server.peers[0], psk);
    ASSERT_MEM_EQ(psk, cfg.secret, 32);
    /* Peers may come before [server]; the client side of the file needs its secret. */
    ok(LAPTOP SERVER_KEY, MPT_ROLE_SERVER);
    bad(LAPTOP SERVER_KEY CLIENT, MPT_ROLE_CLIENT,
        "t.ini: [tunnel]: no secret (add `secret = BASE64' or `secret_file = PATH'; `mptunnel "
        "genkey' makes one)");
    /* Both sides in key mode in one file, as on a test bench. */
    ok(CLIENT_KEYS SERVER_KEY LAPTOP, MPT_ROLE_CLIENT);
    ok(CLIENT_KEYS SERVER_KEY LAPTOP, MPT_ROLE_SERVER);
    ok(CLIENT_KEYS SERVER_KEY LAPTOP, MPT_ROLE_ANY);
    /* Wiped, every key. */
    mpt_config_wipe(&cfg);
    ASSERT(sodium_is_zero(cfg.server.key.private_key, 32));
    ASSERT(sodium_is_zero(cfg.client.key.private_key, 32));
    ASSERT_EQ(cfg.server.key.have_private_key, 0);
    ASSERT_EQ(cfg.client.key.have_private_key, 0);
}

/* Which keys need which: each a configuration error naming the line. */
static void test_mode_errors(void)
{
    /* The client: both keys or neither. */
    bad(CLIENT "private_key = " ALICE_PRIV "\n", MPT_ROLE_ANY,
        "t.ini:4: private_key: no server_public_key in [client] (key mode needs the server's "
        "public key too: add `server_public_key = BASE64')");
    bad(TUNNEL CLIENT "server_public_key = " BOB_PUB "\n", MPT_ROLE_CLIENT,
        "t.ini:6: server_public_key: no private_key in [client] (key mode needs this side's own "
        "key too: add `private_key = BASE64'; make one with `mptunnel genkey')");
    bad(CLIENT "private_key = " ALICE_PRIV "\nserver_public_key = " ALICE_PUB "\n", MPT_ROLE_CLIENT,
        "t.ini:5: server_public_key: the public key of this side's own private_key (line 4); the "
        "client needs a key pair of its own");
    /* The server: a private key and peers, or neither. */
    bad(TUNNEL SERVER LAPTOP, MPT_ROLE_SERVER,
        "t.ini:6: [peer laptop]: no private_key in [server] (peers are the clients of a server in "
        "key mode, which needs a key of its own: add `private_key = BASE64'; make one with "
        "`mptunnel genkey')");
    bad(SERVER_KEY, MPT_ROLE_SERVER,
        "t.ini:4: private_key: no [peer NAME] section (a server in key mode lets in only the "
        "clients it lists, each with `public_key = BASE64')");
    /* The whole file is checked, whichever side reads it: a client-only file with peers. */
    bad(TUNNEL CLIENT LAPTOP, MPT_ROLE_CLIENT,
        "t.ini:6: [peer laptop]: no private_key in [server] (peers are the clients of a server in "
        "key mode, which needs a key of its own: add `private_key = BASE64'; make one with "
        "`mptunnel genkey')");
    bad(TUNNEL CLIENT SERVER_KEY, MPT_ROLE_CLIENT,
        "t.ini:9: private_key: no [peer NAME] section (a server in key mode lets in only the "
        "clients it lists, each with `public_key = BASE64')");
    /* A peer needs a public key, its own. */
    bad(SERVER_KEY "[peer laptop]\nsecret = " SECRET "\n", MPT_ROLE_SERVER,
        "t.ini:5: [peer laptop]: no public_key (add `public_key = BASE64'; `mptunnel pubkey < "
        "private.key' prints it from the client's private key)");
    bad(SERVER_KEY LAPTOP "[peer phone]\npublic_key = " ALICE_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:8: public_key: the same key as [peer laptop] at line 6 (each client needs a key "
        "pair of its own)");
    bad(SERVER_KEY LAPTOP "[peer bob]\npublic_key = " BOB_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:8: public_key: the server's own public key (of private_key at line 4); each client "
        "needs a key pair of its own");
    /* Order does not matter: the server's key may come after its peers. */
    bad("[peer bob]\npublic_key = " BOB_PUB "\n" SERVER_KEY, MPT_ROLE_SERVER,
        "t.ini:2: public_key: the server's own public key (of private_key at line 6); each client "
        "needs a key pair of its own");
    /* Names. */
    bad(SERVER_KEY LAPTOP "[peer laptop]\npublic_key = " CAROL_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:7: [peer laptop]: duplicate peer name (first at line 5)");
    bad(SERVER_KEY "[peer]\npublic_key = " CAROL_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:5: [peer]: no peer name (write [peer NAME])");
    bad(SERVER_KEY "[peer two words]\npublic_key = " CAROL_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:5: [peer two words]: invalid peer name (1-63 characters of A-Z a-z 0-9 _ . -)");
    bad(SERVER_KEY "[peer "
                   "a234567890123456789012345678901234567890123456789012345678901234]\n",
        MPT_ROLE_SERVER,
        "t.ini:5: [peer a234567890123456789012345678901234567890123456789012345678901234]: "
        "invalid peer name (1-63 characters of A-Z a-z 0-9 _ . -)");
    /* Keys of a peer, and what belongs elsewhere. */
    bad(SERVER_KEY LAPTOP "max_sessions = 10\n", MPT_ROLE_SERVER,
        "t.ini:7: max_sessions: unknown key in [peer laptop] (it belongs in [server])");
    bad(SERVER_KEY LAPTOP "public_key = " CAROL_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:7: public_key: duplicate key (first given at line 6)");
    bad(SERVER_KEY LAPTOP "target = 10.0.0.1:53\ntarget = 10.0.0.2:53\n", MPT_ROLE_SERVER,
        "t.ini:8: target: duplicate key (first given at line 7)");
    bad(SERVER_KEY LAPTOP "target = 10.0.0.1\n", MPT_ROLE_SERVER,
        "t.ini:7: target: invalid address `10.0.0.1' (expected HOST:PORT)");
    bad(SERVER_KEY LAPTOP "allow = 10.0.0.1/24:53\n", MPT_ROLE_SERVER,
        "t.ini:7: allow: invalid rule `10.0.0.1/24:53' (address bits set past the /24 prefix)");
    bad(SERVER_KEY LAPTOP "allow = 10.0.0.0/24:53\nallow = 10.0.0.0/24:53\n", MPT_ROLE_SERVER,
        "t.ini:8: allow: `10.0.0.0/24:53' already allowed at line 7");
    bad(TUNNEL CLIENT "server_public_key = " BOB_PUB "\npublic_key = " BOB_PUB "\n",
        MPT_ROLE_CLIENT,
        "t.ini:7: public_key: unknown key in [client] (it belongs in [peer NAME])");
    bad(TUNNEL SERVER "server_public_key = " BOB_PUB "\n", MPT_ROLE_SERVER,
        "t.ini:6: server_public_key: unknown key in [server] (it belongs in [client])");
    bad("[tunnel]\nprivate_key = " ALICE_PRIV "\n", MPT_ROLE_ANY,
        "t.ini:2: private_key: unknown key in [tunnel] (it belongs in [client])");
    bad(CLIENT_KEYS "private_key = " ALICE_PRIV "\n", MPT_ROLE_CLIENT,
        "t.ini:6: private_key: duplicate key (first given at line 4)");
    /* A peer's own target or allow list makes [server]'s unneeded; without them each peer needs
     * its own. */
    ok("[server]\nlisten = 2000\nprivate_key = " BOB_PRIV "\n" LAPTOP "target = 10.0.0.1:53\n",
       MPT_ROLE_SERVER);
    ok("[server]\nlisten = 2000\nprivate_key = " BOB_PRIV "\n" LAPTOP "allow = 10.0.0.1:53\n",
       MPT_ROLE_SERVER);
    bad("[server]\nlisten = 2000\nprivate_key = " BOB_PRIV "\n" LAPTOP "target = 10.0.0.1:53\n"
        "[peer phone]\npublic_key = " CAROL_PUB "\n",
        MPT_ROLE_SERVER,
        "t.ini:7: [peer phone]: no target (add `target = HOST:PORT' or `allow = ...' to it, or to "
        "[server] for every peer)");
    bad(TUNNEL "[server]\nlisten = 2000\n", MPT_ROLE_SERVER,
        "t.ini: [server]: no target (add `target = HOST:PORT')");
}

/* Keys that are not keys: each refused without quoting what was written. */
static void test_key_values(void)
{
    static const struct {
        const char *text, *want;
    } cases[] = {
        {CLIENT "private_key = not base64 at all!\nserver_public_key = " BOB_PUB "\n",
         "t.ini:4: private_key: private key is not valid base64 (make one with `mptunnel "
         "genkey')"},
        {CLIENT "private_key = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\nserver_public_key "
                "= " BOB_PUB "\n",
         "t.ini:4: private_key: private key decodes to 36 bytes, expected 32 (make one with "
         "`mptunnel genkey')"},
        {CLIENT "private_key = AAECAwQFBgcICQoLDA0ODw==\nserver_public_key = " BOB_PUB "\n",
         "t.ini:4: private_key: private key decodes to 16 bytes, expected 32 (make one with "
         "`mptunnel genkey')"},
        {CLIENT "private_key = " ZERO_KEY "\nserver_public_key = " BOB_PUB "\n",
         "t.ini:4: private_key: private key is all zero bytes (make one with `mptunnel genkey')"},
        {CLIENT "private_key = " ALICE_PRIV "\nserver_public_key = " ZERO_KEY "\n",
         "t.ini:5: server_public_key: public key is all zero bytes (`mptunnel pubkey < "
         "private.key' prints it)"},
        {CLIENT "private_key = " ALICE_PRIV "\nserver_public_key = " ONE_POINT "\n",
         "t.ini:5: server_public_key: public key is a point of small order, which no private key "
         "has (`mptunnel pubkey < private.key' prints it)"},
        {CLIENT "private_key = " ALICE_PRIV "\nserver_public_key = " BOB_PUB "x\n",
         "t.ini:5: server_public_key: public key is not valid base64 (`mptunnel pubkey < "
         "private.key' prints it)"},
        {SERVER_KEY "[peer laptop]\npublic_key = " ORDER8_POINT "\n",
         "t.ini:6: public_key: public key is a point of small order, which no private key has "
         "(`mptunnel pubkey < private.key' prints it)"},
        {SERVER_KEY "[peer laptop]\npublic_key = " P_MINUS_1 "\n",
         "t.ini:6: public_key: public key is a point of small order, which no private key has "
         "(`mptunnel pubkey < private.key' prints it)"},
        {SERVER_KEY "[peer laptop]\npublic_key = " SECRET
                    "\nsecret = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\n",
         "t.ini:7: secret: secret decodes to 36 bytes, expected 32 (make one with `mptunnel "
         "genkey')"},
        {"[server]\nlisten = 2000\nprivate_key = "
         "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIj\n",
         "t.ini:3: private_key: private key decodes to 36 bytes, expected 32 (make one with "
         "`mptunnel genkey')"},
    };

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        bad(cases[i].text, MPT_ROLE_ANY, cases[i].want);
        ASSERT(strstr(err, "dwdtCnMY") == NULL);
        ASSERT(strstr(err, "AAECAwQF") == NULL);
        ASSERT(strstr(err, "XasIfmJK") == NULL);
        ASSERT(sodium_is_zero(cfg.client.key.private_key, 32));
        ASSERT(sodium_is_zero(cfg.server.key.private_key, 32));
    }
    /* A private key pasted where a key name goes is not shown either. */
    bad(CLIENT ALICE_PRIV "\n", MPT_ROLE_ANY,
        "t.ini:4: syntax error: expected `key = value' (the key is not shown: it looks like a "
        "secret, which belongs in `secret = ...' under [tunnel])");
    bad(SERVER_KEY "private_key " BOB_PRIV "\n", MPT_ROLE_ANY,
        "t.ini:5: syntax error: expected `key = value' (the key is not shown: it looks like a "
        "secret, which belongs in `secret = ...' under [tunnel])");
    bad(SERVER_KEY "[peer " BOB_PRIV "]\n", MPT_ROLE_ANY,
        "t.ini:5: syntax error: not a section header (the line is not shown: it may hold a "
        "secret)");
}

static char tmpdir[64];

static void write_file(const char *name, const char *content, mode_t mode)
{
    char path[128];
    int fd;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, name);
    fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    ASSERT(fd >= 0);
    ASSERT_EQ(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    ASSERT_EQ(close(fd), 0);
    ASSERT_EQ(chmod(path, mode), 0);
}

static int load_ini(const char *content, mode_t mode, enum mpt_config_role role)
{
    char path[128];

    write_file("t.ini", content, mode);
    snprintf(path, sizeof(path), "%s/t.ini", tmpdir);
    memset(err, 0, sizeof(err));
    return mpt_config_load(&cfg, path, role, err, sizeof(err));
}

/* private_key_file and a peer's secret_file, held to the rules of [tunnel] secret_file. */
static void test_key_files(void)
{
    char want[700], cmd[100];
    uint8_t alice[32];

    hex(alice, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    strcpy(tmpdir, "/tmp/mpt-keys-XXXXXX");
    ASSERT(mkdtemp(tmpdir) != NULL);
    write_file("client.key", ALICE_PRIV "\n", 0600);
    write_file("server.key", "  " BOB_PRIV "  \n\n", 0400);
    write_file("laptop.psk", SECRET "\n", 0600);

    /* Named relative to the config file; only public keys in it, so it may be readable. */
    ASSERT_EQ(load_ini(CLIENT "private_key_file = client.key\nserver_public_key = " BOB_PUB "\n",
                       0644, MPT_ROLE_CLIENT),
              0);
    ASSERT_EQ(cfg.client.key.have_private_key, 1);
    ASSERT_MEM_EQ(cfg.client.key.public_key, alice, 32);
    snprintf(want, sizeof(want), "%s/client.key", tmpdir);
    ASSERT_STR_EQ(cfg.client.key.file, want);
    ASSERT_EQ(load_ini(SERVER
                       "private_key_file = server.key\n[peer laptop]\npublic_key = " ALICE_PUB
                       "\nsecret_file = laptop.psk\n",
                       0644, MPT_ROLE_SERVER),
              0);
    ASSERT_EQ(cfg.server.key.have_private_key, 1);
    ASSERT_EQ(cfg.server.peers[0].have_secret, 1);
    ASSERT_EQ(cfg.server.peers[0].secret_line, 7);
    ASSERT_EQ(cfg.server.peers[0].secret[31], 31);
    snprintf(want, sizeof(want), "%s/laptop.psk", tmpdir);
    ASSERT_STR_EQ(cfg.server.peers[0].secret_file, want);

    /* A private key in the file itself makes the file secret. */
    ASSERT_EQ(load_ini(CLIENT_KEYS, 0644, MPT_ROLE_CLIENT), -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:4: private_key: this file holds a private key and can be read by others "
             "(mode 0644): run `chmod 600 %s/t.ini' (or set `insecure_permissions = yes' in "
             "[tunnel] to accept it)",
             tmpdir, tmpdir);
    ASSERT_STR_EQ(err, want);
    ASSERT(sodium_is_zero(cfg.client.key.private_key, 32));
    ASSERT_EQ(load_ini(SERVER_KEY "[peer laptop]\npublic_key = " ALICE_PUB "\nsecret = " SECRET
                                  "\n",
                       0640, MPT_ROLE_SERVER),
              -1);
    ASSERT(strstr(err, "t.ini:4: private_key: this file holds a private key and can be read by "
                       "its group (mode 0640)") != NULL);
    ASSERT_EQ(load_ini(CLIENT_KEYS, 0600, MPT_ROLE_CLIENT), 0);
    ASSERT_EQ(load_ini("[tunnel]\ninsecure_permissions = yes\n" CLIENT_KEYS, 0644, MPT_ROLE_CLIENT),
              0);

    /* A key file others can read is refused, as a secret file is. */
    write_file("client.key", ALICE_PRIV "\n", 0644);
    ASSERT_EQ(load_ini(CLIENT "private_key_file = client.key\nserver_public_key = " BOB_PUB "\n",
                       0600, MPT_ROLE_CLIENT),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:4: private_key_file: `%s/client.key' can be read by others (mode 0644): run "
             "`chmod 600 %s/client.key' (or set `insecure_permissions = yes' in [tunnel] to accept "
             "it)",
             tmpdir, tmpdir, tmpdir);
    ASSERT_STR_EQ(err, want);
    write_file("laptop.psk", SECRET "\n", 0660);
    ASSERT_EQ(load_ini(SERVER
                       "private_key_file = server.key\n[peer laptop]\npublic_key = " ALICE_PUB
                       "\nsecret_file = laptop.psk\n",
                       0600, MPT_ROLE_SERVER),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:7: secret_file: `%s/laptop.psk' can be read by its group (mode 0660): run "
             "`chmod 600 %s/laptop.psk' (or set `insecure_permissions = yes' in [tunnel] to "
             "accept it)",
             tmpdir, tmpdir, tmpdir);
    ASSERT_STR_EQ(err, want);
    ASSERT(sodium_is_zero(cfg.server.peers[0].secret, 32));

    /* What a secret file may not be, a key file may not be either. */
    ASSERT_EQ(load_ini(CLIENT "private_key_file = none.key\nserver_public_key = " BOB_PUB "\n",
                       0600, MPT_ROLE_CLIENT),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:4: private_key_file: cannot open `%s/none.key': No such file or directory",
             tmpdir, tmpdir);
    ASSERT_STR_EQ(err, want);
    write_file("short.key", "AAECAwQFBgcICQoLDA0ODw==\n", 0600);
    ASSERT_EQ(load_ini(CLIENT "private_key_file = short.key\nserver_public_key = " BOB_PUB "\n",
                       0600, MPT_ROLE_CLIENT),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:4: private_key_file: `%s/short.key': private key decodes to 16 bytes, "
             "expected 32 (make one with `mptunnel genkey')",
             tmpdir, tmpdir);
    ASSERT_STR_EQ(err, want);
    write_file("zero.key", ZERO_KEY "\n", 0600);
    ASSERT_EQ(load_ini(CLIENT "private_key_file = zero.key\nserver_public_key = " BOB_PUB "\n",
                       0600, MPT_ROLE_CLIENT),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:4: private_key_file: private key is all zero bytes (make one with "
             "`mptunnel genkey')",
             tmpdir);
    ASSERT_STR_EQ(err, want);

    /* One of the two per side, and one of secret and secret_file per peer. */
    ASSERT_EQ(load_ini(CLIENT_KEYS "private_key_file = client.key\n", 0600, MPT_ROLE_CLIENT), -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:6: private_key_file: `private_key' already given at line 4 (use one of "
             "them)",
             tmpdir);
    ASSERT_STR_EQ(err, want);
    ASSERT_EQ(load_ini(SERVER_KEY LAPTOP "secret_file = laptop.psk\nsecret = " SECRET "\n", 0600,
                       MPT_ROLE_SERVER),
              -1);
    snprintf(want, sizeof(want),
             "%s/t.ini:8: secret: `secret_file' already given at line 7 (use one of them)", tmpdir);
    ASSERT_STR_EQ(err, want);
    /* ... which is per section: [tunnel] secret and a peer's secret_file go together. */
    write_file("laptop.psk", SECRET "\n", 0600);
    ASSERT_EQ(
        load_ini(TUNNEL SERVER_KEY LAPTOP "secret_file = laptop.psk\n", 0600, MPT_ROLE_SERVER), 0);

    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ASSERT_EQ(system(cmd), 0);
}

/* The tables are bounded: peers, and the allow rules of all peers together. */
static void test_peer_limits(void)
{
    static char text[600 * 1024];
    uint8_t priv[32], pub[32];
    char b64[64];
    int n, line;

    n = snprintf(text, sizeof(text), SERVER_KEY);
    line = 4;
    for (int i = 0; i <= MPT_CONFIG_MAX_PEERS; i++) {
        memset(priv, 0, sizeof(priv));
        priv[1] = (uint8_t)(i & 0xff);
        priv[2] = (uint8_t)(i >> 8);
        priv[3] = 1;
        ASSERT_EQ(mpt_key_public(pub, priv), 0);
        sodium_bin2base64(b64, sizeof(b64), pub, 32, sodium_base64_VARIANT_ORIGINAL);
        n += snprintf(text + n, sizeof(text) - (size_t)n, "[peer p%d]\npublic_key = %s\n", i, b64);
        line += 2;
        ASSERT_LT(n, (int)sizeof(text));
    }
    bad(text, MPT_ROLE_SERVER, "t.ini:2053: [peer p1024]: too many peers (max 1024)");
    ASSERT_EQ(line, 2054);

    n = snprintf(text, sizeof(text), SERVER_KEY LAPTOP);
    for (int i = 0; i < MPT_CONFIG_MAX_PEER_ALLOW; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "allow = 10.%d.%d.0/24:53\n", i / 250,
                      i % 250);
    ok(text, MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.server.npeer_allow, MPT_CONFIG_MAX_PEER_ALLOW);
    n += snprintf(text + n, sizeof(text) - (size_t)n,
                  "[peer phone]\npublic_key = " CAROL_PUB "\nallow = 192.168.0.0/16:*\n");
    bad(text, MPT_ROLE_SERVER,
        "t.ini:1033: allow: too many rules (max 1024 in all [peer] sections)");
    /* [server]'s own rules are counted apart. */
    ASSERT_EQ(load(SERVER_KEY "allow = 10.0.0.0/8:53\n" LAPTOP "allow = 10.0.0.0/8:53\n",
                   MPT_ROLE_SERVER),
              0);
    ASSERT_EQ(cfg.server.nallow, 1);
    ASSERT_EQ(cfg.server.npeer_allow, 1);
}

/* X25519 itself, against RFC 7748 section 6.1, and the points refused. */
static void test_x25519(void)
{
    uint8_t priv[32], pub[32], want[32], zero[32] = {0};

    hex(priv, "77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    hex(want, "8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    ASSERT_EQ(mpt_key_public(pub, priv), 0);
    ASSERT_MEM_EQ(pub, want, 32);
    ASSERT_EQ(mpt_key_low_order(pub), 0);
    hex(priv, "5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    hex(want, "de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    ASSERT_EQ(mpt_key_public(pub, priv), 0);
    ASSERT_MEM_EQ(pub, want, 32);
    ASSERT_EQ(mpt_key_public(pub, zero), -1);
    ASSERT_EQ(mpt_key_low_order(zero), 1);
    /* The points of order 1, 2, 4 and 8 and their non-canonical forms (libsodium's list). */
    static const char *const low[] = {
        "0100000000000000000000000000000000000000000000000000000000000000",
        "e0eb7a7c3b41b8ae1656e3faf19fc46ada098deb9c32b1fd866205165f49b800",
        "5f9c95bca3508c24b1d0b1559c83ef5b04445cc4581c8e86d8224eddd09f1157",
        "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
        "eeffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f",
    };
    for (size_t i = 0; i < sizeof(low) / sizeof(low[0]); i++) {
        hex(pub, low[i]);
        ASSERT_EQ(mpt_key_low_order(pub), 1);
    }
}

static const struct task_case cases[] = {
    {"client_keys", test_client_keys}, {"server_keys", test_server_keys},
    {"mode_errors", test_mode_errors}, {"key_values", test_key_values},
    {"key_files", test_key_files},     {"peer_limits", test_peer_limits},
    {"x25519", test_x25519},           {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
