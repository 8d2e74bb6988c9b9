/* config/show.c: every key of the schema told back with its effective value; no secret ever. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "task.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
/* RFC 7748 section 6.1: Alice's and Bob's keys. */
#define ALICE_PRIV "dwdtCnMYpX08FsFyUbJmRd9ML4frwJkqsXf7pR25LCo="
#define ALICE_PUB "hSDwCYkwp1R0i33ctD73Wg2/Og0mOBr066SpjqqbTmo="
#define BOB_PRIV "XasIfmJKikt54X+Lg4AO5m87sSkmGLb9HC+LJ/+I4Os="
#define BOB_PUB "3p7bfXt9wbTTW2HC7OQ1Nz+DQ8hbeGdNrfx+FG+IK08="

#define MAX_ITEMS 256

struct seen {
    char section[64], key[64], value[600], note[200];
    int path, addr;
};

static struct seen items[MAX_ITEMS];
static int nitems;

static void on_item(void *arg, const struct mpt_config_item *it)
{
    struct seen *s;

    ASSERT_LT(nitems, MAX_ITEMS);
    s = &items[nitems++];
    snprintf(s->section, sizeof(s->section), "%s", it->section);
    snprintf(s->key, sizeof(s->key), "%s", it->key);
    snprintf(s->value, sizeof(s->value), "%s", it->value);
    snprintf(s->note, sizeof(s->note), "%s", it->note ? it->note : "");
    s->path = it->path;
    s->addr = it->addr != NULL;
}

static void walk(const char *text, enum mpt_config_role role)
{
    static struct mpt_config cfg;
    char err[MPT_CONFIG_ERR_MAX];
    int rc = mpt_config_load_string(&cfg, "t.ini", text, role, err, sizeof(err));

    if (rc)
        fprintf(stderr, "unexpected error: %s\n", err);
    ASSERT_EQ(rc, 0);
    nitems = 0;
    mpt_config_walk(&cfg, role, on_item, NULL);
}

static const struct seen *find(const char *section, const char *key, int nth)
{
    for (int i = 0; i < nitems; i++) {
        const char *sec = items[i].section;
        int match = strcmp(sec, section) == 0 ||
                    (strcmp(section, "path") == 0 && strncmp(sec, "path ", 5) == 0) ||
                    (strcmp(section, "forward") == 0 && strncmp(sec, "forward ", 8) == 0) ||
                    (strcmp(section, "peer") == 0 && strncmp(sec, "peer ", 5) == 0);
        if (match && strcmp(items[i].key, key) == 0 && nth-- == 0)
            return &items[i];
    }
    return NULL;
}

static const char *both = "[tunnel]\n"
                          "secret = " SECRET "\n"
                          "[client]\n"
                          "listen = 127.0.0.1:3000\n"
                          "bridge = 127.0.0.1:4000\n"
                          "flow_timeout = 90s\n"
                          "[path lte]\n"
                          "bridge = [::1]:4002\n"
                          "priority = 2\n"
                          "[server]\n"
                          "listen = 2000\n"
                          "target = 127.0.0.1:1194\n"
                          "allow = 10.0.0.0/24:53\n"
                          "private_key = " BOB_PRIV "\n"
                          "[peer laptop]\n"
                          "public_key = " ALICE_PUB "\n"
                          "[forward dns]\n"
                          "listen = 127.0.0.1:5353\n"
                          "target = dns.example.org:53\n";

/* A key added to config.c's table without a line in show.c fails here. */
static void test_every_key(void)
{
    const char *section, *key;
    unsigned i;

    walk(both, MPT_ROLE_ANY);
    for (i = 0; (key = mpt_config_key(i, &section)); i++) {
        if (!find(section, key, 0))
            fprintf(stderr, "[%s] %s: not told by mpt_config_walk\n", section, key);
        ASSERT(find(section, key, 0) != NULL);
    }
    ASSERT_GT(i, 20);
}

static void test_values_and_notes(void)
{
    const struct seen *s;

    walk(both, MPT_ROLE_ANY);
    s = find("client", "flow_timeout", 0);
    ASSERT_STR_EQ(s->value, "90s");
    ASSERT_STR_EQ(s->note, "");
    s = find("server", "flow_timeout", 0);
    ASSERT_STR_EQ(s->value, "1m");
    ASSERT_STR_EQ(s->note, "default");
    s = find("client", "probe_interval", 0);
    ASSERT_STR_EQ(s->value, "200ms");
    s = find("server", "session_timeout", 0);
    ASSERT_STR_EQ(s->value, "2m");
    s = find("client", "bridge", 0);
    ASSERT_STR_EQ(s->value, "127.0.0.1:4000");
    ASSERT_EQ(s->path, 1);
    ASSERT_EQ(s->addr, 1);
    ASSERT(find("client", "bridge", 1) == NULL);
    s = find("path lte", "bridge", 0);
    ASSERT_STR_EQ(s->value, "[::1]:4002");
    ASSERT_EQ(s->path, 2);
    s = find("path lte", "priority", 0);
    ASSERT_STR_EQ(s->value, "2");
    ASSERT_STR_EQ(s->note, "");
    s = find("path lte", "weight", 0);
    ASSERT_STR_EQ(s->value, "1");
    ASSERT_STR_EQ(s->note, "default");
    s = find("server", "listen", 0);
    ASSERT_STR_EQ(s->value, "2000");
    ASSERT_EQ(s->addr, 1);
    s = find("client", "mode", 0);
    ASSERT_STR_EQ(s->value, "redundant");
    ASSERT_STR_EQ(s->note, "default");
    s = find("client", "socks", 0);
    ASSERT_STR_EQ(s->value, "");
    ASSERT_STR_EQ(s->note, "not set");
    s = find("server", "allow", 0);
    ASSERT_STR_EQ(s->value, "10.0.0.0/24:53");
    ASSERT_EQ(s->addr, 0);
    s = find("forward dns", "listen", 0);
    ASSERT_STR_EQ(s->value, "127.0.0.1:5353");
    ASSERT_EQ(s->addr, 1);
    s = find("forward dns", "target", 0);
    ASSERT_STR_EQ(s->value, "dns.example.org:53");
    ASSERT_STR_EQ(s->note, "resolved and checked by the server");
    ASSERT_EQ(s->addr, 0);
    s = find("tunnel", "sndbuf", 0);
    ASSERT_STR_EQ(s->value, "4M");
}

static void test_no_secret(void)
{
    walk(both, MPT_ROLE_ANY);
    for (int i = 0; i < nitems; i++) {
        ASSERT(strstr(items[i].value, "AAECAwQF") == NULL);
        ASSERT(strstr(items[i].note, "AAECAwQF") == NULL);
    }
    ASSERT_STR_EQ(find("tunnel", "secret", 0)->value, "(not shown)");
}

/* Key mode: private keys never told, only their public keys; a peer's keys and rules. */
static void test_keys(void)
{
    static const char text[] = "[client]\n"
                               "listen = 3000\n"
                               "bridge = 127.0.0.1:4000\n"
                               "private_key = " ALICE_PRIV "\n"
                               "server_public_key = " BOB_PUB "\n"
                               "[server]\n"
                               "listen = 2000\n"
                               "target = 127.0.0.1:1194\n"
                               "private_key = " BOB_PRIV "\n"
                               "[peer laptop]\n"
                               "public_key = " ALICE_PUB "\n"
                               "secret = " SECRET "\n"
                               "[peer phone]\n"
                               "public_key = eaYx7t4b+cmPEgMs3q3Q56B5OY/HhriMyEbsia+FpRo=\n"
                               "allow = 10.0.0.0/24:53\n"
                               "allow = dns.internal:53\n"
                               "target = 10.0.0.1:1194\n";
    const struct seen *s;

    walk(text, MPT_ROLE_ANY);
    for (int i = 0; i < nitems; i++) {
        ASSERT(strstr(items[i].value, "dwdtCnMY") == NULL);
        ASSERT(strstr(items[i].note, "dwdtCnMY") == NULL);
        ASSERT(strstr(items[i].value, "XasIfmJK") == NULL);
        ASSERT(strstr(items[i].note, "XasIfmJK") == NULL);
        ASSERT(strstr(items[i].value, "AAECAwQF") == NULL);
        ASSERT(strstr(items[i].note, "AAECAwQF") == NULL);
    }
    s = find("client", "private_key", 0);
    ASSERT_STR_EQ(s->value, "(not shown)");
    ASSERT_STR_EQ(s->note, "set, public key " ALICE_PUB);
    ASSERT_STR_EQ(find("client", "private_key_file", 0)->note, "not set");
    ASSERT_STR_EQ(find("client", "server_public_key", 0)->value, BOB_PUB);
    s = find("server", "private_key", 0);
    ASSERT_STR_EQ(s->value, "(not shown)");
    ASSERT_STR_EQ(s->note, "set, public key " BOB_PUB);
    ASSERT_STR_EQ(find("peer laptop", "public_key", 0)->value, ALICE_PUB);
    s = find("peer laptop", "secret", 0);
    ASSERT_STR_EQ(s->value, "(not shown)");
    ASSERT_STR_EQ(s->note, "set");
    ASSERT_STR_EQ(find("peer laptop", "allow", 0)->note, "not set: [server] target and allow");
    ASSERT_STR_EQ(find("peer laptop", "target", 0)->note, "not set: [server] target and allow");
    s = find("peer phone", "secret", 0);
    ASSERT_STR_EQ(s->value, "");
    ASSERT_STR_EQ(s->note, "not set: none");
    s = find("peer phone", "allow", 0);
    ASSERT_STR_EQ(s->value, "10.0.0.0/24:53");
    ASSERT_EQ(s->addr, 0);
    s = find("peer phone", "allow", 1);
    ASSERT_STR_EQ(s->value, "dns.internal:53");
    ASSERT_EQ(s->addr, 1);
    s = find("peer phone", "target", 0);
    ASSERT_STR_EQ(s->value, "10.0.0.1:1194");
    ASSERT_EQ(s->addr, 1);
    /* Shared-secret mode says so. */
    walk(both, MPT_ROLE_CLIENT);
    s = find("client", "private_key", 0);
    ASSERT_STR_EQ(s->value, "");
    ASSERT_STR_EQ(s->note, "not set: shared-secret mode");
    ASSERT_STR_EQ(find("client", "server_public_key", 0)->note, "not set");
}

static void test_role(void)
{
    walk(both, MPT_ROLE_SERVER);
    ASSERT(find("server", "target", 0) != NULL);
    ASSERT(find("client", "listen", 0) == NULL);
    ASSERT(find("path", "bridge", 0) == NULL);
    walk(both, MPT_ROLE_CLIENT);
    ASSERT(find("server", "target", 0) == NULL);
    ASSERT(find("path", "bridge", 0) != NULL);
}

static void test_sizes(void)
{
    walk("[tunnel]\nsecret = " SECRET "\nsndbuf = 4M\nrcvbuf = 1536\n", MPT_ROLE_ANY);
    ASSERT_STR_EQ(find("tunnel", "sndbuf", 0)->value, "4M");
    ASSERT_STR_EQ(find("tunnel", "rcvbuf", 0)->value, "1536");
    ASSERT_STR_EQ(find("tunnel", "log_level", 0)->note, "default");
}

static const struct task_case cases[] = {
    {"every_key", test_every_key},
    {"values_and_notes", test_values_and_notes},
    {"no_secret", test_no_secret},
    {"role", test_role},
    {"sizes", test_sizes},
    {"keys", test_keys},
    {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
