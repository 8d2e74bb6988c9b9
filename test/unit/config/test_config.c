/* config/: every key, every error with its exact file:line and quoted value, hostile input. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fixture.h"

#define SECRET16 "AAECAwQFBgcICQoLDA0ODw=="

static void test_defaults(void)
{
    mpt_config_defaults(&cfg);
    ASSERT_EQ(cfg.log_level, MPT_LOG_INFO);
    ASSERT_EQ(cfg.log_level_set, 0);
    ASSERT_EQ(cfg.have_secret, 0);
    ASSERT_EQ(cfg.sndbuf, 0);
    ASSERT_EQ(cfg.rcvbuf, 0);
    ASSERT_EQ(cfg.client.present, 0);
    ASSERT_EQ(cfg.client.npaths, 0);
    ASSERT_EQ(cfg.client.mode, MPT_MODE_REDUNDANT);
    ASSERT(cfg.client.target_loss == 0.001);
    ASSERT_EQ(cfg.client.max_flows, 1024);
    ASSERT_EQ(cfg.client.flow_timeout_ms, 60000);
    ASSERT_EQ(cfg.client.probe_interval_ms, 200);
    ASSERT_STR_EQ(cfg.client.control, "");
    ASSERT_EQ(cfg.server.max_sessions, 64);
    ASSERT_EQ(cfg.server.max_flows, 4096);
    ASSERT_EQ(cfg.server.flow_timeout_ms, 60000);
    ASSERT_EQ(cfg.server.session_timeout_ms, 120000);
    /* A minimal file keeps them. */
    ok(TUNNEL CLIENT, MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.max_flows, 1024);
    ASSERT_EQ(cfg.server.max_sessions, 64);
    ASSERT_EQ(cfg.client.paths[0].priority, 1);
    ASSERT_EQ(cfg.client.paths[0].weight, 1);
    ASSERT_STR_EQ(cfg.file, "t.ini");
}

static void test_design_example(void)
{
    static const char text[] =
        "[tunnel]\n"
        "secret = " SECRET "     ; or: secret_file = /etc/mptunnel/secret\n"
        "\n"
        "[client]\n"
        "listen = 127.0.0.1:3000         ; where local applications send\n"
        "bridge = 1.1.1.1:4000           ; one line per path (repeatable); host names allowed\n"
        "bridge = bridge1.example.com:4000\n"
        "bridge = [2001:db8::7]:4000\n"
        "\n"
        "[server]\n"
        "listen = 0.0.0.0:2000           ; PORT alone = all addresses (IPv4 and IPv6)\n"
        "target = 127.0.0.1:1194\n";
    uint8_t want[MPT_SECRET_LEN];

    for (int i = 0; i < MPT_SECRET_LEN; i++)
        want[i] = (uint8_t)i;
    for (int role = MPT_ROLE_ANY; role <= MPT_ROLE_SERVER; role++) {
        ok(text, (enum mpt_config_role)role);
        ASSERT_EQ(cfg.have_secret, 1);
        ASSERT_EQ(cfg.secret_line, 2);
        ASSERT_MEM_EQ(cfg.secret, want, MPT_SECRET_LEN);
        ASSERT_EQ(cfg.client.present, 1);
        ASSERT_STR_EQ(cfg.client.listen.host, "127.0.0.1");
        ASSERT_EQ(cfg.client.listen.port, 3000);
        ASSERT_EQ(cfg.client.listen.line, 5);
        ASSERT_EQ(cfg.client.npaths, 3);
        ASSERT_STR_EQ(cfg.client.paths[0].name, "");
        ASSERT_STR_EQ(cfg.client.paths[0].bridge.host, "1.1.1.1");
        ASSERT_EQ(cfg.client.paths[0].bridge.port, 4000);
        ASSERT_EQ(cfg.client.paths[0].bridge.line, 6);
        ASSERT_STR_EQ(cfg.client.paths[1].bridge.host, "bridge1.example.com");
        ASSERT_EQ(cfg.client.paths[1].bridge.line, 7);
        ASSERT_STR_EQ(cfg.client.paths[2].bridge.host, "2001:db8::7");
        ASSERT_EQ(cfg.client.paths[2].bridge.port, 4000);
        ASSERT_EQ(cfg.client.paths[2].priority, 1);
        ASSERT_EQ(cfg.client.paths[2].weight, 1);
        ASSERT_EQ(cfg.server.present, 1);
        ASSERT_STR_EQ(cfg.server.listen.host, "0.0.0.0");
        ASSERT_EQ(cfg.server.listen.port, 2000);
        ASSERT_STR_EQ(cfg.server.target.host, "127.0.0.1");
        ASSERT_EQ(cfg.server.target.port, 1194);
        ASSERT_EQ(cfg.server.target.line, 12);
    }
}

static void test_tunnel_keys(void)
{
    static const char *const levels[] = {"error", "warn", "info", "debug"};
    char text[256];

    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), TUNNEL "log_level = %s\n", levels[i]);
        ok(text, MPT_ROLE_ANY);
        ASSERT_EQ(cfg.log_level, i);
        ASSERT_EQ(cfg.log_level_set, 1);
    }
    ok("[tunnel]\ncipher = auto\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.no_aes, 0);
    ok("[tunnel]\ncipher = chacha20-poly1305\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.no_aes, 1);
    bad("[tunnel]\ncipher = rot13\n", MPT_ROLE_ANY,
        "t.ini:2: cipher: invalid cipher `rot13' (expected auto or chacha20-poly1305)");
    ok("[tunnel]\nsndbuf = 4M\nrcvbuf = 512K\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.sndbuf, 4 << 20);
    ASSERT_EQ(cfg.rcvbuf, 512 << 10);
    ok("[tunnel]\nsndbuf = 65536\nrcvbuf = 1G\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.sndbuf, 65536);
    ASSERT_EQ(cfg.rcvbuf, 1 << 30);
    ok("[tunnel]\nsndbuf = 2m\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.sndbuf, 2 << 20);
    bad("[tunnel]\nlog_level = loud\n", MPT_ROLE_ANY,
        "t.ini:2: log_level: invalid level `loud' (expected error, warn, info or debug)");
    bad("[tunnel]\nsndbuf = 2G\n", MPT_ROLE_ANY,
        "t.ini:2: sndbuf: invalid size `2G' (expected e.g. 4M, 512K, 65536; max 1G)");
    bad("[tunnel]\n\nrcvbuf = 4X\n", MPT_ROLE_ANY,
        "t.ini:3: rcvbuf: invalid size `4X' (expected e.g. 4M, 512K, 65536; max 1G)");
    bad("[tunnel]\nrcvbuf = 0\n", MPT_ROLE_ANY,
        "t.ini:2: rcvbuf: invalid size `0' (expected e.g. 4M, 512K, 65536; max 1G)");
    bad("[tunnel]\nrcvbuf = -4M\n", MPT_ROLE_ANY,
        "t.ini:2: rcvbuf: invalid size `-4M' (expected e.g. 4M, 512K, 65536; max 1G)");
}

static void test_secret(void)
{
    /* Padding is optional; surrounding whitespace is not part of it. */
    ok("[tunnel]\nsecret = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8\n", MPT_ROLE_ANY);
    ASSERT_EQ(cfg.have_secret, 1);
    ASSERT_EQ(cfg.secret[31], 31);
    bad("[tunnel]\nsecret = AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8!\n", MPT_ROLE_ANY,
        "t.ini:2: secret: secret is not valid base64 (make one with `mptunnel genkey')");
    bad("[tunnel]\nsecret = AAEC AwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\n", MPT_ROLE_ANY,
        "t.ini:2: secret: secret is not valid base64 (make one with `mptunnel genkey')");
    bad("[tunnel]\nsecret = " SECRET16 "\n", MPT_ROLE_ANY,
        "t.ini:2: secret: secret decodes to 16 bytes, expected 32 (make one with `mptunnel "
        "genkey')");
    bad("[tunnel]\nsecret = " SECRET SECRET "\n", MPT_ROLE_ANY,
        "t.ini:2: secret: secret is not valid base64 (make one with `mptunnel genkey')");
    bad("[tunnel]\nsecret = "
        "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8gISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pw=="
        "\n",
        MPT_ROLE_ANY,
        "t.ini:2: secret: secret decodes to 64 bytes, expected 32 (make one with `mptunnel "
        "genkey')");
    bad("[tunnel]\nsecret = " SECRET "\nsecret_file = /x\n", MPT_ROLE_ANY,
        "t.ini:3: secret_file: `secret' already given at line 2 (use one of them)");
    bad("[tunnel]\nsecret = " SECRET "\nsecret = " SECRET "\n", MPT_ROLE_ANY,
        "t.ini:3: secret: duplicate key (first given at line 2)");
    /* A failed load leaves no half-read secret behind. */
    ASSERT_EQ(cfg.have_secret, 0);
}

static void test_secret_parse(void)
{
    uint8_t out[MPT_SECRET_LEN];
    char e[128];

    ASSERT_EQ(mpt_secret_parse(out, " \t" SECRET "\n", e, sizeof(e)), 0);
    ASSERT_EQ(out[0], 0);
    ASSERT_EQ(out[31], 31);
    ASSERT_EQ(mpt_secret_parse(out, "", e, sizeof(e)), -1);
    ASSERT_STR_EQ(e, "empty secret (make one with `mptunnel genkey')");
    ASSERT_EQ(mpt_secret_parse(out, SECRET "=", e, sizeof(e)), -1);
    {
        char big[300];
        memset(big, 'A', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        ASSERT_EQ(mpt_secret_parse(out, big, e, sizeof(e)), -1);
        ASSERT_STR_EQ(e, "secret too long (expected the base64 of 32 bytes)");
    }
    ASSERT_EQ(mpt_secret_parse(out, "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8==", e, sizeof(e)),
              -1);
    /* URL-safe alphabet is not the ORIGINAL variant. */
    ASSERT_EQ(mpt_secret_parse(out, "-_ECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=", e, sizeof(e)),
              -1);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/mpt-config-XXXXXX");
    ASSERT(mkdtemp(tmpdir) != NULL);
}

static void write_file(const char *path, const char *content, size_t len)
{
    FILE *f = fopen(path, "wb");
    ASSERT(f != NULL);
    ASSERT_EQ(fwrite(content, 1, len, f), len);
    ASSERT_EQ(fclose(f), 0);
    /* Secrets that others can read are refused. */
    ASSERT_EQ(chmod(path, 0600), 0);
}

static void remove_tmpdir(void)
{
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
    ASSERT_EQ(system(cmd), 0);
}

static void test_secret_file(void)
{
    char ini[128], sec[128], text[512], want[600];

    make_tmpdir();
    snprintf(ini, sizeof(ini), "%s/tunnel.ini", tmpdir);
    snprintf(sec, sizeof(sec), "%s/secret", tmpdir);
    write_file(sec, "  " SECRET "\n\n", strlen(SECRET) + 4);

    /* Relative to the config file's directory, not to the working directory. */
    write_file(ini, "[tunnel]\nsecret_file = secret\n", 30);
    ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_ANY, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.have_secret, 1);
    ASSERT_EQ(cfg.secret_line, 2);
    ASSERT_EQ(cfg.secret[5], 5);
    ASSERT_STR_EQ(cfg.file, ini);

    snprintf(text, sizeof(text), "[tunnel]\nsecret_file = %s\n", sec);
    ok(text, MPT_ROLE_ANY);
    ASSERT_EQ(cfg.secret[31], 31);

    snprintf(text, sizeof(text), "[tunnel]\nsecret_file = %s/missing\n", tmpdir);
    snprintf(want, sizeof(want),
             "t.ini:2: secret_file: cannot open `%s/missing': No such file or directory", tmpdir);
    bad(text, MPT_ROLE_ANY, want);

    snprintf(text, sizeof(text), "[tunnel]\n\nsecret_file = %s\n", tmpdir);
    snprintf(want, sizeof(want), "t.ini:3: secret_file: `%s' is not a regular file", tmpdir);
    bad(text, MPT_ROLE_ANY, want);

    write_file(sec, SECRET16 "\n", strlen(SECRET16) + 1);
    snprintf(text, sizeof(text), "[tunnel]\nsecret_file = %s\n", sec);
    snprintf(want, sizeof(want),
             "t.ini:2: secret_file: `%s': secret decodes to 16 bytes, expected 32 (make one "
             "with `mptunnel genkey')",
             sec);
    bad(text, MPT_ROLE_ANY, want);

    write_file(sec, "not base64 at all\n", 18);
    snprintf(want, sizeof(want),
             "t.ini:2: secret_file: `%s': secret is not valid base64 (make one with `mptunnel "
             "genkey')",
             sec);
    bad(text, MPT_ROLE_ANY, want);

    write_file(sec, SECRET "\0", strlen(SECRET) + 1);
    snprintf(want, sizeof(want), "t.ini:2: secret_file: `%s': secret is not valid base64", sec);
    bad(text, MPT_ROLE_ANY, want);

    write_file(sec, "", 0);
    snprintf(want, sizeof(want),
             "t.ini:2: secret_file: `%s': empty secret (make one with `mptunnel genkey')", sec);
    bad(text, MPT_ROLE_ANY, want);

    {
        static char big[5000];
        memset(big, 'A', sizeof(big));
        write_file(sec, big, sizeof(big));
        snprintf(want, sizeof(want),
                 "t.ini:2: secret_file: `%s' is too large for a secret (max 1023 bytes)", sec);
        bad(text, MPT_ROLE_ANY, want);
    }

    if (geteuid() != 0) {
        write_file(sec, SECRET, strlen(SECRET));
        ASSERT_EQ(chmod(sec, 0), 0);
        snprintf(want, sizeof(want), "t.ini:2: secret_file: cannot open `%s': Permission denied",
                 sec);
        bad(text, MPT_ROLE_ANY, want);
    }
    remove_tmpdir();
}

static void test_client_keys(void)
{
    static const char *const modes[] = {"redundant", "adaptive", "backup", "balance"};
    char text[512];

    for (int i = 0; i < 4; i++) {
        snprintf(text, sizeof(text), TUNNEL CLIENT "mode = %s\n", modes[i]);
        ok(text, MPT_ROLE_CLIENT);
        ASSERT_EQ(cfg.client.mode, i);
        ASSERT_STR_EQ(mpt_mode_name(cfg.client.mode), modes[i]);
    }
    ok(TUNNEL CLIENT "target_loss = 0.02\nmax_flows = 1000000\nflow_timeout = 2m\n"
                     "probe_interval = 20ms\ncontrol = /run/mptunnel/client.sock\n",
       MPT_ROLE_CLIENT);
    ASSERT(cfg.client.target_loss == 0.02);
    ASSERT_EQ(cfg.client.max_flows, 1000000);
    ASSERT_EQ(cfg.client.flow_timeout_ms, 120000);
    ASSERT_EQ(cfg.client.probe_interval_ms, 20);
    ASSERT_STR_EQ(cfg.client.control, "/run/mptunnel/client.sock");
    ok(TUNNEL CLIENT "target_loss = 1e-4\nmax_flows = 1\nflow_timeout = 1s\n"
                     "probe_interval = 10s\n",
       MPT_ROLE_CLIENT);
    ASSERT(cfg.client.target_loss == 1e-4);
    ASSERT_EQ(cfg.client.max_flows, 1);
    ASSERT_EQ(cfg.client.flow_timeout_ms, 1000);
    ASSERT_EQ(cfg.client.probe_interval_ms, 10000);
    ok(TUNNEL CLIENT "flow_timeout = 90\n", MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.flow_timeout_ms, 90000);
    /* fec mode: from measured loss by default, or a fixed K:M; its wait. */
    ok(TUNNEL CLIENT "mode = fec\n", MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.mode, MPT_MODE_FEC);
    ASSERT_EQ(cfg.client.fec_k, 0);
    ASSERT_EQ(cfg.client.fec_m, 0);
    ASSERT_EQ(cfg.client.fec_wait_ms, 50);
    ok(TUNNEL CLIENT "mode = fec\nfec = 10:6\nfec_wait = 20ms\n", MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.fec_k, 10);
    ASSERT_EQ(cfg.client.fec_m, 6);
    ASSERT_EQ(cfg.client.fec_wait_ms, 20);
    ok(TUNNEL CLIENT "fec = 64:32\n", MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.fec_k, 64);
    ASSERT_EQ(cfg.client.fec_m, 32);
    ASSERT_STR_EQ(mpt_mode_name(MPT_MODE_FEC), "fec");
}

static void test_client_key_errors(void)
{
    static const struct {
        const char *line, *msg;
    } cases[] = {
        {"mode = fastest",
         "mode: invalid mode `fastest' (expected redundant, adaptive, backup, balance or fec)"},
        {"fec = 10", "fec: invalid value `10' (expected K:M, K datagrams 1 to 64 and M repairs 1 "
                     "to 32, as 10:6)"},
        {"fec = 0:1", "fec: invalid value `0:1' (expected K:M, K datagrams 1 to 64 and M "
                      "repairs 1 to 32, as 10:6)"},
        {"fec = 65:1", "fec: invalid value `65:1' (expected K:M, K datagrams 1 to 64 and M repairs "
                       "1 to 32, as 10:6)"},
        {"fec = 10:33", "fec: invalid value `10:33' (expected K:M, K datagrams 1 to 64 and M "
                        "repairs 1 to 32, as 10:6)"},
        {"fec = 10:6x", "fec: invalid value `10:6x' (expected K:M, K datagrams 1 to 64 and M "
                        "repairs 1 to 32, as 10:6)"},
        {"fec_wait = 0", "fec_wait: duration `0' out of range (1ms-10s)"},
        {"target_loss = 0", "target_loss: invalid value `0' (expected a fraction, 0 < x < 1)"},
        {"target_loss = 1", "target_loss: invalid value `1' (expected a fraction, 0 < x < 1)"},
        {"target_loss = nan", "target_loss: invalid value `nan' (expected a fraction, 0 < x < 1)"},
        {"target_loss = 0.1x",
         "target_loss: invalid value `0.1x' (expected a fraction, 0 < x < 1)"},
        {"max_flows = 0", "max_flows: invalid value `0' (expected an integer 1-1000000)"},
        {"max_flows = 1000001",
         "max_flows: invalid value `1000001' (expected an integer 1-1000000)"},
        {"max_flows = -1", "max_flows: invalid value `-1' (expected an integer 1-1000000)"},
        {"max_flows = 99999999999999999999999",
         "max_flows: invalid value `99999999999999999999999' (expected an integer 1-1000000)"},
        {"flow_timeout = 5 s",
         "flow_timeout: invalid duration `5 s' (expected e.g. 30s, 500ms, 2m)"},
        {"flow_timeout = 500ms", "flow_timeout: duration `500ms' out of range (1s-24h)"},
        {"flow_timeout = 25h", "flow_timeout: duration `25h' out of range (1s-24h)"},
        {"probe_interval = 19ms", "probe_interval: duration `19ms' out of range (20ms-10s)"},
        {"probe_interval = 11s", "probe_interval: duration `11s' out of range (20ms-10s)"},
        {"probe_interval = 1d",
         "probe_interval: invalid duration `1d' (expected e.g. 30s, 500ms, 2m)"},
        {"control = "
         "/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
         "control: path `/run/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...' too long (max 107 "
         "characters)"},
        {"bridge = 4000", "bridge: invalid address `4000' (expected HOST:PORT)"},
        {"target = 1.2.3.4:5", "target: unknown key in [client] (it belongs in [server])"},
        {"max_sessions = 5", "max_sessions: unknown key in [client] (it belongs in [server])"},
        {"secret = x", "secret: unknown key in [client] (it belongs in [tunnel])"},
        {"weight = 1", "weight: unknown key in [client] (it belongs in [path NAME])"},
        {"listen = 1", "listen: duplicate key (first given at line 4)"},
        {"mode =", "mode: empty value"},
    };
    char text[512], want[512];

    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(text, sizeof(text), TUNNEL CLIENT "%s\n", cases[i].line);
        snprintf(want, sizeof(want), "t.ini:6: %s", cases[i].msg);
        bad(text, MPT_ROLE_ANY, want);
    }
}

static void test_server_keys(void)
{
    ok(TUNNEL SERVER "max_sessions = 100000\nmax_flows = 7\nflow_timeout = 30s\n"
                     "session_timeout = 1h\ncontrol = server.sock\n",
       MPT_ROLE_SERVER);
    ASSERT_EQ(cfg.server.present, 1);
    ASSERT_STR_EQ(cfg.server.listen.host, "");
    ASSERT_EQ(cfg.server.listen.port, 2000);
    ASSERT_EQ(cfg.server.max_sessions, 100000);
    ASSERT_EQ(cfg.server.max_flows, 7);
    ASSERT_EQ(cfg.server.flow_timeout_ms, 30000);
    ASSERT_EQ(cfg.server.session_timeout_ms, 3600000);
    ASSERT_STR_EQ(cfg.server.control, "server.sock");
    ASSERT_EQ(cfg.client.present, 0);
    bad(TUNNEL SERVER "max_sessions = 100001\n", MPT_ROLE_SERVER,
        "t.ini:6: max_sessions: invalid value `100001' (expected an integer 1-100000)");
    bad(TUNNEL SERVER "max_flows = 0x10\n", MPT_ROLE_SERVER,
        "t.ini:6: max_flows: invalid value `0x10' (expected an integer 1-1000000)");
    bad(TUNNEL SERVER "session_timeout = 0\n", MPT_ROLE_SERVER,
        "t.ini:6: session_timeout: duration `0' out of range (1s-24h)");
    bad(TUNNEL SERVER "target = 1194\n", MPT_ROLE_SERVER,
        "t.ini:6: target: duplicate key (first given at line 5)");
    bad(TUNNEL "[server]\ntarget = 1194\n", MPT_ROLE_SERVER,
        "t.ini:4: target: invalid address `1194' (expected HOST:PORT)");
    bad(TUNNEL SERVER "bridge = 1.2.3.4:5\n", MPT_ROLE_SERVER,
        "t.ini:6: bridge: unknown key in [server] (it belongs in [client])");
}

/* `metrics = HOST:PORT' in [client] and [server]: an address like the others, host required. */
static void test_metrics_key(void)
{
    ok(TUNNEL CLIENT SERVER, MPT_ROLE_ANY);
    ASSERT_EQ(cfg.client.metrics.line, 0);
    ASSERT_EQ(cfg.server.metrics.line, 0);
    ok(TUNNEL CLIENT "metrics = 127.0.0.1:9100\n", MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.metrics.host, "127.0.0.1");
    ASSERT_EQ(cfg.client.metrics.port, 9100);
    ASSERT_EQ(cfg.client.metrics.line, 6);
    ASSERT_EQ(cfg.server.metrics.line, 0);
    ok(TUNNEL SERVER "metrics = [::1]:9101\n", MPT_ROLE_SERVER);
    ASSERT_STR_EQ(cfg.server.metrics.host, "::1");
    ASSERT_EQ(cfg.server.metrics.port, 9101);
    ASSERT_EQ(cfg.server.metrics.line, 6);
    ok(TUNNEL SERVER "metrics = localhost:65535\n", MPT_ROLE_SERVER);
    ASSERT_STR_EQ(cfg.server.metrics.host, "localhost");
    bad(TUNNEL CLIENT "metrics = 9100\n", MPT_ROLE_CLIENT,
        "t.ini:6: metrics: invalid address `9100' (expected HOST:PORT)");
    bad(TUNNEL CLIENT "metrics = 127.0.0.1:0\n", MPT_ROLE_CLIENT,
        "t.ini:6: metrics: invalid address `127.0.0.1:0' (port must be 1-65535)");
    bad(TUNNEL SERVER "metrics = ::1:9100\n", MPT_ROLE_SERVER,
        "t.ini:6: metrics: invalid address `::1:9100' (write IPv6 as [ADDR]:PORT)");
    bad(TUNNEL SERVER "metrics = :9100\n", MPT_ROLE_SERVER,
        "t.ini:6: metrics: invalid address `:9100' (empty host)");
    bad(TUNNEL SERVER "metrics = 1.2.3.4:5\nmetrics = 1.2.3.4:6\n", MPT_ROLE_SERVER,
        "t.ini:7: metrics: duplicate key (first given at line 6)");
    bad(TUNNEL SERVER "metrics =\n", MPT_ROLE_SERVER, "t.ini:6: metrics: empty value");
    bad(TUNNEL "metrics = 1.2.3.4:5\n", MPT_ROLE_ANY,
        "t.ini:3: metrics: unknown key in [tunnel] (it belongs in [client])");
}

static void test_addresses(void)
{
    ok(TUNNEL "[client]\nlisten = [::1]:3000\nbridge = [fe80::1]:1\nbridge = h.example:65535\n",
       MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.listen.host, "::1");
    ASSERT_EQ(cfg.client.listen.port, 3000);
    ASSERT_STR_EQ(cfg.client.paths[0].bridge.host, "fe80::1");
    ASSERT_EQ(cfg.client.paths[1].bridge.port, 65535);
    ok(TUNNEL "[client]\nlisten = 3000\nbridge = 1.1.1.1:4000\n", MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.listen.host, "");
    ASSERT_EQ(cfg.client.listen.port, 3000);
    ok(TUNNEL "[server]\nlisten = [::]:2000\ntarget = [::1]:1194\n", MPT_ROLE_SERVER);
    ASSERT_STR_EQ(cfg.server.listen.host, "::");
    ASSERT_STR_EQ(cfg.server.target.host, "::1");

    bad(TUNNEL "[client]\nlisten = 3000\nbridge = 1.2.3.4:99999\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `1.2.3.4:99999' (port must be 1-65535)");
    bad(TUNNEL "[client]\nlisten = 3000\nbridge = 1.2.3.4\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `1.2.3.4' (expected HOST:PORT)");
    bad(TUNNEL "[client]\nlisten = 3000\nbridge = 1.2.3.4:\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `1.2.3.4:' (port must be 1-65535)");
    bad(TUNNEL "[client]\nlisten = 3000\nbridge = [2001:db8::7:4000\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `[2001:db8::7:4000' (expected [IPV6]:PORT)");
    bad(TUNNEL "[client]\nlisten = 3000\nbridge = 2001:db8::7:4000\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `2001:db8::7:4000' (write IPv6 as [ADDR]:PORT)");
    bad(TUNNEL "[client]\nlisten = 3000\nbridge = [2001:db8::7]4000\n", MPT_ROLE_CLIENT,
        "t.ini:5: bridge: invalid address `[2001:db8::7]4000' (expected [IPV6]:PORT)");
    bad(TUNNEL "[client]\nlisten = 65536\n", MPT_ROLE_ANY,
        "t.ini:4: listen: invalid address `65536' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    bad(TUNNEL "[client]\nlisten = 0\n", MPT_ROLE_ANY,
        "t.ini:4: listen: invalid address `0' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    bad(TUNNEL "[server]\nlisten = :2000\n", MPT_ROLE_ANY,
        "t.ini:4: listen: invalid address `:2000' (empty host)");
}

static void test_path_sections(void)
{
    ok(TUNNEL "[client]\nlisten = 3000\nbridge = 1.1.1.1:4000\n"
              "[path lte-1]\nbridge = [2001:db8::1]:4000\nbind = 10.0.0.2\ndevice = wwan0\n"
              "priority = 0\nweight = 1000\n"
              "[path Wifi_2.b]\nbridge = b.example:9\nbind = fe80::2\npriority = 1000\n"
              "[client]\nbridge = 2.2.2.2:4000\n",
       MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.npaths, 4);
    ASSERT_STR_EQ(cfg.client.paths[0].name, "");
    ASSERT_STR_EQ(cfg.client.paths[1].name, "lte-1");
    ASSERT_STR_EQ(cfg.client.paths[1].bridge.host, "2001:db8::1");
    ASSERT_EQ(cfg.client.paths[1].bridge.line, 7);
    ASSERT_STR_EQ(cfg.client.paths[1].bind, "10.0.0.2");
    ASSERT_STR_EQ(cfg.client.paths[1].device, "wwan0");
    ASSERT_EQ(cfg.client.paths[1].priority, 0);
    ASSERT_EQ(cfg.client.paths[1].weight, 1000);
    ASSERT_STR_EQ(cfg.client.paths[2].name, "Wifi_2.b");
    ASSERT_STR_EQ(cfg.client.paths[2].bind, "fe80::2");
    ASSERT_STR_EQ(cfg.client.paths[2].device, "");
    ASSERT_EQ(cfg.client.paths[2].priority, 1000);
    ASSERT_EQ(cfg.client.paths[2].weight, 1);
    ASSERT_STR_EQ(cfg.client.paths[3].name, "");
    ASSERT_STR_EQ(cfg.client.paths[3].bridge.host, "2.2.2.2");
    /* [path] sections alone are enough paths for the client. */
    ok(TUNNEL "[client]\nlisten = 3000\n[path a]\nbridge = 1.1.1.1:1\n", MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.npaths, 1);
    /* A name may be 31 characters long. */
    ok("[path aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\nbridge = 1.1.1.1:1\n", MPT_ROLE_ANY);
    ASSERT_STR_EQ(cfg.client.paths[0].name, "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa");
    ok("[ path \t x ]\nbridge = 1.1.1.1:1\n", MPT_ROLE_ANY);
    ASSERT_STR_EQ(cfg.client.paths[0].name, "x");
}

static void test_path_errors(void)
{
    bad("[path a]\nbind = 1.2.3.4\n[client]\n", MPT_ROLE_ANY,
        "t.ini:1: [path a]: no bridge (add `bridge = HOST:PORT')");
    bad("[client]\n[path a]\n", MPT_ROLE_ANY,
        "t.ini:2: [path a]: no bridge (add `bridge = HOST:PORT')");
    bad("[path a]\nbridge = 1.1.1.1:1\n[path a]\nbridge = 1.1.1.1:2\n", MPT_ROLE_ANY,
        "t.ini:3: [path a]: duplicate path name (first at line 1)");
    bad("[path]\n", MPT_ROLE_ANY, "t.ini:1: [path]: no path name (write [path NAME])");
    bad("[path a b]\n", MPT_ROLE_ANY,
        "t.ini:1: [path a b]: invalid path name (1-31 characters of A-Z a-z 0-9 _ . -)");
    bad("[path aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]\n", MPT_ROLE_ANY,
        "t.ini:1: [path aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa]: invalid path name (1-31 characters of "
        "A-Z a-z 0-9 _ . -)");
    bad("[path a/b]\n", MPT_ROLE_ANY,
        "t.ini:1: [path a/b]: invalid path name (1-31 characters of A-Z a-z 0-9 _ . -)");
    bad("[pathx]\n", MPT_ROLE_ANY, "t.ini:1: [pathx]: unknown section");
    bad("[path a]\nbridge = 1.1.1.1:1\nbridge = 1.1.1.1:2\n", MPT_ROLE_ANY,
        "t.ini:3: bridge: duplicate key (first given at line 2)");
    bad("[path a]\nbridge = 1.1.1.1\n", MPT_ROLE_ANY,
        "t.ini:2: bridge: invalid address `1.1.1.1' (expected HOST:PORT)");
    bad("[path a]\nbridge = 1.1.1.1:1\nbind = eth0\n", MPT_ROLE_ANY,
        "t.ini:3: bind: invalid address `eth0' (expected an IPv4 or IPv6 address)");
    bad("[path a]\nbridge = 1.1.1.1:1\nbind = 1.2.3.4:5\n", MPT_ROLE_ANY,
        "t.ini:3: bind: invalid address `1.2.3.4:5' (expected an IPv4 or IPv6 address)");
    bad("[path a]\nbridge = 1.1.1.1:1\ndevice = abcdefghijklmnop\n", MPT_ROLE_ANY,
        "t.ini:3: device: invalid interface name `abcdefghijklmnop' (max 15 characters, no `/' "
        "or `:')");
    bad("[path a]\nbridge = 1.1.1.1:1\ndevice = eth0:1\n", MPT_ROLE_ANY,
        "t.ini:3: device: invalid interface name `eth0:1' (max 15 characters, no `/' or `:')");
    bad("[path a]\nbridge = 1.1.1.1:1\npriority = 1001\n", MPT_ROLE_ANY,
        "t.ini:3: priority: invalid value `1001' (expected an integer 0-1000)");
    bad("[path a]\nbridge = 1.1.1.1:1\nweight = 0\n", MPT_ROLE_ANY,
        "t.ini:3: weight: invalid value `0' (expected an integer 1-1000)");
    bad("[path a]\nbridge = 1.1.1.1:1\nlisten = 1\n", MPT_ROLE_ANY,
        "t.ini:3: listen: unknown key in [path a] (it belongs in [client])");
    bad("[path a]\nbridge = 1.1.1.1:1\nfoo = 1\n", MPT_ROLE_ANY,
        "t.ini:3: foo: unknown key in [path a]");
    ok("[path abcdefghijklmno]\nbridge = 1.1.1.1:1\ndevice = abcdefghijklmno\n", MPT_ROLE_ANY);
    ASSERT_STR_EQ(cfg.client.paths[0].device, "abcdefghijklmno");
}

static void test_too_many_paths(void)
{
    char text[4096];
    size_t n = 0;

    n += (size_t)snprintf(text + n, sizeof(text) - n, "[client]\n");
    for (int i = 0; i < MPT_CONFIG_MAX_PATHS; i++)
        n += (size_t)snprintf(text + n, sizeof(text) - n, "bridge = 10.0.0.%d:4000\n", i);
    ok(text, MPT_ROLE_ANY);
    ASSERT_EQ(cfg.client.npaths, MPT_CONFIG_MAX_PATHS);
    snprintf(text + n, sizeof(text) - n, "bridge = 10.0.1.1:4000\n");
    bad(text, MPT_ROLE_ANY, "t.ini:18: bridge: too many paths (max 16)");
    snprintf(text + n, sizeof(text) - n, "[path extra]\nbridge = 10.0.1.1:4000\n");
    bad(text, MPT_ROLE_ANY, "t.ini:18: [path extra]: too many paths (max 16)");
}

static void test_unknown(void)
{
    bad(TUNNEL "[foo]\nbar = 1\n", MPT_ROLE_ANY, "t.ini:3: [foo]: unknown section");
    bad(TUNNEL "[foo]\n", MPT_ROLE_ANY, "t.ini:3: [foo]: unknown section");
    bad("[Client]\n", MPT_ROLE_ANY, "t.ini:1: [Client]: unknown section");
    bad(TUNNEL CLIENT "\n\nfoo = 1\n", MPT_ROLE_CLIENT, "t.ini:8: foo: unknown key in [client]");
    bad(TUNNEL "listen = 1\n", MPT_ROLE_ANY,
        "t.ini:3: listen: unknown key in [tunnel] (it belongs in [client])");
    bad("secret = " SECRET "\n", MPT_ROLE_ANY,
        "t.ini:1: secret: key outside any section (put it under [tunnel], [client], [server], "
        "[path NAME], [forward NAME] or [peer NAME])");
    bad(TUNNEL "= 5\n", MPT_ROLE_ANY, "t.ini:3: syntax error: no key before `='");
}

static void test_duplicate_and_empty(void)
{
    bad(TUNNEL CLIENT "[client]\nlisten = 3001\n", MPT_ROLE_ANY,
        "t.ini:7: listen: duplicate key (first given at line 4)");
    bad("[tunnel]\nlog_level = info\nlog_level = debug\n", MPT_ROLE_ANY,
        "t.ini:3: log_level: duplicate key (first given at line 2)");
    bad("[tunnel]\nsecret =\n", MPT_ROLE_ANY, "t.ini:2: secret: empty value");
    bad("[tunnel]\nsecret = ; nothing\n", MPT_ROLE_ANY, "t.ini:2: secret: empty value");
    bad("[client]\nbridge =    \n", MPT_ROLE_ANY, "t.ini:2: bridge: empty value");
    /* The same key in different sections is not a duplicate. */
    ok(CLIENT SERVER, MPT_ROLE_ANY);
}

static void test_comments_and_layout(void)
{
    ok("; a comment\n# another\n[tunnel] ; here too\n  secret = " SECRET " ; trailing\n"
       "\t\n[client]\n    listen = 1.2.3.4:5 ; comment\n\tbridge: 1.1.1.1:4000\n",
       MPT_ROLE_CLIENT);
    ASSERT_STR_EQ(cfg.client.listen.host, "1.2.3.4");
    ASSERT_EQ(cfg.client.listen.port, 5);
    ASSERT_EQ(cfg.client.paths[0].bridge.line, 8);
    /* `;' without whitespace before it is part of the value. */
    bad("[client]\ncontrol = /run/a;b\nlisten=1;2\n", MPT_ROLE_ANY,
        "t.ini:3: listen: invalid address `1;2' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    /* `#' after a value is not a comment. */
    bad("[client]\nlisten = 1 # two\n", MPT_ROLE_ANY,
        "t.ini:2: listen: invalid address `1 # two' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    /* CRLF line ends and a UTF-8 byte order mark. */
    ok("\xEF\xBB\xBF[tunnel]\r\nsecret = " SECRET "\r\n[client]\r\nlisten = 3000\r\n"
       "bridge = 1.1.1.1:4000\r\n",
       MPT_ROLE_CLIENT);
    ASSERT_EQ(cfg.client.paths[0].bridge.line, 5);
    ok("", MPT_ROLE_ANY);
    ok("\n\n\n", MPT_ROLE_ANY);
    ok("[tunnel]", MPT_ROLE_ANY);
}

static void test_syntax_errors(void)
{
    bad(TUNNEL "[client\n", MPT_ROLE_ANY, "t.ini:3: syntax error: `[client' has no closing `]'");
    bad(TUNNEL "[client] x\n", MPT_ROLE_ANY,
        "t.ini:3: syntax error: text after `]' in `[client] x'");
    bad(TUNNEL "just words\n", MPT_ROLE_ANY,
        "t.ini:3: syntax error: `just words' (expected `key = value' or `[section]')");
    bad(TUNNEL "[client ; oops]\n", MPT_ROLE_ANY,
        "t.ini:3: syntax error: `[client' has no closing `]'");
    bad("[tunnel]\n[::1]:4000\n", MPT_ROLE_ANY,
        "t.ini:2: syntax error: text after `]' in `[::1]:4000'");
    /* The first error wins, even a syntax error before a bad value. */
    bad("[tunnel]\nwords\nlog_level = x\n", MPT_ROLE_ANY,
        "t.ini:2: syntax error: `words' (expected `key = value' or `[section]')");
}

static void test_roles(void)
{
    bad(CLIENT, MPT_ROLE_CLIENT,
        "t.ini: [tunnel]: no secret (add `secret = BASE64' or `secret_file = PATH'; `mptunnel "
        "genkey' makes one)");
    bad(SERVER, MPT_ROLE_SERVER,
        "t.ini: [tunnel]: no secret (add `secret = BASE64' or `secret_file = PATH'; `mptunnel "
        "genkey' makes one)");
    bad(TUNNEL SERVER, MPT_ROLE_CLIENT,
        "t.ini: no [client] section (it needs `listen =' and `bridge =')");
    bad(TUNNEL CLIENT, MPT_ROLE_SERVER,
        "t.ini: no [server] section (it needs `listen =' and `target =')");
    bad(TUNNEL "[client]\nbridge = 1.1.1.1:4000\n", MPT_ROLE_CLIENT,
        "t.ini: [client]: no listen (add `listen = [HOST:]PORT')");
    bad(TUNNEL "[client]\nlisten = 3000\n", MPT_ROLE_CLIENT,
        "t.ini: [client]: no bridge (add `bridge = HOST:PORT')");
    bad(TUNNEL "[server]\ntarget = 1.1.1.1:4000\n", MPT_ROLE_SERVER,
        "t.ini: [server]: no listen (add `listen = [HOST:]PORT')");
    bad(TUNNEL "[server]\nlisten = 3000\n", MPT_ROLE_SERVER,
        "t.ini: [server]: no target (add `target = HOST:PORT')");
    /* Each side needs only its own section; ANY needs nothing. */
    ok(TUNNEL CLIENT, MPT_ROLE_CLIENT);
    ok(TUNNEL SERVER, MPT_ROLE_SERVER);
    ok("", MPT_ROLE_ANY);
    /* The whole file is checked whichever side reads it. */
    bad(TUNNEL CLIENT "[server]\nlisten = 99999\n", MPT_ROLE_CLIENT,
        "t.ini:7: listen: invalid address `99999' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    bad(TUNNEL SERVER "[client]\nmode = x\n", MPT_ROLE_SERVER,
        "t.ini:7: mode: invalid mode `x' (expected redundant, adaptive, backup, balance or fec)");
}

static void test_long_lines(void)
{
    size_t big = 100000;
    char *text = malloc(big + 2048), *p;

    ASSERT(text != NULL);
    /* A long value: refused, not split into several lines as a fixed-size reader would. */
    p = text + sprintf(text, "[client]\nbridge = ");
    memset(p, 'a', big);
    strcpy(p + big, ":4000\nlisten = 1\n");
    bad(text, MPT_ROLE_ANY, "t.ini:2: line too long (max 199 characters, comments aside)");
    /* Long comments are fine, whole-line or after a value. */
    p = text + sprintf(text, "[client]\n;");
    memset(p, 'x', big);
    strcpy(p + big, "\nlisten = 1 ;");
    p += big + strlen("\nlisten = 1 ;");
    memset(p, 'y', 1000);
    strcpy(p + 1000, "\n");
    ok(text, MPT_ROLE_ANY);
    ASSERT_EQ(cfg.client.listen.port, 1);
    ASSERT_EQ(cfg.client.listen.line, 3);
    /* A host name as long as the line allows. */
    p = text + sprintf(text, "[client]\nbridge = ");
    memset(p, 'h', 180);
    strcpy(p + 180, ":4000\n");
    ok(text, MPT_ROLE_ANY);
    ASSERT_EQ(strlen(cfg.client.paths[0].bridge.host), 180);
    /* A long section name. */
    p = text + sprintf(text, "[");
    memset(p, 's', 150);
    strcpy(p + 150, "]\n");
    ASSERT_EQ(load(text, MPT_ROLE_ANY), -1);
    ASSERT(strncmp(err, "t.ini:1: [sss", 13) == 0);
    free(text);
}

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)rng;
}

static void test_hostile_bytes(void)
{
    static const char *const pieces[] = {
        "[tunnel]", "[client]",    "[server]", "[path a]", "[path",
        "]",        "[",           "=",        ":",        ";",
        "#",        "\n",          "\r\n",     " ",        "\t",
        "secret",   "secret_file", "listen",   "bridge",   "target",
        SECRET,     "1.2.3.4:5",   "[::1]:5",  "99999",    "\xEF\xBB\xBF",
        "\xff\xfe", "\x01",        "mode",     "balance"};
    char text[2048], e[16];

    for (int iter = 0; iter < 20000; iter++) {
        size_t n = 0;
        while (n < sizeof(text) - 64 && (next_rand() % 64) != 0) {
            if (next_rand() % 3 == 0) {
                text[n++] = (char)(next_rand() % 255 + 1);
            } else {
                const char *s = pieces[next_rand() % (sizeof(pieces) / sizeof(pieces[0]))];
                memcpy(text + n, s, strlen(s));
                n += strlen(s);
            }
        }
        text[n] = '\0';
        for (int role = MPT_ROLE_ANY; role <= MPT_ROLE_SERVER; role++) {
            if (load(text, (enum mpt_config_role)role) != 0) {
                ASSERT(strncmp(err, "t.ini:", 6) == 0);
                for (const char *q = err; *q; q++)
                    ASSERT((unsigned char)*q >= ' ' && *q != 0x7f);
            }
            ASSERT(cfg.client.npaths <= MPT_CONFIG_MAX_PATHS);
        }
        /* A tiny error buffer, or none, is fine too. */
        mpt_config_load_string(&cfg, "t.ini", text, MPT_ROLE_CLIENT, e, sizeof(e));
        ASSERT(strlen(e) < sizeof(e));
        mpt_config_load_string(&cfg, "t.ini", text, MPT_ROLE_CLIENT, NULL, 0);
    }
}

static void test_file_load(void)
{
    static const char nul[] = "[tunnel]\nlog_level = info\nsec\0ret = x\n";
    char ini[128], want[256];

    make_tmpdir();
    snprintf(ini, sizeof(ini), "%s/tunnel.ini", tmpdir);
    write_file(ini, TUNNEL CLIENT, strlen(TUNNEL CLIENT));
    ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_CLIENT, err, sizeof(err)), 0);
    ASSERT_EQ(cfg.client.npaths, 1);

    write_file(ini, nul, sizeof(nul) - 1);
    ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_ANY, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s:3: syntax error: NUL byte in line", ini);
    ASSERT_STR_EQ(err, want);

    write_file(ini, TUNNEL "[client]\nbridge = 1.2.3.4:99999\n",
               strlen(TUNNEL "[client]\nbridge = 1.2.3.4:99999\n"));
    ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_CLIENT, err, sizeof(err)), -1);
    snprintf(want, sizeof(want),
             "%s:4: bridge: invalid address `1.2.3.4:99999' (port must be 1-65535)", ini);
    ASSERT_STR_EQ(err, want);

    snprintf(ini, sizeof(ini), "%s/missing.ini", tmpdir);
    ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_CLIENT, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot open: No such file or directory", ini);
    ASSERT_STR_EQ(err, want);

    ASSERT_EQ(mpt_config_load(&cfg, tmpdir, MPT_ROLE_CLIENT, err, sizeof(err)), -1);
    snprintf(want, sizeof(want), "%s: cannot read: Is a directory", tmpdir);
    ASSERT_STR_EQ(err, want);

    {
        size_t big = 2 * 1024 * 1024;
        char *text = malloc(big);
        ASSERT(text != NULL);
        memset(text, '\n', big);
        snprintf(ini, sizeof(ini), "%s/big.ini", tmpdir);
        write_file(ini, text, big);
        free(text);
        ASSERT_EQ(mpt_config_load(&cfg, ini, MPT_ROLE_ANY, err, sizeof(err)), -1);
        snprintf(want, sizeof(want), "%s: file too large (max 1048576 bytes)", ini);
        ASSERT_STR_EQ(err, want);
    }
    remove_tmpdir();
}

static void test_units(void)
{
    uint32_t v;

    ASSERT_EQ(mpt_duration_parse(&v, "250ms"), 0);
    ASSERT_EQ(v, 250);
    ASSERT_EQ(mpt_duration_parse(&v, "2s"), 0);
    ASSERT_EQ(v, 2000);
    ASSERT_EQ(mpt_duration_parse(&v, "1m"), 0);
    ASSERT_EQ(v, 60000);
    ASSERT_EQ(mpt_duration_parse(&v, "60"), 0);
    ASSERT_EQ(v, 60000);
    ASSERT_EQ(mpt_duration_parse(&v, "2h"), 0);
    ASSERT_EQ(v, 7200000);
    ASSERT_EQ(mpt_duration_parse(&v, "0"), 0);
    ASSERT_EQ(v, 0);
    ASSERT_EQ(mpt_duration_parse(&v, "4294967295ms"), 0);
    ASSERT_EQ(v, 4294967295u);
    ASSERT_EQ(mpt_duration_parse(&v, "4294968s"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "99999999999999999999999ms"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, ""), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "s"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "-1s"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "1.5s"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "1 s"), -1);
    ASSERT_EQ(mpt_duration_parse(&v, "1sec"), -1);

    ASSERT_EQ(mpt_size_parse(&v, "4M"), 0);
    ASSERT_EQ(v, 4194304);
    ASSERT_EQ(mpt_size_parse(&v, "512K"), 0);
    ASSERT_EQ(v, 524288);
    ASSERT_EQ(mpt_size_parse(&v, "512k"), 0);
    ASSERT_EQ(v, 524288);
    ASSERT_EQ(mpt_size_parse(&v, "65536"), 0);
    ASSERT_EQ(v, 65536);
    ASSERT_EQ(mpt_size_parse(&v, "1G"), 0);
    ASSERT_EQ(v, 1073741824);
    ASSERT_EQ(mpt_size_parse(&v, "4G"), -1);
    ASSERT_EQ(mpt_size_parse(&v, "4KB"), -1);
    ASSERT_EQ(mpt_size_parse(&v, "K"), -1);
    ASSERT_EQ(mpt_size_parse(&v, ""), -1);
    ASSERT_EQ(mpt_size_parse(&v, "+4"), -1);
    ASSERT_EQ(mpt_size_parse(&v, "4294967296"), -1);
}

static void test_names(void)
{
    ASSERT_STR_EQ(mpt_mode_name(MPT_MODE_REDUNDANT), "redundant");
    ASSERT_STR_EQ(mpt_mode_name(MPT_MODE_ADAPTIVE), "adaptive");
    ASSERT_STR_EQ(mpt_mode_name(MPT_MODE_BACKUP), "backup");
    ASSERT_STR_EQ(mpt_mode_name(MPT_MODE_BALANCE), "balance");
    ASSERT_STR_EQ(mpt_mode_name((enum mpt_sched_mode)42), "unknown");
    ASSERT_STR_EQ(mpt_log_level_name(MPT_LOG_ERROR), "error");
    ASSERT_STR_EQ(mpt_log_level_name(MPT_LOG_WARN), "warn");
    ASSERT_STR_EQ(mpt_log_level_name(MPT_LOG_INFO), "info");
    ASSERT_STR_EQ(mpt_log_level_name(MPT_LOG_DEBUG), "debug");
    ASSERT_STR_EQ(mpt_log_level_name((enum mpt_log_level) - 1), "unknown");
}

static void test_hostile_messages(void)
{
    /* Control bytes in a quoted value do not reach the terminal. */
    bad("[client]\nlisten = a\x1b[2Jb\n", MPT_ROLE_ANY,
        "t.ini:2: listen: invalid address `a?[2Jb' (expected HOST:PORT, [IPV6]:PORT or PORT)");
    bad("[client]\nbridge = h\x01st:5\n", MPT_ROLE_ANY,
        "t.ini:2: bridge: invalid address `h?st:5' (bad character in host)");
}

static const struct task_case cases[] = {
    {"defaults", test_defaults},
    {"design_example", test_design_example},
    {"tunnel_keys", test_tunnel_keys},
    {"secret", test_secret},
    {"secret_parse", test_secret_parse},
    {"secret_file", test_secret_file},
    {"client_keys", test_client_keys},
    {"client_key_errors", test_client_key_errors},
    {"server_keys", test_server_keys},
    {"metrics_key", test_metrics_key},
    {"addresses", test_addresses},
    {"path_sections", test_path_sections},
    {"path_errors", test_path_errors},
    {"too_many_paths", test_too_many_paths},
    {"unknown", test_unknown},
    {"duplicate_and_empty", test_duplicate_and_empty},
    {"comments_and_layout", test_comments_and_layout},
    {"syntax_errors", test_syntax_errors},
    {"roles", test_roles},
    {"long_lines", test_long_lines},
    {"hostile_bytes", test_hostile_bytes},
    {"hostile_messages", test_hostile_messages},
    {"file_load", test_file_load},
    {"units", test_units},
    {"names", test_names},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
