/* What the config tests share: a minimal file's sections, and loading text with its expected
 * outcome (`ok') or exact message (`bad'). Included once per test program. */
#ifndef MPT_TEST_CONFIG_FIXTURE_H
#define MPT_TEST_CONFIG_FIXTURE_H

#include <stdio.h>
#include <string.h>

#include "config/config.h"
#include "task.h"

#define SECRET "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
#define TUNNEL "[tunnel]\nsecret = " SECRET "\n"
#define CLIENT "[client]\nlisten = 3000\nbridge = 1.1.1.1:4000\n"
#define SERVER "[server]\nlisten = 2000\ntarget = 127.0.0.1:1194\n"

static struct mpt_config cfg;
static char err[MPT_CONFIG_ERR_MAX];

static int load(const char *text, enum mpt_config_role role)
{
    memset(err, 0, sizeof(err));
    return mpt_config_load_string(&cfg, "t.ini", text, role, err, sizeof(err));
}

static void ok(const char *text, enum mpt_config_role role)
{
    int rc = load(text, role);
    if (rc != 0)
        fprintf(stderr, "unexpected error: %s\n", err);
    ASSERT_EQ(rc, 0);
    ASSERT_STR_EQ(err, "");
}

static void bad(const char *text, enum mpt_config_role role, const char *msg)
{
    ASSERT_EQ(load(text, role), -1);
    ASSERT_STR_EQ(err, msg);
}

#endif
