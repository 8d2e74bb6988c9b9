/* config/: many targets through one tunnel: [forward NAME], `socks', the server's `allow' rules,
 * each error with its file:line and quoted value, hostile values. */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

static void test_forwards(void)
{
    ok(TUNNEL CLIENT "socks = 127.0.0.1:1080\n"
                     "[forward dns]\nlisten = 127.0.0.1:5353\ntarget = 10.0.0.53:53\n"
                     "[forward voip]\nlisten = 5060\ntarget = sip.example.org:5060\n"
                     "[forward v6]\nlisten = [::1]:7000\ntarget = [fd00::7]:7\n",
       MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.socks.port, 1080);
    ASSERT_STR_EQ(cfg.client.socks.host, "127.0.0.1");
    ASSERT_EQ(cfg.client.nforwards, 3);
    ASSERT_STR_EQ(cfg.client.forwards[0].name, "dns");
    ASSERT_STR_EQ(cfg.client.forwards[0].listen.host, "127.0.0.1");
    ASSERT_EQ(cfg.client.forwards[0].listen.port, 5353);
    ASSERT_STR_EQ(cfg.client.forwards[0].target.host, "10.0.0.53");
    ASSERT_EQ(cfg.client.forwards[0].target.port, 53);
    ASSERT_EQ(cfg.client.forwards[0].line, 7);
    ASSERT_EQ(cfg.client.forwards[1].listen.port, 5060);
    ASSERT_STR_EQ(cfg.client.forwards[1].listen.host, "");
    ASSERT_STR_EQ(cfg.client.forwards[1].target.host, "sip.example.org");
    ASSERT_STR_EQ(cfg.client.forwards[2].target.host, "fd00::7");
    /* A file may hold forwards beside a server section; the server does not read them. */
    ok(TUNNEL CLIENT SERVER "[forward a]\nlisten = 5000\ntarget = b:1\n", MPT_ROLE_SERVER);
}

static void test_forward_errors(void)
{
    bad(TUNNEL CLIENT "[forward]\n", MPT_ROLE_CLIENT,
        "t.ini:6: [forward]: no forward name (write [forward NAME])");
    bad(TUNNEL CLIENT "[forward a/b]\n", MPT_ROLE_CLIENT,
        "t.ini:6: [forward a/b]: invalid forward name (1-31 characters of A-Z a-z 0-9 _ . -)");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\n", MPT_ROLE_CLIENT,
        "t.ini:6: [forward a]: no target (add `target = HOST:PORT')");
    bad(TUNNEL CLIENT "[forward a]\ntarget = x:1\n[client]\n", MPT_ROLE_CLIENT,
        "t.ini:6: [forward a]: no listen (add `listen = [HOST:]PORT')");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = x:1\n[forward a]\n", MPT_ROLE_CLIENT,
        "t.ini:9: [forward a]: duplicate forward name (first at line 6)");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\nlisten = 5001\n", MPT_ROLE_CLIENT,
        "t.ini:8: listen: duplicate key (first given at line 7)");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = 53\n", MPT_ROLE_CLIENT,
        "t.ini:8: target: invalid address `53' (expected HOST:PORT)");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = a..b:53\n", MPT_ROLE_CLIENT,
        "t.ini:8: target: invalid host in `a..b:53' (an address, or a name of at most 253 "
        "characters in labels of 1-63 letters, digits, `-' and `_')");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = a%b:53\n", MPT_ROLE_CLIENT,
        "t.ini:8: target: invalid host in `a%b:53' (an address, or a name of at most 253 "
        "characters in labels of 1-63 letters, digits, `-' and `_')");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = x:1\nbridge = 1.2.3.4:5\n",
        MPT_ROLE_CLIENT, "t.ini:9: bridge: unknown key in [forward a] (it belongs in [client])");
    /* Every local socket of the client is its own. */
    bad(TUNNEL CLIENT "[forward a]\nlisten = 127.0.0.1:3000\ntarget = x:1\n", MPT_ROLE_CLIENT,
        "t.ini:7: listen: `127.0.0.1:3000' is already used by `listen' at line 4");
    bad(TUNNEL CLIENT "socks = 3000\n", MPT_ROLE_CLIENT,
        "t.ini:6: socks: `:3000' is already used by `listen' at line 4");
    bad(TUNNEL CLIENT "[forward a]\nlisten = 5000\ntarget = x:1\n"
                      "[forward b]\nlisten = 127.0.0.1:5000\ntarget = x:2\n",
        MPT_ROLE_CLIENT,
        "t.ini:10: listen: `127.0.0.1:5000' is already used by `listen' at line 7");
    ok(TUNNEL CLIENT "[forward a]\nlisten = 127.0.0.1:5000\ntarget = x:1\n"
                     "[forward b]\nlisten = 127.0.0.2:5000\ntarget = x:2\n",
       MPT_ROLE_CLIENT);
    bad(TUNNEL CLIENT "socks = 1.2.3.4\n", MPT_ROLE_CLIENT,
        "t.ini:6: socks: invalid address `1.2.3.4' (expected HOST:PORT, [IPV6]:PORT or PORT)");
}

/* RFC 1929 username/password for the SOCKS5 front: inline or from a file, never shown. */
static void test_socks_auth(void)
{
    char dir[] = "/tmp/mpt-socks-auth-XXXXXX", pw[64], text[512], want[600];
    FILE *f;

    ok(TUNNEL CLIENT "socks = 1080\nsocks_user = alice\nsocks_password = s3cr3t pass\n",
       MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.socks_user, "alice");
    ASSERT_STR_EQ(cfg.client.socks_password, "s3cr3t pass");
    ASSERT_EQ(cfg.client.socks_user_line, 7);
    ok(TUNNEL CLIENT "socks = 1080\n", MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.socks_user, "");
    bad(TUNNEL CLIENT "socks = 1080\nsocks_user = alice\n", MPT_ROLE_CLIENT,
        "t.ini:7: socks_user: no password (add `socks_password = ...' or "
        "`socks_password_file = PATH')");
    bad(TUNNEL CLIENT "socks = 1080\nsocks_password = x\n", MPT_ROLE_CLIENT,
        "t.ini:7: socks_password: no socks_user (add `socks_user = NAME')");
    bad(TUNNEL CLIENT "socks_user = a\nsocks_password = x\n", MPT_ROLE_CLIENT,
        "t.ini:6: socks_user: no SOCKS5 front to protect (add `socks = [HOST:]PORT')");
    bad(TUNNEL CLIENT "socks = 1080\nsocks_user = a\x01"
                      "b\n",
        MPT_ROLE_CLIENT, "t.ini:7: socks_user: invalid user name `a?b' (a control character)");
    bad(TUNNEL SERVER "[client]\nlisten = 1\nbridge = 1.1.1.1:4\nsocks_password = x\n"
                      "socks_password_file = /x\n",
        MPT_ROLE_ANY,
        "t.ini:10: socks_password_file: `socks_password' already given at line 9 (use one of "
        "them)");

    ASSERT(mkdtemp(dir) != NULL);
    snprintf(pw, sizeof(pw), "%s/pw", dir);
    f = fopen(pw, "w");
    ASSERT(f != NULL);
    fputs("from a file\r\nsecond line ignored\n", f);
    fclose(f);
    ASSERT_EQ(chmod(pw, 0600), 0);
    snprintf(text, sizeof(text),
             TUNNEL CLIENT "socks = 1080\nsocks_user = bob\nsocks_password_file = %s\n", pw);
    ok(text, MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.socks_password, "from a file");
    ASSERT_STR_EQ(cfg.client.socks_password_file, pw);
    f = fopen(pw, "w");
    ASSERT(f != NULL);
    for (int i = 0; i < 256; i++)
        fputc('p', f);
    fclose(f);
    snprintf(want, sizeof(want),
             "t.ini:8: socks_password_file: `%s': invalid password (longer than 255 bytes (RFC "
             "1929))",
             pw);
    bad(text, MPT_ROLE_CLIENT, want);
    f = fopen(pw, "w");
    ASSERT(f != NULL);
    fputs("\n", f);
    fclose(f);
    snprintf(want, sizeof(want), "t.ini:8: socks_password_file: `%s': invalid password (empty)",
             pw);
    bad(text, MPT_ROLE_CLIENT, want);
    f = fopen(pw, "w");
    ASSERT(f != NULL);
    fwrite("ab\0cd\n", 1, 6, f);
    fclose(f);
    snprintf(want, sizeof(want),
             "t.ini:8: socks_password_file: `%s': invalid password (a NUL byte)", pw);
    bad(text, MPT_ROLE_CLIENT, want);
    unlink(pw);
    rmdir(dir);
}

static void test_too_many_forwards(void)
{
    static char text[64 * 1024];
    int n = snprintf(text, sizeof(text), TUNNEL CLIENT);

    for (int i = 0; i <= MPT_CONFIG_MAX_FORWARDS; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n,
                      "[forward f%d]\nlisten = %d\ntarget = t%d:53\n", i, 10000 + i, i);
    bad(text, MPT_ROLE_CLIENT, "t.ini:198: [forward f64]: too many forwards (max 64)");
}

static const char *fmt(const struct mpt_allow *a)
{
    static char buf[400];
    return mpt_allow_format(a, buf, sizeof(buf));
}

static void test_allow(void)
{
    const struct mpt_allow *a = cfg.server.allow;
    char addr[INET6_ADDRSTRLEN];

    ok(TUNNEL SERVER "allow = 10.0.0.53:53\n"
                     "allow = dns.example.org:*\n"
                     "allow = 10.0.0.0/24:5060\n"
                     "allow = 192.168.0.0/16:1000-2000\n"
                     "allow = [fd00::/64]:53\n"
                     "allow = [::1]:1-65535\n"
                     "allow = 0.0.0.0/0:7\n",
       MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.server.nallow, 7);
    ASSERT_EQ(a[0].family, AF_INET);
    ASSERT_EQ(a[0].prefix, 32);
    ASSERT_EQ(a[0].port_lo, 53);
    ASSERT_EQ(a[0].port_hi, 53);
    ASSERT_EQ(a[0].line, 6);
    ASSERT_STR_EQ(fmt(&a[0]), "10.0.0.53:53");
    ASSERT_EQ(a[1].family, 0);
    ASSERT_STR_EQ(a[1].host.host, "dns.example.org");
    ASSERT_EQ(a[1].host.line, 7);
    ASSERT_EQ(a[1].port_lo, 1);
    ASSERT_EQ(a[1].port_hi, 65535);
    ASSERT_STR_EQ(fmt(&a[1]), "dns.example.org:*");
    ASSERT_EQ(a[2].prefix, 24);
    ASSERT_STR_EQ(inet_ntop(AF_INET, a[2].addr, addr, sizeof(addr)), "10.0.0.0");
    ASSERT_STR_EQ(fmt(&a[2]), "10.0.0.0/24:5060");
    ASSERT_EQ(a[3].port_lo, 1000);
    ASSERT_EQ(a[3].port_hi, 2000);
    ASSERT_STR_EQ(fmt(&a[3]), "192.168.0.0/16:1000-2000");
    ASSERT_EQ(a[4].family, AF_INET6);
    ASSERT_EQ(a[4].prefix, 64);
    ASSERT_STR_EQ(fmt(&a[4]), "[fd00::/64]:53");
    ASSERT_EQ(a[5].prefix, 128);
    ASSERT_STR_EQ(fmt(&a[5]), "[::1]:*");
    ASSERT_EQ(a[6].prefix, 0);
    ASSERT_STR_EQ(fmt(&a[6]), "0.0.0.0/0:7");
    /* Nothing allowed but the default target when there is no rule. */
    ok(TUNNEL SERVER, MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.server.nallow, 0);
    /* The default target is optional when rules say what may be reached. */
    ok(TUNNEL "[server]\nlisten = 2000\nallow = 10.0.0.0/8:53\n", MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.server.target.line, 0);
    bad(TUNNEL "[server]\nlisten = 2000\n", MPT_ROLE_SERVER,
        "t.ini: [server]: no target (add `target = HOST:PORT')");
}

static void test_allow_errors(void)
{
#define SYNTAX(v)                                                                                  \
    "t.ini:6: allow: invalid rule `" v "' (expected HOST:PORT, HOST:*, CIDR:PORT or "              \
    "CIDR:LOW-HIGH; IPv6 as [ADDR/LEN]:PORT)"
#define PORTS(v)                                                                                   \
    "t.ini:6: allow: invalid rule `" v "' (ports: PORT, LOW-HIGH or `*', within 1-65535, LOW <= "  \
    "HIGH)"
    bad(TUNNEL SERVER "allow = 10.0.0.1\n", MPT_ROLE_SERVER, SYNTAX("10.0.0.1"));
    bad(TUNNEL SERVER "allow = :53\n", MPT_ROLE_SERVER, SYNTAX(":53"));
    bad(TUNNEL SERVER "allow = fd00::1:53\n", MPT_ROLE_SERVER, SYNTAX("fd00::1:53"));
    bad(TUNNEL SERVER "allow = [10.0.0.1]:53\n", MPT_ROLE_SERVER, SYNTAX("[10.0.0.1]:53"));
    bad(TUNNEL SERVER "allow = [fd00::1:53\n", MPT_ROLE_SERVER, SYNTAX("[fd00::1:53"));
    bad(TUNNEL SERVER "allow = [name]:53\n", MPT_ROLE_SERVER, SYNTAX("[name]:53"));
    bad(TUNNEL SERVER "allow = host/24:53\n", MPT_ROLE_SERVER, SYNTAX("host/24:53"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:0\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:0"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:65536\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:65536"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:20-10\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:20-10"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:1-\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:1-"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:-1\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:-1"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:1-2-3\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:1-2-3"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:**\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:**"));
    bad(TUNNEL SERVER "allow = 10.0.0.0:+5\n", MPT_ROLE_SERVER, PORTS("10.0.0.0:+5"));
    bad(TUNNEL SERVER "allow = 10.0.0.1/24:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `10.0.0.1/24:53' (address bits set past the /24 prefix)");
    bad(TUNNEL SERVER "allow = [fd00::1/64]:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `[fd00::1/64]:53' (address bits set past the /64 prefix)");
    bad(TUNNEL SERVER "allow = 10.0.0.0/33:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `10.0.0.0/33:53' (prefix length must be 0-32)");
    bad(TUNNEL SERVER "allow = 10.0.0.0/024:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `10.0.0.0/024:53' (prefix length must be 0-32)");
    bad(TUNNEL SERVER "allow = 10.0.0.0/:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `10.0.0.0/:53' (prefix length must be 0-32)");
    bad(TUNNEL SERVER "allow = [::/129]:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `[::/129]:53' (prefix length must be 0-128)");
    bad(TUNNEL SERVER "allow = a..b:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `a..b:53' (not an address, block or host name)");
    bad(TUNNEL SERVER "allow = a b:53\n", MPT_ROLE_SERVER,
        "t.ini:6: allow: invalid rule `a b:53' (not an address, block or host name)");
    bad(TUNNEL SERVER "allow = 10.0.0.53:53\nallow = 10.0.0.53/32:53\n", MPT_ROLE_SERVER,
        "t.ini:7: allow: `10.0.0.53/32:53' already allowed at line 6");
    bad(TUNNEL "[client]\nallow = 1.2.3.4:5\n", MPT_ROLE_ANY,
        "t.ini:4: allow: unknown key in [client] (it belongs in [server])");
#undef SYNTAX
#undef PORTS
}

static void test_hostile_names(void)
{
    char label[70], name[300], text[1024];

    memset(label, 'a', 63);
    label[63] = '\0';
    snprintf(name, sizeof(name), "%s.%s.%s.%.61s", label, label, label, label);
    ASSERT_EQ(strlen(name), 253);
    ASSERT_EQ(mpt_hostname_valid(name), 1);
    snprintf(name, sizeof(name), "%s.%s.%s.%.62s", label, label, label, label);
    ASSERT_EQ(mpt_hostname_valid(name), 0); /* 254 */
    memset(label, 'a', 64);
    label[64] = '\0';
    ASSERT_EQ(mpt_hostname_valid(label), 0);
    ASSERT_EQ(mpt_hostname_valid(""), 0);
    ASSERT_EQ(mpt_hostname_valid("."), 0);
    ASSERT_EQ(mpt_hostname_valid("a.b."), 1);
    ASSERT_EQ(mpt_hostname_valid("::1"), 1);
    ASSERT_EQ(mpt_hostname_valid("a\xc3\xa9"), 0);
    ASSERT_EQ(mpt_hostname_valid("a\x01"), 0);
    /* A message never carries control bytes of a hostile value. */
    snprintf(text, sizeof(text), TUNNEL SERVER "allow = a\x1b[2Jb:53\n");
    ASSERT_EQ(load(text, MPT_ROLE_SERVER), -1);
    for (const char *p = err; *p; p++)
        ASSERT((unsigned char)*p >= ' ');
    /* Every prefix of a good rule either parses or is refused with a reason. */
    {
        const char *rules[] = {"[fd00:1:2::/48]:100-200", "10.1.0.0/16:*", "name.example:53"};
        for (unsigned r = 0; r < sizeof(rules) / sizeof(rules[0]); r++) {
            char part[64];
            struct mpt_allow a;
            for (size_t n = 0; n <= strlen(rules[r]); n++) {
                snprintf(part, sizeof(part), "%.*s", (int)n, rules[r]);
                err[0] = '\0';
                if (mpt_allow_parse(&a, part, err, sizeof(err)) != 0)
                    ASSERT(err[0] != '\0');
            }
            ASSERT_EQ(mpt_allow_parse(&a, rules[r], err, sizeof(err)), 0);
            ASSERT_STR_EQ(fmt(&a), rules[r]);
        }
    }
}

static void test_too_many_rules(void)
{
    static char text[64 * 1024];
    int n = snprintf(text, sizeof(text), TUNNEL SERVER);

    for (int i = 0; i <= MPT_CONFIG_MAX_ALLOW; i++)
        n += snprintf(text + n, sizeof(text) - (size_t)n, "allow = 10.0.%d.%d:53\n", i / 200,
                      i % 200);
    bad(text, MPT_ROLE_SERVER, "t.ini:262: allow: too many rules (max 256)");
}

static const struct task_case cases[] = {
    {"forwards", test_forwards},
    {"forward_errors", test_forward_errors},
    {"too_many_forwards", test_too_many_forwards},
    {"socks_auth", test_socks_auth},
    {"allow", test_allow},
    {"allow_errors", test_allow_errors},
    {"hostile_names", test_hostile_names},
    {"too_many_rules", test_too_many_rules},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
