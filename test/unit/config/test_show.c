/* config/show.c: every key of the schema told back with its effective value; no secret ever. */
#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "task.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="

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
                    (strcmp(section, "forward") == 0 && strncmp(sec, "forward ", 8) == 0);
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
    {"every_key", test_every_key}, {"values_and_notes", test_values_and_notes},
    {"no_secret", test_no_secret}, {"role", test_role},
    {"sizes", test_sizes},         {NULL, NULL},
};

int main(int argc, char **argv)
{
    return task_run(cases, argc, argv);
}
