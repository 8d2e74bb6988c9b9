/* Numbers with units as written in a config file: durations and byte sizes. */
#include <ctype.h>
#include <stdint.h>
#include <string.h>

#include "config/config.h"

/* Leading decimal digits of s into *v (no sign, no spaces); returns the first byte after them,
 * or NULL if there are none or the value passes UINT64_MAX / 10. */
static const char *parse_digits(uint64_t *v, const char *s)
{
    const char *p = s;

    *v = 0;
    for (; *p >= '0' && *p <= '9'; p++) {
        if (*v > (UINT64_MAX - 9) / 10)
            return NULL;
        *v = *v * 10 + (uint64_t)(*p - '0');
    }
    return p == s ? NULL : p;
}

int mpt_duration_parse(uint32_t *ms, const char *text)
{
    static const struct {
        const char *suffix;
        uint64_t ms;
    } units[] = {{"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    const char *end;
    uint64_t v;

    end = parse_digits(&v, text);
    if (!end)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].suffix) != 0)
            continue;
        if (v > UINT32_MAX / units[i].ms)
            return -1;
        *ms = (uint32_t)(v * units[i].ms);
        return 0;
    }
    return -1;
}

int mpt_size_parse(uint32_t *bytes, const char *text)
{
    const char *end;
    uint64_t v, mult;

    end = parse_digits(&v, text);
    if (!end)
        return -1;
    switch (toupper((unsigned char)*end)) {
    case '\0':
        mult = 1;
        break;
    case 'K':
        mult = 1024;
        break;
    case 'M':
        mult = 1024 * 1024;
        break;
    case 'G':
        mult = 1024 * 1024 * 1024;
        break;
    default:
        return -1;
    }
    if (*end && end[1])
        return -1;
    if (v > UINT32_MAX / mult)
        return -1;
    *bytes = (uint32_t)(v * mult);
    return 0;
}
